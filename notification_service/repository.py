"""Reads and writes of notifications: a repository for units of work, and the page a user reads."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import String, Table, any_, bindparam, select, update
from sqlalchemy.dialects.postgresql import ARRAY

from meshkit.data import Database, Statement, Transaction
from notification_service.models import Notification, NotificationStatus
from notification_service.records import NotificationRecord

_notifications: Table = Notification.__table__  # type: ignore[assignment]
# Built once, run with parameters: every email of every order is one.
_RECORD = Statement(_notifications.insert())
# Only over the attempt it claimed: a pass whose lease ran out, the notification claimed
# again by another, does not overwrite what that one saves.
_SAVE_ATTEMPT = Statement(
    update(_notifications)
    .where(
        _notifications.c.id == bindparam("notification_id"),
        _notifications.c.attempts == bindparam("claimed_attempts"),
    )
    .values(
        {
            name: bindparam(name)
            for name in ("status", "attempts", "failure_reason", "next_attempt_at", "sent_at")
        }
    )
)


# A pass's notifications about to be sent: each one's attempt counted, and none due again
# until the lease ends. The rows are locked by the read that found them due, in the same
# transaction, so `attempts + 1` counts from what that read saw. One statement per pass on
# PostgreSQL (an array of ids); one per notification elsewhere.
_CLAIM_ALL = Statement(
    update(_notifications)
    .where(_notifications.c.id == any_(bindparam("notification_ids", type_=ARRAY(String))))
    .values(attempts=_notifications.c.attempts + 1, next_attempt_at=bindparam("lease_until"))
)
_CLAIM_ONE = Statement(
    update(_notifications)
    .where(_notifications.c.id == bindparam("notification_id"))
    .values(attempts=_notifications.c.attempts + 1, next_attempt_at=bindparam("lease_until"))
)


def _due_statement(batch_size: int, *, skip_locked: bool) -> Statement:
    """The mailer's work: due, unsent notifications, oldest first."""
    query = (
        select(_notifications)
        .where(
            _notifications.c.status == NotificationStatus.PENDING,
            _notifications.c.next_attempt_at <= bindparam("now"),
        )
        .order_by(_notifications.c.next_attempt_at)
        .limit(batch_size)
    )
    # Replicas take disjoint batches instead of waiting on each other's rows (PostgreSQL).
    return Statement(query.with_for_update(skip_locked=True) if skip_locked else query)


# Built once per batch size and backend: the mailer asks for the same batch every pass.
_DUE: dict[tuple[int, bool], Statement] = {}


class NotificationRepository:
    """The notifications of one unit of work, by prebuilt statements on its transaction."""

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    async def add(self, **values: Any) -> None:
        """Store a notification; a second for the same message breaks its unique
        `source_message_id`, and the redelivery that made it rolls back."""
        await self.tx.execute(_RECORD, values)

    async def due(self, now: datetime, batch_size: int) -> list[NotificationRecord]:
        """Up to `batch_size` notifications due by `now`, locked for this transaction."""
        skip_locked = self.tx.dialect == "postgresql"
        statement = _DUE.get((batch_size, skip_locked))
        if statement is None:
            statement = _DUE[batch_size, skip_locked] = _due_statement(
                batch_size, skip_locked=skip_locked
            )
        return [NotificationRecord(**row) for row in await self.tx.fetch(statement, {"now": now})]

    async def claim(self, claimed: Sequence[NotificationRecord], lease_until: datetime) -> None:
        """Count an attempt of each of `claimed`, before it is made, and put off its next one
        until `lease_until`: what dies with the sender is sent again then, and counted."""
        if not claimed:
            return
        if self.tx.dialect == "postgresql":
            await self.tx.execute(
                _CLAIM_ALL,
                {"notification_ids": [n.id for n in claimed], "lease_until": lease_until},
            )
            return
        await self.tx.execute_many(
            _CLAIM_ONE,
            [{"notification_id": n.id, "lease_until": lease_until} for n in claimed],
        )

    async def save_attempt(
        self,
        notification_id: str,
        *,
        claimed_attempts: int,
        status: str,
        attempts: int,
        failure_reason: str,
        next_attempt_at: datetime,
        sent_at: datetime | None,
    ) -> bool:
        """Save an attempt's outcome; False when the notification is no longer at the attempt
        `claimed_attempts` counted (another pass claimed it since)."""
        saved = await self.tx.execute(
            _SAVE_ATTEMPT,
            {
                "notification_id": notification_id,
                "claimed_attempts": claimed_attempts,
                "status": status,
                "attempts": attempts,
                "failure_reason": failure_reason,
                "next_attempt_at": next_attempt_at,
                "sent_at": sent_at,
            },
        )
        return saved > 0


async def page_of_user(
    db: Database, user_id: str, *, before_id: str | None, limit: int
) -> Sequence[NotificationRecord]:
    """A user's notifications, newest first: ids are time-ordered, so the id is the keyset."""
    query = (
        select(_notifications)
        .where(_notifications.c.user_id == user_id)
        .order_by(_notifications.c.id.desc())
        .limit(limit)
    )
    if before_id:
        query = query.where(_notifications.c.id < before_id)
    async with db.session() as session:
        rows = (await session.execute(query)).mappings().all()
    return [NotificationRecord(**row) for row in rows]


async def of_order(
    db: Database, order_id: str, *, user_id: str | None = None, limit: int = 100
) -> Sequence[NotificationRecord]:
    """An order's notifications, oldest first; only `user_id`'s when given. An order makes
    one per event it goes through, a handful: `limit` only bounds a reply that something
    else went wrong with."""
    query = (
        select(_notifications)
        .where(_notifications.c.order_id == order_id)
        # By creation: ids are ordered by the millisecond only.
        .order_by(_notifications.c.created_at, _notifications.c.id)
        .limit(limit)
    )
    if user_id is not None:
        query = query.where(_notifications.c.user_id == user_id)
    async with db.session() as session:
        rows = (await session.execute(query)).mappings().all()
    return [NotificationRecord(**row) for row in rows]
