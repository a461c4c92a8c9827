"""Reads and writes of notifications: a repository for units of work, and the page a user reads."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnDefault,
    Integer,
    String,
    Table,
    bindparam,
    func,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from meshkit.data import Database, RowsInsert, Statement, Transaction, fetch_alone
from meshkit.data.transactions import SessionTransaction
from notification_service.models import Notification, NotificationStatus
from notification_service.records import NotificationRecord

_notifications: Table = Notification.__table__  # type: ignore[assignment]
# Built once, run with parameters: every email of every order is one, and the emails of a
# batch of events go in one statement as its unit of work commits. Every column but the
# mailer's outcome, those a notification is not given taking their defaults.
_RECORD = RowsInsert(_notifications, [c.key for c in _notifications.columns if c.key != "sent_at"])
_DEFAULTS = {
    column.key: column.default.arg
    for column in _notifications.columns
    if isinstance(column.default, ColumnDefault) and column.default.is_scalar
}
# Only over the attempt it claimed, and while nothing is settled: a pass whose lease ran out,
# the notification claimed again by another (and perhaps given up on), does not overwrite
# what that one saves.
_SAVE_ATTEMPT = Statement(
    update(_notifications)
    .where(
        _notifications.c.id == bindparam("notification_id"),
        _notifications.c.attempts == bindparam("claimed_attempts"),
        _notifications.c.status == NotificationStatus.PENDING,
    )
    .values(
        {
            name: bindparam(name)
            for name in ("status", "attempts", "failure_reason", "next_attempt_at", "sent_at")
        }
    )
)


def _claim_statement(batch_size: int) -> Statement:
    """The mailer's claim of a pass: the oldest due, unsent notifications, each one's attempt
    counted and its next one put off until the lease ends, in one statement that returns
    them as claimed. Replicas skip each other's locked rows instead of waiting (PostgreSQL).
    """
    due = (
        select(_notifications.c.id)
        .where(
            _notifications.c.status == NotificationStatus.PENDING,
            _notifications.c.next_attempt_at <= bindparam("now"),
        )
        .order_by(_notifications.c.next_attempt_at)
        .limit(batch_size)
        .with_for_update(skip_locked=True)
    )
    return Statement(
        update(_notifications)
        .where(_notifications.c.id.in_(due.scalar_subquery()))
        .values(attempts=_notifications.c.attempts + 1, next_attempt_at=bindparam("lease_until"))
        .returning(*_notifications.c)
    )


# Built once per batch size: the mailer asks for the same batch every pass.
_CLAIMS: dict[int, Statement] = {}

# The emails of a pass that went out, saved as sent in one statement (PostgreSQL): each only
# over the attempt its pass claimed, as `_SAVE_ATTEMPT`.
_SAVE_SENT = Statement(
    update(_notifications)
    .where(
        tuple_(_notifications.c.id, _notifications.c.attempts).in_(
            select(
                func.unnest(bindparam("ids", type_=ARRAY(String))),
                func.unnest(bindparam("claimed", type_=ARRAY(Integer))),
            )
        ),
        _notifications.c.status == NotificationStatus.PENDING,
    )
    .values(status=NotificationStatus.SENT, failure_reason="", sent_at=bindparam("sent_at"))
    .returning(_notifications.c.id)
)


class NotificationRepository:
    """The notifications of one unit of work, by prebuilt statements on its transaction."""

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    def add(self, **values: Any) -> None:
        """Store a notification as the unit of work commits (`Transaction.hold`); a second for
        the same message breaks its unique `source_message_id` then, and the redelivery that
        made it rolls back."""
        self.tx.hold(_RECORD, [{**_DEFAULTS, **values}])

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


async def claim_due(
    db: Database, now: datetime, lease_until: datetime, batch_size: int
) -> list[NotificationRecord]:
    """Claim up to `batch_size` notifications due by `now` for a pass, leased until
    `lease_until`; each as claimed, its `attempts` counting the attempt about to be made.

    Committed before any email goes: what dies with the sender is sent again once the lease
    ends, and counted.
    """
    statement = _CLAIMS.get(batch_size)
    if statement is None:
        statement = _CLAIMS[batch_size] = _claim_statement(batch_size)
    rows = await fetch_alone(db, statement, {"now": now, "lease_until": lease_until})
    # RETURNING gives no order: the oldest first, as they were written.
    return sorted((NotificationRecord(**row) for row in rows), key=lambda n: (n.created_at, n.id))


async def save_sent(
    db: Database, sent: Sequence[NotificationRecord], sent_at: datetime
) -> set[str]:
    """Save `sent` (as claimed) as sent; the ids of those saved, which leaves out any another
    pass has claimed again since (its lease having ended)."""
    if not sent:
        return set()
    if db.is_postgresql:
        rows = await fetch_alone(
            db,
            _SAVE_SENT,
            {
                "ids": [n.id for n in sent],
                "claimed": [n.attempts for n in sent],
                "sent_at": sent_at,
            },
        )
        return {row["id"] for row in rows}
    saved: set[str] = set()
    async with db.transaction() as session:
        repository = NotificationRepository(SessionTransaction(session))
        for notification in sent:
            if await repository.save_attempt(
                notification.id,
                claimed_attempts=notification.attempts,
                status=NotificationStatus.SENT,
                attempts=notification.attempts,
                failure_reason="",
                next_attempt_at=notification.next_attempt_at,
                sent_at=sent_at,
            ):
                saved.add(notification.id)
    return saved


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
