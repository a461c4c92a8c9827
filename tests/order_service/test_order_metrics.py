"""Orders' metrics on PostgreSQL and on SQLite: each move of an order counted once it commits,
never when it rolls back or when nothing moved, and the time from placement to payment.

The catalog and the user service are fakes; the database, the orders and the saga are real.
"""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from ecommerce.events.v1 import events_pb2
from meshkit.context import Principal, Role
from meshkit.data import Database
from meshkit.messaging import Envelope, Outbox, event_type_of
from meshkit.rpc import PageTokenCodec
from order_service.commands import PlaceOrder
from order_service.models import metadata, outbox
from order_service.orders import SERVICE_NAME, Orders
from order_service.records import OrderRecord
from order_service.saga import Saga
from order_service.unit_of_work import OrderUnitOfWork
from tests.conftest import DatabaseFactory
from tests.order_service.test_carts import ADDRESS, BUYER, LAMP, Accounts, Shelf

pytestmark = pytest.mark.integration

ADMIN = Principal("admin", Role.ADMIN, "t")
MOVES = (
    ("NONE", "PENDING"),
    ("PENDING", "PAID"),
    ("PENDING", "CANCELLED"),
    ("PAID", "SHIPPED"),
)


class Staff(Accounts):
    """Every user is active, and every admin still one."""

    async def confirm(self, principal: Principal) -> None:
        pass


def moves() -> dict[tuple[str, str], float]:
    """How many orders made each move, so far."""
    return {
        (old, new): REGISTRY.get_sample_value(
            "orders_status_transitions_total", {"from_status": old, "to_status": new}
        )
        or 0.0
        for old, new in MOVES
    }


def moved_since(before: dict[tuple[str, str], float]) -> dict[tuple[str, str], float]:
    """The moves counted since `before`, those with any."""
    return {move: count - before[move] for move, count in moves().items() if count != before[move]}


def paid_timings() -> tuple[float, float]:
    """(how many, seconds in all) of the times to PAID observed, so far."""
    count = REGISTRY.get_sample_value("order_time_to_paid_seconds_count") or 0.0
    total = REGISTRY.get_sample_value("order_time_to_paid_seconds_sum") or 0.0
    return count, total


class Shop:
    def __init__(self, database: Database) -> None:
        events = Outbox(outbox, SERVICE_NAME)

        def unit_of_work() -> OrderUnitOfWork:
            return OrderUnitOfWork(database, events)

        self.shelf = Shelf(LAMP)
        self.orders = Orders(database, unit_of_work, self.shelf, Staff(), PageTokenCodec(b"s"))
        self.saga = Saga(unit_of_work, self.shelf)

    async def place(self, key: str) -> OrderRecord:
        command = PlaceOrder.validated(key, [("lamp", 1)], "pm_card_visa", ADDRESS)
        return await self.orders.place(BUYER, command)

    async def deliver(self, event: events_pb2.PaymentSucceeded | events_pb2.PaymentFailed) -> None:
        """One delivery of a payment's event to the saga, as the consumer runs it."""
        handler = (
            self.saga.on_payment_succeeded
            if isinstance(event, events_pb2.PaymentSucceeded)
            else self.saga.on_payment_failed
        )
        async with self.saga.unit_of_work() as uow:
            await handler(uow, event, Envelope(event_type_of(event)))
            await uow.commit()


@pytest.fixture
async def shop(database_on_each_backend: DatabaseFactory) -> Shop:
    return Shop(await database_on_each_backend(metadata))


async def test_each_move_of_an_order_is_counted_once(shop: Shop) -> None:
    before = moves()
    paid = await shop.place("k-1")
    cancelled = await shop.place("k-2")
    declined = await shop.place("k-3")
    assert moved_since(before) == {("NONE", "PENDING"): 3}

    await shop.deliver(events_pb2.PaymentSucceeded(order_id=paid.id, payment_id="p-1"))
    await shop.deliver(events_pb2.PaymentSucceeded(order_id=paid.id, payment_id="p-1"))  # again
    await shop.orders.ship(ADMIN, paid.id, "Carrier", "T-1")
    await shop.orders.cancel(BUYER, cancelled.id, "changed my mind")
    await shop.deliver(events_pb2.PaymentFailed(order_id=declined.id, failure_code="declined"))
    await shop.deliver(events_pb2.PaymentFailed(order_id=declined.id, failure_code="declined"))
    # A replay of a placement places nothing.
    assert (await shop.place("k-1")).id == paid.id

    assert moved_since(before) == {
        ("NONE", "PENDING"): 3,
        ("PENDING", "PAID"): 1,
        ("PAID", "SHIPPED"): 1,
        ("PENDING", "CANCELLED"): 2,
    }


async def test_the_time_to_paid_is_from_the_placement_to_the_payment(shop: Shop) -> None:
    order = await shop.place("k-1")
    count, total = paid_timings()

    await shop.deliver(events_pb2.PaymentSucceeded(order_id=order.id, payment_id="p-1"))

    paid = await shop.orders.get(BUYER, order.id)
    assert paid.paid_at is not None
    new_count, new_total = paid_timings()
    assert new_count == count + 1
    assert new_total - total == pytest.approx(
        (paid.paid_at - paid.created_at).total_seconds(), abs=1e-5
    )


async def test_a_move_rolled_back_is_not_counted(shop: Shop) -> None:
    order = await shop.place("k-1")
    before, timings = moves(), paid_timings()

    async def paid_then_failed() -> None:
        async with shop.saga.unit_of_work() as uow:
            event = events_pb2.PaymentSucceeded(order_id=order.id, payment_id="p-1")
            await shop.saga.on_payment_succeeded(uow, event, Envelope(event_type_of(event)))
            raise RuntimeError("failed after the move, before the commit")

    with pytest.raises(RuntimeError, match="after the move"):
        await paid_then_failed()

    assert (await shop.orders.get(BUYER, order.id)).status == "PENDING"
    assert moved_since(before) == {}
    assert paid_timings() == timings
    # Delivered again, the payment moves the order, and the move is counted.
    await shop.deliver(events_pb2.PaymentSucceeded(order_id=order.id, payment_id="p-1"))
    assert moved_since(before) == {("PENDING", "PAID"): 1}
    assert paid_timings()[0] == timings[0] + 1
