"""Orders: place (idempotently), read, cancel, ship; their payment and timeline."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, status

from ecommerce.order.v1 import order_pb2
from ecommerce.payment.v1 import payment_pb2
from gateway.deps import Caller, answers, upstreams
from gateway.responses import Document, EncodedDocument, encode
from gateway.routes.params import PathId
from gateway.schemas.common import problem_responses
from gateway.schemas.orders import (
    STATUS_VALUES,
    CancelRequest,
    CreateOrderRequest,
    Order,
    OrderList,
    OrderStatusName,
    Payment,
    ShipRequest,
    Timeline,
    order_document,
    order_list_document,
)

router = APIRouter(tags=["orders"])

IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        max_length=128,
        description="Any unique string per order attempt; retrying with the same key and "
        "body returns the same order, with another body 409.",
    ),
]


@router.post(
    "/v1/orders",
    status_code=status.HTTP_201_CREATED,
    response_model=Order,
    summary="Place an order",
    description="Stock is reserved at once; payment follows asynchronously: poll the order "
    "(PENDING → PAID, or CANCELLED when the payment fails).",
    responses=problem_responses(400, 401, 409, 422, 429, 503),
)
async def create_order(
    body: CreateOrderRequest,
    idempotency_key: IdempotencyKey,
    request: Request,
    caller: Caller,
) -> Document:
    stubs = upstreams(request)
    order = await stubs.orders.CreateOrder(
        order_pb2.CreateOrderRequest(
            idempotency_key=idempotency_key,
            items=[
                order_pb2.LineItem(product_id=i.product_id, quantity=i.quantity) for i in body.items
            ],
            payment_method=body.payment_method,
            shipping_address=body.shipping_address.to_proto(),
        )
    )
    return Document(
        order_document(order),
        status_code=status.HTTP_201_CREATED,
        headers={"Location": f"/v1/orders/{order.id}"},
    )


@router.get(
    "/v1/orders",
    response_model=OrderList,
    summary="Your orders, newest first (admins: everyone's, filtered by user_id)",
    responses=problem_responses(400, 401, 403),
)
async def list_orders(
    request: Request,
    caller: Caller,
    status_filter: Annotated[OrderStatusName | None, Query(alias="status")] = None,
    user_id: Annotated[str, Query(max_length=64, description="Admins only.")] = "",
    page_size: Annotated[int, Query(ge=0, le=100)] = 0,
    page_token: Annotated[str, Query(max_length=1024)] = "",
) -> Document:
    stubs = upstreams(request)
    response = await stubs.orders.ListOrders(
        order_pb2.ListOrdersRequest(
            status=STATUS_VALUES[status_filter]
            if status_filter
            else order_pb2.ORDER_STATUS_UNSPECIFIED,
            user_id=user_id,
            page_size=page_size,
            page_token=page_token,
        )
    )
    return Document(order_list_document(response))


@router.get(
    "/v1/orders/{order_id}",
    response_model=Order,
    summary="One order",
    responses=problem_responses(401, 404),
)
async def get_order(order_id: PathId, request: Request, caller: Caller) -> EncodedDocument:
    async def fetch() -> bytes:
        order = await upstreams(request).orders.GetOrder(order_pb2.GetOrderRequest(id=order_id))
        return encode(order_document(order))

    return EncodedDocument(await answers(request).order(order_id, caller, fetch))


@router.post(
    "/v1/orders/{order_id}:cancel",
    response_model=Order,
    summary="Cancel a PENDING order; its stock is released",
    responses=problem_responses(401, 404, 409),
)
async def cancel_order(
    order_id: PathId, request: Request, caller: Caller, body: CancelRequest | None = None
) -> Document:
    stubs = upstreams(request)
    order = await stubs.orders.CancelOrder(
        order_pb2.CancelOrderRequest(id=order_id, reason=body.reason if body else "")
    )
    return Document(order_document(order))


@router.post(
    "/v1/orders/{order_id}:ship",
    response_model=Order,
    summary="Ship a PAID order (admin, or a seller of one of its items)",
    responses=problem_responses(400, 401, 403, 404, 409, 422),
)
async def ship_order(
    order_id: PathId, body: ShipRequest, request: Request, caller: Caller
) -> Document:
    stubs = upstreams(request)
    order = await stubs.orders.ShipOrder(
        order_pb2.ShipOrderRequest(
            id=order_id, carrier=body.carrier, tracking_number=body.tracking_number
        )
    )
    return Document(order_document(order))


@router.get(
    "/v1/orders/{order_id}/timeline",
    summary="Everything that happened to an order, across services, oldest first",
    responses=problem_responses(401, 404),
)
async def order_timeline(order_id: PathId, request: Request, caller: Caller) -> Timeline:
    stubs = upstreams(request)
    timeline = await stubs.orders.GetOrderTimeline(
        order_pb2.GetOrderTimelineRequest(order_id=order_id)
    )
    return Timeline.from_proto(timeline)


@router.get(
    "/v1/orders/{order_id}/payment",
    summary="The payment of an order: status, amount, failure reason",
    responses=problem_responses(401, 404),
)
async def order_payment(order_id: PathId, request: Request, caller: Caller) -> Payment:
    stubs = upstreams(request)
    payment = await stubs.payments.GetPayment(payment_pb2.GetPaymentRequest(order_id=order_id))
    return Payment.from_proto(payment)
