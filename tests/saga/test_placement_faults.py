"""Placing an order when an answer is lost: the order ends saved with its stock, or unsaved
with its stock given back, whatever the caller or a deadline does meanwhile."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

import grpc
import pytest
from sqlalchemy import text

from ecommerce.order.v1 import order_pb2
from meshkit.context import Principal
from meshkit.data import Database
from order_service.app import DEFINITION as ORDER
from order_service.orders import Orders
from product_service.stock import ReservationResult, Stock, StockLine
from tests.saga.conftest import ADDRESS, Saga, bearer
from tests.support import eventually

pytestmark = pytest.mark.integration


async def order_count(saga: Saga) -> int:
    async with (
        Database(saga.databases["order_service"]) as database,
        database.session() as session,
    ):
        return int(await session.scalar(text("SELECT count(*) FROM orders")) or 0)


@pytest.fixture
def reservations_answer_late(monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """The product service reserves, then holds its answer back until the event is set (or
    the call is cancelled): the caller cannot know that the stock was taken."""
    answer = asyncio.Event()
    reserve = Stock.reserve

    async def reserve_then_wait(
        self: Stock, caller: Principal, order_id: str, items: Sequence[StockLine]
    ) -> ReservationResult:
        result = await reserve(self, caller, order_id, items)
        await answer.wait()
        return result

    monkeypatch.setattr(Stock, "reserve", reserve_then_wait)
    return answer


async def test_a_reservation_answered_too_late_is_given_back(
    saga_base: Saga, reservations_answer_late: asyncio.Event
) -> None:
    product = await saga_base.new_product(stock=5)
    await saga_base.start("order_service", ORDER, rpc_timeout_seconds=1.0)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await saga_base.place(product, 2, key=uuid.uuid4().hex)
    assert raised.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert "nothing was changed" in (raised.value.details() or "")
    assert await saga_base.stock_of(product) == 5
    assert await order_count(saga_base) == 0


async def test_a_caller_whose_deadline_passes_mid_reservation_leaves_no_stock_reserved(
    saga_base: Saga, reservations_answer_late: asyncio.Event
) -> None:
    # The release runs after the caller's deadline passed: it must not inherit it.
    product = await saga_base.new_product(stock=5)
    await saga_base.start("order_service", ORDER)
    request = order_pb2.CreateOrderRequest(
        idempotency_key=uuid.uuid4().hex,
        items=[order_pb2.LineItem(product_id=product, quantity=2)],
        payment_method="pm_card_visa",
        shipping_address=ADDRESS,
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await saga_base.orders.CreateOrder(
            request, timeout=0.5, metadata=bearer(saga_base.customer)
        )
    assert raised.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED

    async def given_back() -> bool:
        return await saga_base.stock_of(product) == 5

    await eventually(given_back, timeout=10, message="the reserved stock is given back")
    assert await order_count(saga_base) == 0


async def test_an_order_saved_although_saving_failed_keeps_its_stock(
    saga: Saga, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A commit whose answer was lost: the order exists, so its stock must stay reserved.
    save = Orders._save

    async def save_then_fail(self: Orders, *args: Any) -> Any:
        await save(self, *args)
        raise ConnectionResetError("the commit's answer was lost")

    monkeypatch.setattr(Orders, "_save", save_then_fail)
    product = await saga.new_product(stock=5)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await saga.place(product, 2, key=uuid.uuid4().hex)
    # Lost after the commit was asked for: the outcome is unknown, so not UNAVAILABLE,
    # which says the call did not happen (and which the mesh's channels retry).
    assert raised.value.code() is grpc.StatusCode.INTERNAL
    assert await order_count(saga) == 1
    assert await saga.stock_of(product) == 3
