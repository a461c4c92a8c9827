"""Malformed order requests are INVALID_ARGUMENT naming the field, as the product service
answers them: an empty id is not an unknown order, an unknown status not "any status"."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc
import pytest

from ecommerce.order.v1 import order_pb2
from ecommerce.payment.v1 import payment_pb2
from ecommerce.product.v1 import product_pb2
from ecommerce.user.v1 import user_pb2
from tests.product_service.conftest import violations
from tests.saga.conftest import ADDRESS, Saga, bearer

pytestmark = pytest.mark.integration


async def invalid_argument(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT, raised.value.details()
    return raised.value


def empty_id_calls(saga: Saga) -> dict[str, tuple[str, Callable[[], Awaitable[object]]]]:
    """Each call with an empty order id, and the field it must name."""
    customer, seller = bearer(saga.customer), bearer(saga.seller)
    return {
        "GetOrder": (
            "id",
            lambda: saga.orders.GetOrder(order_pb2.GetOrderRequest(id=""), metadata=customer),
        ),
        "GetOrderTimeline": (
            "order_id",
            lambda: saga.orders.GetOrderTimeline(
                order_pb2.GetOrderTimelineRequest(order_id=""), metadata=customer
            ),
        ),
        "CancelOrder": (
            "id",
            lambda: saga.orders.CancelOrder(
                order_pb2.CancelOrderRequest(id="", reason="changed my mind"), metadata=customer
            ),
        ),
        "ShipOrder": (
            "id",
            lambda: saga.orders.ShipOrder(
                order_pb2.ShipOrderRequest(id="", carrier="DHL", tracking_number="T1"),
                metadata=seller,
            ),
        ),
    }


async def test_an_empty_order_id_is_required_like_an_empty_product_id(saga: Saga) -> None:
    product = await invalid_argument(saga.products.GetProduct(product_pb2.GetProductRequest()))
    assert (product.details(), violations(product)) == ("id: is required", {"id": "is required"})
    for name, (field, call) in empty_id_calls(saga).items():
        error = await invalid_argument(call())
        assert error.details() == f"{field}: is required", name
        assert violations(error) == {field: "is required"}, name


async def test_listing_by_a_status_the_enum_does_not_hold_is_refused(saga: Saga) -> None:
    product_id = await saga.new_product(stock=5)
    await saga.place(product_id, key="k1")
    error = await invalid_argument(
        saga.orders.ListOrders(
            order_pb2.ListOrdersRequest(status=order_pb2.OrderStatus.ValueType(99)),
            metadata=bearer(saga.customer),
        )
    )
    assert set(violations(error)) == {"status"}
    # Unspecified still means any status.
    listed = await saga.orders.ListOrders(
        order_pb2.ListOrdersRequest(), metadata=bearer(saga.customer)
    )
    assert len(listed.orders) == 1


@pytest.mark.parametrize("country_code", ["ZZ", "zz", "XK"])
async def test_an_order_to_no_assigned_country_is_refused(saga: Saga, country_code: str) -> None:
    product_id = await saga.new_product(stock=5)
    address = order_pb2.Address()
    address.CopyFrom(ADDRESS)
    address.country_code = country_code
    error = await invalid_argument(
        saga.orders.CreateOrder(
            order_pb2.CreateOrderRequest(
                idempotency_key="k1",
                items=[order_pb2.LineItem(product_id=product_id, quantity=1)],
                payment_method="pm_card_visa",
                shipping_address=address,
            ),
            metadata=bearer(saga.customer),
        )
    )
    assert set(violations(error)) == {"shipping_address.country_code"}
    assert await saga.stock_of(product_id) == 5


async def test_an_empty_user_or_payment_id_is_required_too(saga: Saga) -> None:
    token = bearer(saga.customer)
    cases: dict[str, tuple[Callable[[], Awaitable[object]], str]] = {
        "GetUser": (
            lambda: saga.users.GetUser(user_pb2.GetUserRequest(id=""), metadata=token),
            "id",
        ),
        "GetPayment": (
            lambda: saga.payments.GetPayment(
                payment_pb2.GetPaymentRequest(order_id=""), metadata=token
            ),
            "order_id",
        ),
    }
    for name, (call, field) in cases.items():
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await call()
        assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT, name
        assert field in violations(raised.value), name
