"""Reads and writes of orders and their timelines, given a session or a transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from meshkit.data import Statement, Transaction
from order_service.models import Order, OrderItem, TimelineEvent
from order_service.records import OrderRecord

_orders: Table = Order.__table__  # type: ignore[assignment]
_timeline: Table = TimelineEvent.__table__  # type: ignore[assignment]
_items: Table = OrderItem.__table__  # type: ignore[assignment]


class Moved(NamedTuple):
    """An order that a transition moved: what its events need."""

    user_id: str
    total_minor: int
    currency_code: str


class OrderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, order_id: str, *, for_update: bool = False) -> Order | None:
        query = select(Order).where(Order.id == order_id)
        if for_update:
            # Items are loaded after, by the relationship: PostgreSQL locks no outer join.
            return await self.session.scalar(query.with_for_update())
        # One statement for the order and its items (the relationship's default is two).
        rows = await self.session.scalars(query.options(joinedload(Order.items)))
        return rows.unique().one_or_none()

    async def by_idempotency_key(self, user_id: str, key: str) -> Order | None:
        return await self.session.scalar(
            select(Order).where(Order.user_id == user_id, Order.idempotency_key == key)
        )

    async def page(
        self, *, user_id: str | None, status: str | None, before_id: str | None, limit: int
    ) -> Sequence[Order]:
        """Newest first: ids are time-ordered, so the id is the keyset."""
        query = select(Order).order_by(Order.id.desc()).limit(limit)
        if user_id:
            query = query.where(Order.user_id == user_id)
        if status:
            query = query.where(Order.status == status)
        if before_id:
            query = query.where(Order.id < before_id)
        return (await self.session.scalars(query)).all()


# Built once per set of columns it sets, run with parameters: every saga step moves an order.
_TRANSITIONS: dict[frozenset[str], Statement] = {}


def _transition(columns: frozenset[str]) -> Statement:
    statement = _TRANSITIONS.get(columns)
    if statement is None:
        statement = _TRANSITIONS[columns] = Statement(
            update(_orders)
            .where(_orders.c.id == bindparam("order_id"), _orders.c.status == bindparam("from"))
            .values({"status": bindparam("to"), **{name: bindparam(name) for name in columns}})
            .returning(_orders.c.user_id, _orders.c.total_minor, _orders.c.currency_code)
        )
    return statement


async def transition(
    tx: Transaction, order_id: str, from_status: str, to_status: str, **values: Any
) -> Moved | None:
    """Move an order on only from the state expected: a late or repeated event moves nothing.

    Returns who owns the moved order and its total (what the events it causes carry), or
    None when it did not move: no second statement to read them back.
    """
    row = await tx.fetchrow(
        _transition(frozenset(values)),
        {"order_id": order_id, "from": from_status, "to": to_status, **values},
    )
    if row is None:
        return None
    return Moved(row["user_id"], row["total_minor"], row["currency_code"])


# Built once, run with parameters: every order placed writes both.
_ADD_ORDER = Statement(_orders.insert())
_ADD_ITEMS = Statement(_items.insert())
# The columns of an order and of its items (but the order's id): what `OrderRecord` and
# `ItemRecord` hold, what is written, and what the fast reads select.
ORDER_FIELDS = tuple(column.key for column in _orders.columns)
ITEM_FIELDS = tuple(column.key for column in _items.columns if column.key != "order_id")


async def add_order(tx: Transaction, order: OrderRecord) -> None:
    """The order and its items; a second order with the owner's idempotency key breaks the
    unique constraint (`IntegrityViolation`)."""
    await tx.execute(_ADD_ORDER, {name: getattr(order, name) for name in ORDER_FIELDS})
    await tx.execute_many(
        _ADD_ITEMS,
        [
            {"order_id": order.id, **{name: getattr(item, name) for name in ITEM_FIELDS}}
            for item in order.items
        ],
    )


_STATUS_OF = Statement(select(_orders.c.status).where(_orders.c.id == bindparam("order_id")))


async def status_of(tx: Transaction, order_id: str) -> str | None:
    row = await tx.fetchrow(_STATUS_OF, {"order_id": order_id})
    return row["status"] if row is not None else None


# Built once, run with parameters (every event of an order records one): SQLite's, PostgreSQL's.
_RECORD_TIMELINE_EVENT = {
    "sqlite": Statement(
        sqlite_insert(_timeline).on_conflict_do_nothing(index_elements=["event_id"])
    ),
    "postgresql": Statement(
        postgresql_insert(_timeline).on_conflict_do_nothing(index_elements=["event_id"])
    ),
}


async def record_timeline_event(
    tx: Transaction,
    *,
    event_id: str,
    order_id: str,
    event_type: str,
    source: str,
    occurred_at: datetime,
    summary: str,
) -> None:
    """Idempotent: the same event recorded twice is one entry."""
    await tx.execute(
        _RECORD_TIMELINE_EVENT[tx.dialect],
        {
            "event_id": event_id,
            "order_id": order_id,
            "event_type": event_type,
            "source": source,
            "occurred_at": occurred_at,
            "summary": summary[:500],
        },
    )


class TimelineRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def for_order(self, order_id: str) -> Sequence[TimelineEvent]:
        return (
            await self.session.scalars(
                select(TimelineEvent)
                .where(TimelineEvent.order_id == order_id)
                .order_by(TimelineEvent.occurred_at, TimelineEvent.event_id)
            )
        ).all()
