"""The order reads that every order page and every order placed make, each in one statement
on the driver itself: an order by its id, and by its owner's Idempotency-Key.

On PostgreSQL an order and its items come back through asyncpg directly, as plain records:
through the ORM the same read cost the service several times as much CPU, which made
`GET /v1/orders/{id}` the slowest read of the mesh. SQLite (the laptop default) reads through
the ORM; `tests/order_service/test_reads.py` holds both to the same answer.
"""

from __future__ import annotations

from meshkit.data import Database, in_utc
from order_service.models import Order
from order_service.records import ItemRecord, OrderRecord
from order_service.repository import ITEM_FIELDS, ORDER_FIELDS, OrderRepository

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


async def load_order(db: Database, order_id: str) -> Order | OrderRecord | None:
    """The order with its items, or None."""
    if not db.is_postgresql:
        async with db.session() as session:
            return await OrderRepository(session).get(order_id)
    return await _fetch(db, ORDER_BY_ID, order_id)


async def load_order_by_key(
    db: Database, user_id: str, idempotency_key: str
) -> Order | OrderRecord | None:
    """The order its owner placed with this Idempotency-Key, with its items, or None."""
    if not db.is_postgresql:
        async with db.session() as session:
            return await OrderRepository(session).by_idempotency_key(user_id, idempotency_key)
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
