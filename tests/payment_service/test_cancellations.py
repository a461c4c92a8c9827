"""An order cancelled while it was being charged gets its money back, and one cancelled before
its charge never is charged, whichever order the two events arrive in; on each backend."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select

from ecommerce.common.v1 import money_pb2
from ecommerce.events.v1 import events_pb2
from meshkit.data import Database
from meshkit.ids import new_id
from meshkit.messaging import Envelope, Outbox, event_type_of
from payment_service.models import Payment, metadata, outbox
from payment_service.payments import Payments
from payment_service.provider import ChargeResult, SimulatedProvider
from payment_service.unit_of_work import PaymentUnitOfWork
from tests.conftest import DatabaseFactory

TOTAL = money_pb2.Money(amount_minor=2_500, currency_code="EUR")


def created(order_id: str) -> events_pb2.OrderCreated:
    return events_pb2.OrderCreated(
        order_id=order_id, user_id="u1", total=TOTAL, payment_method="pm_card_visa"
    )


def cancelled(order_id: str) -> events_pb2.OrderCancelled:
    return events_pb2.OrderCancelled(
        order_id=order_id, user_id="u1", reason="changed my mind", total=TOTAL
    )


async def deliver(payments: Payments, database: Database, event: Any) -> None:
    """One delivery of `event` to its handler, in a unit of work as the consumer runs it."""
    handler = (
        payments.on_order_created
        if isinstance(event, events_pb2.OrderCreated)
        else payments.on_order_cancelled
    )
    async with payments.unit_of_work() as uow:
        await handler(uow, event, Envelope(event_type_of(event)))
        await uow.commit()


class CountingProvider(SimulatedProvider):
    """The simulated provider, counting what it charged and gave back."""

    def __init__(self) -> None:
        super().__init__(10**9)
        self.charged = 0
        self.refunded = 0
        # The idempotency key of every charge and refund asked, in order.
        self.keys: list[str] = []

    def charge(
        self, amount_minor: int, currency_code: str, payment_method: str, *, idempotency_key: str
    ) -> ChargeResult:
        result = super().charge(
            amount_minor, currency_code, payment_method, idempotency_key=idempotency_key
        )
        self.charged += result.succeeded
        self.keys.append(idempotency_key)
        return result

    def refund(
        self, amount_minor: int, currency_code: str, payment_method: str, *, idempotency_key: str
    ) -> None:
        self.refunded += 1
        self.keys.append(idempotency_key)


async def payments_on(database: Database) -> Payments:
    events = Outbox(outbox, "payment_service")
    return Payments(database, lambda: PaymentUnitOfWork(database, events), CountingProvider())


async def published(database: Database) -> list[str]:
    async with database.session() as session:
        return list(
            (await session.scalars(select(outbox.c.event_type).order_by(outbox.c.id))).all()
        )


async def payment(database: Database, order_id: str) -> Payment | None:
    async with database.session() as session:
        found: Payment | None = await session.scalar(
            select(Payment).where(Payment.order_id == order_id)
        )
        return found


async def test_a_charge_of_an_order_cancelled_meanwhile_is_refunded_once(
    database_on_each_backend: DatabaseFactory,
) -> None:
    database = await database_on_each_backend(metadata)
    payments = await payments_on(database)
    order_id = new_id()
    await deliver(payments, database, created(order_id))
    await deliver(payments, database, cancelled(order_id))
    await deliver(payments, database, cancelled(order_id))  # a re-publish changes nothing

    refunded = await payment(database, order_id)
    assert refunded is not None
    assert (refunded.status, refunded.amount_minor) == ("REFUNDED", 2_500)
    assert refunded.refunded_at is not None
    assert await published(database) == ["payment.succeeded", "payment.refunded"]
    # Each asked of the processor under a key of its own, the same on every retry of it.
    assert isinstance(payments.provider, CountingProvider)
    assert payments.provider.keys == [f"charge-{order_id}", f"refund-{order_id}"]


async def test_an_order_cancelled_before_its_charge_is_never_charged(
    database_on_each_backend: DatabaseFactory,
) -> None:
    # A redelivered order.created can arrive after the order.cancelled that followed it.
    database = await database_on_each_backend(metadata)
    payments = await payments_on(database)
    order_id = new_id()
    await deliver(payments, database, cancelled(order_id))
    await deliver(payments, database, created(order_id))

    never = await payment(database, order_id)
    assert never is not None
    assert (never.status, never.failure_code) == ("FAILED", "order_cancelled")
    assert (never.amount_minor, never.currency_code) == (2_500, "EUR")
    assert await published(database) == []


async def test_both_events_at_once_end_charged_and_refunded_or_never_charged(
    database_on_each_backend: DatabaseFactory,
) -> None:
    # The consumer handles messages concurrently: the two may run at the same time. The one
    # that loses the race on the order's payment row fails and is delivered again.
    database = await database_on_each_backend(metadata)
    payments = await payments_on(database)
    provider = payments.provider
    assert isinstance(provider, CountingProvider)
    for _ in range(5):
        provider.charged = provider.refunded = 0
        order_id = new_id()
        pending = [created(order_id), cancelled(order_id)]
        for _attempt in range(3):
            outcomes = await asyncio.gather(
                *(deliver(payments, database, event) for event in pending),
                return_exceptions=True,
            )
            pending = [
                event
                for event, outcome in zip(pending, outcomes, strict=True)
                if isinstance(outcome, Exception)
            ]
            if not pending:
                break
        assert not pending
        final = await payment(database, order_id)
        assert final is not None
        # Nothing charged that is not recorded: charged and refunded once, or never charged.
        assert (final.status, final.failure_code, provider.charged, provider.refunded) in {
            ("REFUNDED", "", 1, 1),
            ("FAILED", "order_cancelled", 0, 0),
        }


async def test_a_declined_payment_is_not_refunded(
    database_on_each_backend: DatabaseFactory,
) -> None:
    database = await database_on_each_backend(metadata)
    payments = await payments_on(database)
    order_id = new_id()
    declined = created(order_id)
    declined.payment_method = "pm_card_chargeDeclined"
    await deliver(payments, database, declined)
    await deliver(payments, database, cancelled(order_id))

    failed = await payment(database, order_id)
    assert failed is not None and failed.status == "FAILED"
    assert await published(database) == ["payment.failed"]
