"""The order service's reads outside any unit of work: orders as committed, their timelines
and carts, each in the record shape the repositories give.

The reads every order page and every order placed make (an order by its id, and by its owner's
Idempotency-Key) are one statement on the driver itself on PostgreSQL: through the ORM the same
read cost the service several times as much CPU, which made `GET /v1/orders/{id}` the slowest
read of the mesh. SQLite (the laptop default) reads through the repository on a read session;
`tests/order_service/test_reads.py` holds both to the same answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, select

from meshkit.data import Database, in_utc
from meshkit.data.transactions import SessionTransaction
from order_service.models import Order, OrderItem, OrderStatus, TimelineEvent
from order_service.records import CartLineRecord, ItemRecord, OrderRecord, TimelineEntry
from order_service.repository import (
    ITEM_FIELDS,
    ORDER_FIELDS,
    CartRepository,
    OrderRepository,
    order_record,
)

_orders: Table = Order.__table__  # type: ignore[assignment]
_items: Table = OrderItem.__table__  # type: ignore[assignment]
_timeline: Table = TimelineEvent.__table__  # type: ignore[assignment]

_ORDER_WITH_ITEMS = (
    "SELECT "
    + ", ".join(f"o.{name}" for name in ORDER_FIELDS)
    + ", "
    + ", ".join(f"i.{name} AS item_{name}" for name in ITEM_FIELDS)
    + " FROM orders o LEFT JOIN order_items i ON i.order_id = o.id"
)
# The read of `GET /v1/orders/{id}`; the benchmark's floor for it runs the same statement.
ORDER_BY_ID = _ORDER_WITH_ITEMS + " WHERE o.id = $1 ORDER BY i.position"
# Every order placed with an Idempotency-Key asks first whether the key was used.
_BY_KEY = _ORDER_WITH_ITEMS + " WHERE o.user_id = $1 AND o.idempotency_key = $2 ORDER BY i.position"


async def load_order(db: Database, order_id: str) -> OrderRecord | None:
    """The order with its items, or None."""
    if not db.is_postgresql:
        async with db.session() as session:
            return await OrderRepository(SessionTransaction(session)).get(order_id)
    return await _fetch(db, ORDER_BY_ID, order_id)


async def load_order_by_key(db: Database, user_id: str, idempotency_key: str) -> OrderRecord | None:
    """The order its owner placed with this Idempotency-Key, with its items, or None."""
    if not db.is_postgresql:
        async with db.session() as session:
            orders = OrderRepository(SessionTransaction(session))
            return await orders.by_idempotency_key(user_id, idempotency_key)
    return await _fetch(db, _BY_KEY, user_id, idempotency_key)


async def _fetch(db: Database, query: str, *args: str) -> OrderRecord | None:
    async with db.driver_connection() as connection:
        rows = await connection.fetch(query, *args)
    if not rows:
        return None
    first = rows[0]
    values = in_utc({name: first[name] for name in ORDER_FIELDS})
    items = tuple(
        ItemRecord(**{name: row[f"item_{name}"] for name in ITEM_FIELDS})
        for row in rows
        if row["item_position"] is not None
    )
    return OrderRecord(**values, items=items)


async def page_of_orders(
    db: Database, *, user_id: str | None, status: str | None, before_id: str | None, limit: int
) -> list[OrderRecord]:
    """Newest first: ids are time-ordered, so the id is the keyset."""
    query = select(_orders).order_by(_orders.c.id.desc()).limit(limit)
    if user_id:
        query = query.where(_orders.c.user_id == user_id)
    if status:
        query = query.where(_orders.c.status == status)
    if before_id:
        query = query.where(_orders.c.id < before_id)
    async with db.session() as session:
        rows = (await session.execute(query)).mappings().all()
        items: dict[str, list[dict[str, Any]]] = {row["id"]: [] for row in rows}
        if items:
            found = await session.execute(
                select(_items)
                .where(_items.c.order_id.in_(list(items)))
                .order_by(_items.c.order_id, _items.c.position)
            )
            for item in found.mappings():
                items[item["order_id"]].append(dict(item))
    return [order_record(dict(row), items[row["id"]]) for row in rows]


async def pending_since_before(
    db: Database, before: datetime, limit: int
) -> list[tuple[str, datetime]]:
    """The ids and creation times of up to `limit` orders still PENDING that were created
    before `before`, oldest first (the index on status and creation time serves it)."""
    async with db.session() as session:
        rows = await session.execute(
            select(_orders.c.id, _orders.c.created_at)
            .where(_orders.c.status == OrderStatus.PENDING, _orders.c.created_at < before)
            .order_by(_orders.c.created_at)
            .limit(limit)
        )
        return [(row.id, row.created_at) for row in rows]


async def saved_among(db: Database, order_ids: Sequence[str]) -> set[str]:
    """Which of `order_ids` name a saved order."""
    saved: set[str] = set()
    async with db.session() as session:
        for start in range(0, len(order_ids), 500):
            batch = list(order_ids[start : start + 500])
            rows = await session.execute(select(_orders.c.id).where(_orders.c.id.in_(batch)))
            saved.update(row.id for row in rows)
    return saved


async def timeline_of(db: Database, order_id: str) -> list[TimelineEntry]:
    """Every event of the order, oldest first."""
    async with db.session() as session:
        rows = await session.execute(
            select(_timeline)
            .where(_timeline.c.order_id == order_id)
            .order_by(_timeline.c.occurred_at, _timeline.c.event_id)
        )
        return [TimelineEntry(**row) for row in rows.mappings()]


async def cart_lines(db: Database, user_id: str) -> list[CartLineRecord]:
    """The user's cart as committed, oldest line first."""
    async with db.session() as session:
        return await CartRepository(SessionTransaction(session)).lines(user_id)
