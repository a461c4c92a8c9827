"""The payment service's domain: charge each order once, report how it went, and give the
money back when the order was cancelled meanwhile."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from google.protobuf.message import Message

from ecommerce.events.v1 import events_pb2
from meshkit.context import Principal
from meshkit.data import Database, utcnow
from meshkit.errors import quoted, require_id
from meshkit.ids import new_id
from meshkit.messaging import Envelope
from meshkit.rpc import money, timestamp
from payment_service import metrics
from payment_service.errors import PaymentNotFound
from payment_service.provider import SimulatedProvider
from payment_service.records import PaymentRecord
from payment_service.repository import load_payment
from payment_service.unit_of_work import PaymentUnitOfWork

logger = logging.getLogger(__name__)


def _payment_of(
    event: events_pb2.OrderCreated | events_pb2.OrderCancelled,
    payment_id: str,
    *,
    status: str,
    created_at: datetime,
    payment_method: str = "",
    failure_code: str = "",
    failure_reason: str = "",
) -> PaymentRecord:
    """The order's one payment, with what an event about the order gives it."""
    return PaymentRecord(
        id=payment_id,
        order_id=event.order_id,
        user_id=event.user_id,
        amount_minor=event.total.amount_minor,
        currency_code=event.total.currency_code,
        status=status,
        payment_method=payment_method,
        failure_code=failure_code,
        failure_reason=failure_reason,
        created_at=created_at,
        refunded_at=None,
    )


class Payments:
    def __init__(
        self,
        database: Database,
        unit_of_work: Callable[[], PaymentUnitOfWork],
        provider: SimulatedProvider,
    ) -> None:
        self.db = database
        # Each event is handled in a unit of work of its own, which the consumer opens.
        self.unit_of_work = unit_of_work
        self.provider = provider

    async def on_order_created(
        self, uow: PaymentUnitOfWork, event: Message, envelope: Envelope
    ) -> None:
        """Charge the order and record the outcome with its event, in one transaction."""
        assert isinstance(event, events_pb2.OrderCreated)
        payment_id, now = new_id(), utcnow()
        # The order's one payment row is claimed before anything is charged, in one
        # statement: a concurrent order.cancelled, or a replica charging the same order,
        # waits for this transaction, then finds the row and charges nothing.
        claimed = await uow.payments.claim(
            _payment_of(
                event,
                payment_id,
                status="PENDING",
                created_at=now,
                payment_method=event.payment_method,
            )
        )
        if not claimed:
            # A second order.created for this order (a re-publish): charged already. Or the
            # order was cancelled before this one was handled: never to be charged.
            return
        result = self.provider.charge(
            event.total.amount_minor,
            event.total.currency_code,
            event.payment_method,
            idempotency_key=f"charge-{event.order_id}",
        )
        status = "SUCCEEDED" if result.succeeded else "FAILED"
        await uow.payments.record_outcome(
            payment_id,
            status=status,
            failure_code=result.failure_code,
            failure_reason=result.failure_reason,
        )
        amount = money(event.total.amount_minor, event.total.currency_code)
        body: Message
        if result.succeeded:
            body = events_pb2.PaymentSucceeded(
                payment_id=payment_id,
                order_id=event.order_id,
                user_id=event.user_id,
                amount=amount,
                succeed_time=timestamp(now),
            )
        else:
            body = events_pb2.PaymentFailed(
                payment_id=payment_id,
                order_id=event.order_id,
                user_id=event.user_id,
                amount=amount,
                failure_code=result.failure_code,
                failure_reason=result.failure_reason,
                fail_time=timestamp(now),
            )
        uow.publish(body, correlation_id=event.order_id)
        uow.after_commit((metrics.SUCCEEDED if result.succeeded else metrics.FAILED).inc)
        logger.info(
            "payment %s for order %s",
            status.lower(),
            event.order_id,
            extra={"payment_id": payment_id},
        )

    async def on_order_cancelled(
        self, uow: PaymentUnitOfWork, event: Message, envelope: Envelope
    ) -> None:
        """Give back the charge of an order cancelled while it was being charged.

        The owner may cancel a PENDING order while its payment goes through: the order stays
        cancelled (its stock went back on sale) and the money goes back. An order cancelled
        before it was charged (a redelivered order.created can come after the order.cancelled
        that followed it) gets a failed payment instead, which order.created then finds.

        Both handlers claim the order's one payment row, in one statement each: if they run
        at once, the second waits for the first to commit, then finds its row.
        """
        assert isinstance(event, events_pb2.OrderCancelled)
        never = "The order was cancelled before it was charged."
        failed = _payment_of(
            event,
            new_id(),
            status="FAILED",
            created_at=utcnow(),
            failure_code="order_cancelled",
            failure_reason=never,
        )
        if await uow.payments.claim(failed):
            return  # never to be charged: order.created finds this row
        payment = await uow.payments.of_order(event.order_id)
        if payment is None:  # claimed by another, then gone: not a state this service makes
            raise LookupError(f"the payment of order {event.order_id} vanished")
        if payment.status != "SUCCEEDED":
            return  # never charged (declined), or refunded already
        self.provider.refund(
            payment.amount_minor,
            payment.currency_code,
            payment.payment_method,
            idempotency_key=f"refund-{event.order_id}",
        )
        now = utcnow()
        if not await uow.payments.mark_refunded(event.order_id, now):
            return  # a concurrent replica refunded it first
        uow.publish(
            events_pb2.PaymentRefunded(
                payment_id=payment.id,
                order_id=event.order_id,
                user_id=payment.user_id,
                amount=money(payment.amount_minor, payment.currency_code),
                refund_time=timestamp(now),
            ),
            correlation_id=event.order_id,
        )
        uow.after_commit(metrics.REFUNDED.inc)
        logger.info(
            "payment refunded for cancelled order %s",
            event.order_id,
            extra={"payment_id": payment.id},
        )

    async def for_order(self, caller: Principal, order_id: str) -> PaymentRecord:
        """The order's payment, for its owner or a privileged caller."""
        require_id(order_id, "order_id")
        payment = await load_payment(self.db, order_id)
        if payment is None or not (caller.is_privileged or payment.user_id == caller.subject):
            raise PaymentNotFound(f"No payment for order {quoted(order_id)}.")
        return payment
