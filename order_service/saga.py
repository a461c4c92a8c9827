"""The order service's part in the saga: how an order reacts to other services' events."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from google.protobuf.message import Message

from ecommerce.events.v1 import events_pb2
from meshkit.caching import ChangeAnnouncer, invalidation
from meshkit.data import utcnow
from meshkit.messaging import Envelope
from meshkit.rpc import money, timestamp
from order_service import metrics
from order_service.models import OrderStatus
from order_service.orders import emit
from order_service.unit_of_work import OrderUnitOfWork
from order_service.upstream import Catalog

logger = logging.getLogger(__name__)


class Saga:
    """Moves orders on as the payment service reports back."""

    def __init__(
        self,
        unit_of_work: Callable[[], OrderUnitOfWork],
        catalog: Catalog,
        changes: ChangeAnnouncer | None = None,
    ) -> None:
        # Each event is handled in a unit of work of its own, which the consumer opens.
        self.unit_of_work = unit_of_work
        self.catalog = catalog
        # Where every change to an order is announced once committed: the gateway keeps its
        # answers about an order until then.
        self.changes = changes

    async def on_payment_succeeded(
        self, uow: OrderUnitOfWork, event: Message, envelope: Envelope
    ) -> None:
        assert isinstance(event, events_pb2.PaymentSucceeded)
        _record_received(uow, event.order_id, envelope, "Payment succeeded")
        if await self.confirm(uow, event.order_id, event.payment_id, "Order confirmed: paid"):
            return
        status = await uow.orders.status_of(event.order_id)
        if status is None:
            raise LookupError(f"payment for unknown order {event.order_id}")  # retried, then DLQ
        if status == OrderStatus.CANCELLED:
            # Cancelled while the charge went through: the payment service, which got the
            # order.cancelled too, gives the money back (payment.refunded).
            logger.info(
                "payment %s succeeded for cancelled order %s; it is refunded",
                event.payment_id,
                event.order_id,
            )

    async def on_payment_refunded(
        self, uow: OrderUnitOfWork, event: Message, envelope: Envelope
    ) -> None:
        assert isinstance(event, events_pb2.PaymentRefunded)
        _record_received(uow, event.order_id, envelope, "Payment refunded")

    async def on_payment_failed(
        self, uow: OrderUnitOfWork, event: Message, envelope: Envelope
    ) -> None:
        assert isinstance(event, events_pb2.PaymentFailed)
        reason = event.failure_reason or event.failure_code or "payment declined"
        _record_received(uow, event.order_id, envelope, f"Payment failed: {reason}")
        # Already moved on when not: a duplicate, or the owner cancelled first.
        await self.cancel_unpaid(
            uow, event.order_id, f"payment failed: {reason}", "Order cancelled: payment failed"
        )

    async def confirm(
        self, uow: OrderUnitOfWork, order_id: str, payment_id: str, summary: str
    ) -> bool:
        """PENDING → PAID, with its `order.confirmed`; False when the order was not PENDING."""
        now = utcnow()
        moved = await uow.orders.transition(
            order_id, OrderStatus.PENDING, OrderStatus.PAID, paid_at=now, updated_at=now
        )
        if moved is None:
            return False
        metrics.count_move(uow, OrderStatus.PENDING, OrderStatus.PAID)
        metrics.time_to_paid(uow, moved.created_at, now)
        self._announce_after_commit(uow, order_id)
        emit(
            uow,
            order_id,
            events_pb2.OrderConfirmed(
                order_id=order_id,
                user_id=moved.user_id,
                payment_id=payment_id,
                total=money(moved.total_minor, moved.currency_code),
                confirm_time=timestamp(now),
            ),
            summary,
        )
        return True

    async def cancel_unpaid(
        self, uow: OrderUnitOfWork, order_id: str, reason: str, summary: str
    ) -> bool:
        """PENDING → CANCELLED, its stock given back, with its `order.cancelled`; False when
        the order was not PENDING."""
        moved = await uow.orders.transition(
            order_id,
            OrderStatus.PENDING,
            OrderStatus.CANCELLED,
            cancel_reason=reason[:500],
            updated_at=utcnow(),
        )
        if moved is None:
            return False
        metrics.count_move(uow, OrderStatus.PENDING, OrderStatus.CANCELLED)
        self._announce_after_commit(uow, order_id)
        await self.catalog.release(order_id)
        emit(
            uow,
            order_id,
            events_pb2.OrderCancelled(
                order_id=order_id,
                user_id=moved.user_id,
                reason=reason,
                cancel_time=timestamp(utcnow()),
                total=money(moved.total_minor, moved.currency_code),
            ),
            summary,
        )
        return True

    async def on_notification_sent(
        self, uow: OrderUnitOfWork, event: Message, envelope: Envelope
    ) -> None:
        """Nothing: an order's timeline asks the notification service for its emails. Only a
        version of it from before that still publishes these, while a rollout replaces it;
        they are acked rather than dead-lettered."""

    def _announce_after_commit(self, uow: OrderUnitOfWork, order_id: str) -> None:
        """A change made in an event's unit of work, announced once that commits."""
        if self.changes is not None:
            uow.after_commit(
                functools.partial(self.changes.changed_soon, invalidation.order_changed(order_id))
            )


def _record_received(uow: OrderUnitOfWork, order_id: str, envelope: Envelope, summary: str) -> None:
    uow.timeline.record(
        event_id=envelope.message_id,
        order_id=order_id,
        event_type=envelope.event_type,
        source=envelope.source or "unknown",
        occurred_at=envelope.occurred_at,
        summary=summary,
    )
