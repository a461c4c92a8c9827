"""The caller's cart, and checking it out."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from ecommerce.order.v1 import cart_pb2
from gateway.deps import Caller, upstreams
from gateway.responses import Document
from gateway.routes.orders import IdempotencyKey
from gateway.routes.params import PathId
from gateway.schemas.carts import Cart, CheckoutRequest, SetCartItemRequest
from gateway.schemas.common import problem_responses
from gateway.schemas.orders import Order, order_document

router = APIRouter(tags=["cart"])


@router.get("/v1/cart", summary="Your cart, at today's prices", responses=problem_responses(401))
async def get_cart(request: Request, caller: Caller) -> Cart:
    stubs = upstreams(request)
    return Cart.from_proto(await stubs.carts.GetCart(cart_pb2.GetCartRequest()))


@router.put(
    "/v1/cart/items/{product_id}",
    summary="Put a product in your cart, or change its quantity",
    responses=problem_responses(400, 401, 404, 409, 422),
)
async def set_cart_item(
    product_id: PathId, body: SetCartItemRequest, request: Request, caller: Caller
) -> Cart:
    stubs = upstreams(request)
    cart = await stubs.carts.SetCartItem(
        cart_pb2.SetCartItemRequest(product_id=product_id, quantity=body.quantity)
    )
    return Cart.from_proto(cart)


@router.delete(
    "/v1/cart/items/{product_id}",
    summary="Take a product out of your cart",
    responses=problem_responses(401, 404),
)
async def remove_cart_item(product_id: PathId, request: Request, caller: Caller) -> Cart:
    stubs = upstreams(request)
    cart = await stubs.carts.RemoveCartItem(cart_pb2.RemoveCartItemRequest(product_id=product_id))
    return Cart.from_proto(cart)


@router.delete("/v1/cart", summary="Empty your cart", responses=problem_responses(401))
async def clear_cart(request: Request, caller: Caller) -> Cart:
    stubs = upstreams(request)
    return Cart.from_proto(await stubs.carts.ClearCart(cart_pb2.ClearCartRequest()))


@router.post(
    "/v1/cart:checkout",
    status_code=status.HTTP_201_CREATED,
    response_model=Order,
    summary="Order what is in your cart (like POST /v1/orders); the cart empties on success",
    responses=problem_responses(400, 401, 409, 422, 503),
)
async def checkout(
    body: CheckoutRequest,
    idempotency_key: IdempotencyKey,
    request: Request,
    caller: Caller,
) -> Document:
    stubs = upstreams(request)
    order = await stubs.carts.CheckoutCart(
        cart_pb2.CheckoutCartRequest(
            idempotency_key=idempotency_key,
            payment_method=body.payment_method,
            shipping_address=body.shipping_address.to_proto(),
        )
    )
    return Document(
        order_document(order),
        status_code=status.HTTP_201_CREATED,
        headers={"Location": f"/v1/orders/{order.id}"},
    )
