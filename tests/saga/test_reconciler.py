"""Orders the saga left PENDING are finished by the reconciler, whichever way the payment
went: confirmed, cancelled with their stock back, or cancelled for want of a payment."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aio_pika
import grpc
import pytest

from ecommerce.order.v1 import order_pb2
from ecommerce.payment.v1 import payment_pb2
from ecommerce.product.v1 import product_pb2
from ecommerce.user.v1 import auth_pb2
from meshkit.ids import new_id
from meshkit.messaging import Topology
from meshkit.service import running_service
from meshkit.settings import load_settings
from order_service.app import DEFINITION as ORDER
from payment_service.app import DEFINITION as PAYMENT
from tests.conftest import AMQP_URL
from tests.saga.conftest import Saga, bearer
from tests.support import eventually, queue_counts

PAID, CANCELLED = order_pb2.ORDER_STATUS_PAID, order_pb2.ORDER_STATUS_CANCELLED
SECRET = "insecure-dev-service-secret"  # every service's in development
# Quick enough for a test: looked at a fraction of a second after it was placed, given up on
# a second after, without a payment.
RECONCILING = {
    "reconcile_after_seconds": 0.2,
    "reconcile_interval_seconds": 0.2,
    "payment_deadline_seconds": 1.0,
}


@asynccontextmanager
async def order_service(saga: Saga, **overrides: object) -> AsyncIterator[None]:
    """The order service, running for the block, on a port of its own each time."""
    settings = load_settings(
        ORDER.settings_cls, env_file=None, **saga.settings("order_service", **overrides)
    )
    async with running_service(ORDER, settings) as server:
        saga.addresses["order_service"] = f"127.0.0.1:{server.port}"
        stale = saga.channels.pop("order_service", None)
        if stale is not None:
            await stale.close(None)
        yield


async def _queued(saga: Saga, consumer: str, count: int) -> None:
    """Until `count` messages wait in `consumer`'s queue (no one consuming it)."""
    async with await aio_pika.connect(AMQP_URL) as connection:
        name = Topology(saga.namespace).queue(consumer)

        async def there() -> bool:
            counts = await queue_counts(connection, name)
            return counts is not None and counts[0] == count

        await eventually(there, timeout=20, message=f"{count} message(s) in {name}")


async def _lose(saga: Saga, consumer: str) -> None:
    """What waits in `consumer`'s queue is lost, as a message an operator discarded is."""
    async with await aio_pika.connect(AMQP_URL) as connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(Topology(saga.namespace).queue(consumer), passive=True)
        await queue.purge()


async def _payment(saga: Saga, order_id: str) -> payment_pb2.Payment | None:
    try:
        return await saga.payments.GetPayment(
            payment_pb2.GetPaymentRequest(order_id=order_id), metadata=bearer(saga.customer)
        )
    except grpc.aio.AioRpcError as error:
        if error.code() is grpc.StatusCode.NOT_FOUND:
            return None
        raise


async def _timeline(saga: Saga, order_id: str) -> list[str]:
    timeline = await saga.orders.GetOrderTimeline(
        order_pb2.GetOrderTimelineRequest(order_id=order_id), metadata=bearer(saga.customer)
    )
    return [event.summary for event in timeline.events]


async def _placed_then_charged_unheard(
    saga: Saga, product: str, method: str
) -> tuple[str, payment_pb2.Payment]:
    """An order placed, charged by the payment service, and the charge's event lost before
    the order service heard it."""
    async with order_service(saga):
        order = await saga.place(product, 2, key=uuid.uuid4().hex, method=method)
        await _queued(saga, "payment_service", 1)
    await saga.start("payment_service", PAYMENT)
    charged = await eventually(lambda: _payment(saga, order.id), message="the charge")
    await _queued(saga, "order_service", 1)
    await _lose(saga, "order_service")
    return order.id, charged


async def test_a_charge_whose_event_was_lost_confirms_the_order(saga_base: Saga) -> None:
    saga = saga_base
    product = await saga.new_product(stock=5)
    order_id, charged = await _placed_then_charged_unheard(saga, product, "pm_card_visa")
    assert charged.status == payment_pb2.PAYMENT_STATUS_SUCCEEDED
    async with order_service(
        saga, payment_service_addr=saga.addresses["payment_service"], **RECONCILING
    ):
        await saga.wait_status(order_id, PAID)
        assert "Order confirmed: paid (found by reconciliation)" in await _timeline(saga, order_id)
        assert await saga.stock_of(product) == 3  # still sold


async def test_a_decline_whose_event_was_lost_cancels_and_restocks(saga_base: Saga) -> None:
    saga = saga_base
    product = await saga.new_product(stock=5)
    order_id, charged = await _placed_then_charged_unheard(saga, product, "pm_card_chargeDeclined")
    assert charged.status == payment_pb2.PAYMENT_STATUS_FAILED
    assert await saga.stock_of(product) == 3
    async with order_service(
        saga, payment_service_addr=saga.addresses["payment_service"], **RECONCILING
    ):
        await saga.wait_status(order_id, CANCELLED)
        assert await saga.stock_of(product) == 5
        order = await saga.orders.GetOrder(
            order_pb2.GetOrderRequest(id=order_id), metadata=bearer(saga.customer)
        )
        assert order.cancel_reason.startswith("payment failed")


async def test_an_order_never_charged_is_cancelled_past_its_deadline_and_never_charged(
    saga_base: Saga,
) -> None:
    saga = saga_base
    product = await saga.new_product(stock=5)
    async with order_service(saga):
        order = await saga.place(product, 2, key=uuid.uuid4().hex)
        await _queued(saga, "payment_service", 1)
        await _lose(saga, "payment_service")  # the order.created: no charge will ever come
    await saga.start("payment_service", PAYMENT)
    async with order_service(
        saga, payment_service_addr=saga.addresses["payment_service"], **RECONCILING
    ):
        await saga.wait_status(order.id, CANCELLED)
        assert await saga.stock_of(product) == 5
        assert "Order cancelled: no payment was taken in time" in await _timeline(saga, order.id)

        # The order.cancelled it published makes the payment service close the order's one
        # payment as never to be charged, should its order.created still turn up.
        async def closed() -> payment_pb2.Payment | None:
            payment = await _payment(saga, order.id)
            return payment if payment is not None and payment.failure_code else None

        payment = await eventually(closed, message="the payment closed")
        assert (payment.status, payment.failure_code) == (
            payment_pb2.PAYMENT_STATUS_FAILED,
            "order_cancelled",
        )


async def test_an_order_within_its_deadline_waits_for_its_payment(
    saga_base: Saga, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="order_service.reconciler")
    saga = saga_base
    product = await saga.new_product(stock=5)
    async with order_service(saga):
        order = await saga.place(product, 1, key=uuid.uuid4().hex)
        await _queued(saga, "payment_service", 1)
        await _lose(saga, "payment_service")
    await saga.start("payment_service", PAYMENT)
    async with order_service(
        saga,
        payment_service_addr=saga.addresses["payment_service"],
        **{**RECONCILING, "payment_deadline_seconds": 600.0},
    ):

        async def looked_at_twice() -> bool:
            rounds = [
                record
                for record in caplog.records
                if getattr(record, "outcomes", None) == {"waiting": 1}
            ]
            return len(rounds) >= 2

        await eventually(looked_at_twice, message="two rounds of reconciliation")
        assert await saga.order_status(order.id) == order_pb2.ORDER_STATUS_PENDING
        assert await saga.stock_of(product) == 4


async def test_stock_reserved_for_an_order_never_saved_is_released(saga_base: Saga) -> None:
    saga = saga_base
    product = await saga.new_product(stock=5)
    # What an order service killed between reserving and saving leaves behind.
    issued = await saga.auth.IssueServiceToken(
        auth_pb2.IssueServiceTokenRequest(client_id="order_service", client_secret=SECRET)
    )
    await saga.products.ReserveStock(
        product_pb2.ReserveStockRequest(
            order_id=new_id(), items=[product_pb2.StockItem(product_id=product, quantity=2)]
        ),
        metadata=bearer(issued.access_token),
    )
    await saga.start("payment_service", PAYMENT)
    async with order_service(
        saga, payment_service_addr=saga.addresses["payment_service"], **RECONCILING
    ):
        order = await saga.place(product, 1, key=uuid.uuid4().hex)
        await saga.wait_status(order.id, PAID)

        async def given_back() -> bool:
            # The unsaved order's 2 back; the paid order's 1 stays sold.
            return await saga.stock_of(product) == 4

        await eventually(given_back, timeout=20, message="the unsaved order's stock back")
    # Only once, whatever the rounds that looked again.
    assert await saga.stock_of(product) == 4
