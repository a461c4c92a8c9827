"""Odd ids: one of any length is NOT_FOUND with an error short enough for gRPC's metadata;
one with NUL, which PostgreSQL cannot hold, is INVALID_ARGUMENT."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc
import pytest

from ecommerce.order.v1 import order_pb2
from ecommerce.payment.v1 import payment_pb2
from tests.saga.conftest import Saga, bearer

pytestmark = pytest.mark.integration

LONG_ID = "z" * 5_000


def calls(saga: Saga) -> dict[str, Callable[[], Awaitable[object]]]:
    token = bearer(saga.customer)
    return {
        "GetOrder": lambda: saga.orders.GetOrder(
            order_pb2.GetOrderRequest(id=LONG_ID), metadata=token
        ),
        "CancelOrder": lambda: saga.orders.CancelOrder(
            order_pb2.CancelOrderRequest(id=LONG_ID), metadata=token
        ),
        "GetOrderTimeline": lambda: saga.orders.GetOrderTimeline(
            order_pb2.GetOrderTimelineRequest(order_id=LONG_ID), metadata=token
        ),
        "GetPayment": lambda: saga.payments.GetPayment(
            payment_pb2.GetPaymentRequest(order_id=LONG_ID), metadata=token
        ),
    }


async def test_an_unknown_id_of_any_length_is_not_found_and_quoted_short(saga: Saga) -> None:
    for name, call in calls(saga).items():
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await call()
        assert raised.value.code() is grpc.StatusCode.NOT_FOUND, name
        details = raised.value.details() or ""
        assert "zzzz" in details and len(details) < 200, (name, len(details))


async def test_an_id_with_nul_is_invalid_argument_not_internal(saga: Saga) -> None:
    # PostgreSQL text cannot hold NUL: its refusal is the caller's input, not our fault.
    token = bearer(saga.customer)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await saga.orders.GetOrder(order_pb2.GetOrderRequest(id="a\x00b"), metadata=token)
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "NUL" in (raised.value.details() or "")
