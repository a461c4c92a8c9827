"""The notification service's domain: an email per event, stored, sent, retried, never lost."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from datetime import timedelta

import grpc
from google.protobuf.message import Message

from ecommerce.events.v1 import events_pb2
from ecommerce.user.v1 import user_pb2, user_pb2_grpc
from meshkit.context import Principal, Role
from meshkit.data import Database, utcnow
from meshkit.errors import Unavailable, require_id
from meshkit.expiring import ExpiringCache
from meshkit.failures import FailureStreak, dependency_down
from meshkit.identity import USERS, authorize
from meshkit.ids import new_id
from meshkit.messaging import Envelope
from meshkit.rpc import PageTokenCodec, page_size
from meshkit.shielding import finish
from meshkit.telemetry import TRACEPARENT, continuing, trace_headers
from notification_service import metrics
from notification_service.emails import SUBJECTS, EmailRenderer
from notification_service.mailer import MailConnection, SmtpMailer
from notification_service.models import NotificationStatus
from notification_service.records import NotificationRecord
from notification_service.repository import claim_due, of_order, page_of_user, save_sent
from notification_service.unit_of_work import NotificationUnitOfWork

logger = logging.getLogger(__name__)

NOTIFIED_EVENTS = tuple(SUBJECTS)


class Recipients:
    """Who a user is, asked of the user service with this service's own token.

    Answers are kept for `ttl_seconds`: an order makes several emails to one customer within
    seconds, and each lookup cost a call that was the user service's busiest. A name changed
    meanwhile shows in emails after at most that long.
    """

    def __init__(
        self, channel: grpc.aio.Channel, *, ttl_seconds: float = 60.0, max_size: int = 10_000
    ) -> None:
        self.stub = user_pb2_grpc.UserServiceStub(channel)
        self.ttl = ttl_seconds
        self._known: ExpiringCache[str, tuple[str, str]] = ExpiringCache(max_size)

    async def lookup(self, user_id: str) -> tuple[str, str]:
        known = self._known.get(user_id)
        if known is not None:
            return known
        try:
            user = await self.stub.GetUser(user_pb2.GetUserRequest(id=user_id))
        except grpc.aio.AioRpcError as error:
            # Raised to the consumer: the message is retried later, not dropped.
            raise Unavailable(f"cannot look up user {user_id}: {error.code().name}") from error
        self._known.put(user_id, (user.email, user.full_name), time.time() + self.ttl)
        return user.email, user.full_name


class Notifications:
    def __init__(
        self,
        database: Database,
        unit_of_work: Callable[[], NotificationUnitOfWork],
        recipients: Recipients,
        renderer: EmailRenderer,
        mailer: SmtpMailer,
        page_tokens: PageTokenCodec,
        *,
        retry_base_seconds: float = 1.0,
        retry_max_seconds: float = 300.0,
        max_attempts: int = 12,
        poll_seconds: float = 1.0,
        keepalive_seconds: float = 10.0,
        batch_size: int = 20,
        lease_seconds: float | None = None,
    ) -> None:
        self.db = database
        # Each event is handled in a unit of work the consumer opens; each mailer pass in one
        # of its own.
        self.unit_of_work = unit_of_work
        self.recipients = recipients
        self.renderer = renderer
        self.mailer = mailer
        self.page_tokens = page_tokens
        self.retry_base = retry_base_seconds
        self.retry_max = retry_max_seconds
        self.max_attempts = max_attempts
        self.poll_seconds = poll_seconds
        self.keepalive_seconds = keepalive_seconds
        self.batch_size = batch_size
        # Longer than a pass can take, every email of it waiting out the relay's timeout.
        self.lease_seconds = lease_seconds or max(
            60.0, 2 * batch_size * mailer.settings.smtp_timeout_seconds
        )
        self.due = asyncio.Event()

    # --- events become notifications ----------------------------------------------------

    async def on_event(
        self, uow: NotificationUnitOfWork, event: Message, envelope: Envelope
    ) -> None:
        if isinstance(event, events_pb2.OrderCancelled) and event.reason.startswith(
            "payment failed"
        ):
            return  # the payment.failed email already told the customer, with the reason
        user_id = str(getattr(event, "user_id", ""))
        email, name = await self.recipients.lookup(user_id)
        rendered = self.renderer.render(envelope.event_type, event, customer_name=name)
        now = utcnow()
        uow.notifications.add(
            id=new_id(),
            source_message_id=envelope.message_id,
            user_id=user_id,
            order_id=str(getattr(event, "order_id", "")),
            event_type=envelope.event_type,
            recipient=email,
            subject=rendered.subject,
            body_text=rendered.text,
            body_html=rendered.html,
            status=NotificationStatus.PENDING,
            created_at=now,
            next_attempt_at=now,
            # The traceparent alone: what continues the trace, in a bounded column.
            trace_context=json.dumps({TRACEPARENT: parent})
            if (parent := trace_headers().get(TRACEPARENT))
            else "",
        )
        uow.after_commit(self.due.set)

    # --- delivery ---------------------------------------------------------------------

    async def run_mailer(self) -> None:
        """Send due notifications until cancelled; failures wait with backoff, then retry.

        Passes share one SMTP connection while emails keep coming (one per pass cost a
        connection per email at a steady trickle); it closes after `keepalive_seconds` idle.
        """
        failures = FailureStreak()
        async with self.mailer.connection() as connection:
            while True:
                self.due.clear()  # before looking: a notification saved meanwhile wakes the wait
                try:
                    sent = await self.deliver_due(connection)
                    if failed := failures.ended():
                        logger.warning("mailer passing again after %d failures", failed)
                except asyncio.CancelledError:
                    raise
                except Exception as error:
                    sent = 0
                    level = failures.failed()
                    if not dependency_down(error):
                        logger.exception("mailer pass failed")
                    else:  # the database or the user service away: no bug to trace
                        logger.log(
                            level,
                            "mailer pass failed: a dependency is out of reach (%s: %s)",
                            type(error).__name__,
                            error,
                        )
                if sent == self.batch_size:
                    continue
                try:
                    await asyncio.wait_for(self.due.wait(), self.poll_seconds)
                except TimeoutError:
                    if connection.idle_seconds >= self.keepalive_seconds:
                        await connection.close()

    async def deliver_due(self, connection: MailConnection) -> int:
        """One pass over due notifications; returns how many were attempted.

        Delivery is at least once. Each attempt is counted and the notification leased (not
        due again for `lease_seconds`, longer than a pass can take) by a claim that commits
        before the emails go, and no transaction is held while they do: a sender that dies
        after an email left, but before its outcome was saved, sends it again once the lease
        is over, counted, and under the same Message-ID, which a receiver's dedupe recognises
        as the same message. Stopped mid-pass, it saves what it sent first.
        """
        now = utcnow()
        claimed = await claim_due(
            self.db, now, now + timedelta(seconds=self.lease_seconds), self.batch_size
        )
        # Claimed past its last attempt (each one of an unknown outcome, its sender having
        # died each time): given up on with the outcomes below, not sent again.
        spent = [n for n in claimed if n.attempts > self.max_attempts]
        due = [n for n in claimed if n.attempts <= self.max_attempts]
        attempted: list[NotificationRecord] = []
        failures: dict[str, Exception] = {}
        try:
            # The connection opens at the first send only: an empty pass touches no relay.
            for notification in due:
                # In the trace of the event that asked for the email, if it was traced.
                with continuing(
                    f"send {notification.event_type} email",
                    json.loads(notification.trace_context or "{}"),
                ):
                    try:
                        await connection.send(
                            notification.recipient,
                            notification.subject,
                            notification.body_text,
                            notification.body_html,
                            message_id=self.mailer.message_id(notification.id),
                        )
                    except Exception as exc:
                        failures[notification.id] = exc
                    # Its outcome known: one stopped mid-send stays claimed, sent again later.
                    attempted.append(notification)
        finally:
            # Cancelled (a deploy) between two sends: what went out is saved all the same.
            await finish(self._record_all(attempted, failures, spent))
        return len(due)

    async def _record_all(
        self,
        attempted: list[NotificationRecord],
        failures: dict[str, Exception],
        spent: list[NotificationRecord],
    ) -> None:
        """Save the outcome of each attempt its claim counted: the emails that went out in one
        statement; the failures and the notifications given up on (rare) one by one."""
        sent = [n for n in attempted if n.id not in failures]
        if sent:
            saved = await save_sent(self.db, sent, utcnow())
            for notification in sent:
                if notification.id not in saved:
                    # Claimed again meanwhile (its lease ran out): that pass's outcome stands.
                    logger.warning(
                        "notification %s was claimed again before its outcome was saved",
                        notification.id,
                    )
            metrics.SENT.inc(len(saved))
        failed = [n for n in attempted if n.id in failures]
        if not failed and not spent:
            return
        async with self.unit_of_work() as uow:
            for notification in spent:
                await self._give_up(uow, notification, "no outcome known of its last attempt")
            for notification in failed:
                await self._record_failure(uow, notification, failures[notification.id])
            await uow.commit()

    async def _give_up(
        self, uow: NotificationUnitOfWork, notification: NotificationRecord, reason: str
    ) -> None:
        """Keep `notification` (as claimed) as failed, with the attempts made before its claim."""
        logger.error("giving up on notification %s: %s", notification.id, reason)
        await uow.notifications.save_attempt(
            notification.id,
            claimed_attempts=notification.attempts,
            status=NotificationStatus.FAILED,
            attempts=notification.attempts - 1,
            failure_reason=reason,
            next_attempt_at=notification.next_attempt_at,
            sent_at=None,
        )
        uow.after_commit(metrics.FAILED.inc)

    async def _record_failure(
        self, uow: NotificationUnitOfWork, notification: NotificationRecord, failure: Exception
    ) -> None:
        """Save the failed attempt its claim counted (`notification` as claimed): retried with
        backoff, or kept as failed after the last."""
        attempts = notification.attempts
        reason = f"{type(failure).__name__}: {failure}"[:500]
        status = NotificationStatus.PENDING
        next_attempt_at = notification.next_attempt_at
        if attempts >= self.max_attempts:
            status = NotificationStatus.FAILED
            logger.error("giving up on notification %s: %s", notification.id, reason)
            uow.after_commit(metrics.FAILED.inc)
        else:
            uow.after_commit(metrics.RETRIED.inc)
            delay = min(self.retry_max, self.retry_base * 2 ** (attempts - 1))
            next_attempt_at = utcnow() + timedelta(seconds=delay * random.uniform(0.8, 1.2))
            logger.warning(
                "sending notification %s failed (attempt %d): %s",
                notification.id,
                attempts,
                reason,
            )
        await uow.notifications.save_attempt(
            notification.id,
            claimed_attempts=attempts,
            status=status,
            attempts=attempts,
            failure_reason=reason,
            next_attempt_at=next_attempt_at,
            sent_at=None,
        )

    # --- reading ---------------------------------------------------------------------

    async def of_order(self, caller: Principal, order_id: str) -> Sequence[NotificationRecord]:
        """The notifications about an order, oldest first: all of them for a service or an
        admin, the caller's own for anyone else (none, for another's order)."""
        authorize(caller, *USERS, Role.SERVICE)
        require_id(order_id, "order_id")
        return await of_order(
            self.db, order_id, user_id=None if caller.is_privileged else caller.subject
        )

    async def list_own(
        self, caller: Principal, requested_size: int, page_token: str
    ) -> tuple[Sequence[NotificationRecord], str]:
        user_id = authorize(caller, *USERS).subject
        limit = page_size(requested_size)
        before = self.page_tokens.decode(page_token, user_id)[0] if page_token else None
        rows = await page_of_user(self.db, user_id, before_id=before, limit=limit + 1)
        next_token = (
            self.page_tokens.encode([rows[limit - 1].id], user_id) if len(rows) > limit else ""
        )
        return rows[:limit], next_token
