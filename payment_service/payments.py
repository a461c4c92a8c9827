"""The payment service's domain: charge each order once, and report how it went."""

from __future__ import annotations

import logging

from google.protobuf.message import Message
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ecommerce.common.v1 import money_pb2
from ecommerce.events.v1 import events_pb2
from meshkit.access import require_principal
from meshkit.db import Database, utcnow
from meshkit.errors import NotFound
from meshkit.events import Envelope
from meshkit.ids import new_id
from meshkit.outbox import Outbox
from meshkit.protobuf import timestamp
from payment_service.models import Payment
from payment_service.provider import SimulatedProvider

logger = logging.getLogger(__name__)


class Payments:
    def __init__(self, database: Database, outbox: Outbox, provider: SimulatedProvider) -> None:
        self.db = database
        self.outbox = outbox
        self.provider = provider

    async def on_order_created(
        self, session: AsyncSession, event: Message, envelope: Envelope
    ) -> None:
        """Charge the order and record the outcome with its event, in one transaction."""
        assert isinstance(event, events_pb2.OrderCreated)
        existing = await session.scalar(select(Payment).where(Payment.order_id == event.order_id))
        if existing is not None:
            return  # a second order.created for this order (a re-publish): charged already
        result = self.provider.charge(
            event.total.amount_minor, event.total.currency_code, event.payment_method
        )
        payment = Payment(
            id=new_id(),
            order_id=event.order_id,
            user_id=event.user_id,
            amount_minor=event.total.amount_minor,
            currency_code=event.total.currency_code,
            status="SUCCEEDED" if result.succeeded else "FAILED",
            payment_method=event.payment_method,
            failure_code=result.failure_code,
            failure_reason=result.failure_reason,
            created_at=utcnow(),
        )
        session.add(payment)
        # Flushed now: a concurrent replica charging the same order fails here, on the
        # unique order_id, and its transaction (event included) rolls back.
        await session.flush()
        amount = money_pb2.Money(
            amount_minor=payment.amount_minor, currency_code=payment.currency_code
        )
        body: Message
        if result.succeeded:
            body = events_pb2.PaymentSucceeded(
                payment_id=payment.id,
                order_id=payment.order_id,
                user_id=payment.user_id,
                amount=amount,
                succeed_time=timestamp(payment.created_at),
            )
        else:
            body = events_pb2.PaymentFailed(
                payment_id=payment.id,
                order_id=payment.order_id,
                user_id=payment.user_id,
                amount=amount,
                failure_code=payment.failure_code,
                failure_reason=payment.failure_reason,
                fail_time=timestamp(payment.created_at),
            )
        await self.outbox.add(session, body, correlation_id=payment.order_id)
        logger.info(
            "payment %s for order %s",
            payment.status.lower(),
            payment.order_id,
            extra={"payment_id": payment.id},
        )

    async def for_order(self, order_id: str) -> Payment:
        principal = require_principal()
        async with self.db.session() as session:
            payment = await session.scalar(select(Payment).where(Payment.order_id == order_id))
        if payment is None or not (principal.is_privileged or payment.user_id == principal.subject):
            raise NotFound(f"No payment for order {order_id!r}.")
        return payment
