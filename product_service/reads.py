"""The product read behind every cache miss, and the reservation check before every
reserve, on the driver itself.

Each reservation changes a product's stock and so drops its cached form: the order service's
next read of that product misses and comes here. On PostgreSQL the row comes back through
asyncpg directly, as a plain record, a fraction of what `Session.get` cost (as for users and
orders). SQLite (the laptop default) reads through the ORM; `tests/product_service/
test_reads.py` holds both to the same answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from meshkit.data import Database, in_utc
from product_service.models import Product, Reservation
from product_service.repository import ProductRepository, ReservationRepository

_COLUMNS = tuple(column.name for column in Product.__table__.columns)
_PRODUCT_BY_ID = f"SELECT {', '.join(_COLUMNS)} FROM products WHERE id = $1"
_RESERVATIONS_OF_ORDER = (
    "SELECT product_id, quantity, released_at FROM reservations"
    " WHERE order_id = $1 ORDER BY product_id"
)


@dataclass(frozen=True, slots=True)
class ProductRecord:
    """A product as read, with the attributes of `Product` that its message is built from."""

    id: str
    name: str
    description: str
    price_minor: int
    currency_code: str
    stock: int
    category_id: str | None
    seller_id: str
    archived: bool
    created_at: datetime
    updated_at: datetime


async def load_product(db: Database, product_id: str) -> Product | ProductRecord | None:
    """The product, archived or not, or None."""
    if not db.is_postgresql:
        async with db.session() as session:
            return await ProductRepository(session).get(product_id)
    values = await db.driver_row(_PRODUCT_BY_ID, product_id)
    return ProductRecord(**values) if values is not None else None


@dataclass(frozen=True, slots=True)
class ReservedLine:
    """A reservation row as read: what a repeated reserve of its order answers with."""

    product_id: str
    quantity: int
    released_at: datetime | None


async def load_reservations(db: Database, order_id: str) -> Sequence[Reservation | ReservedLine]:
    """The order's reservation rows, released or not, by product id; empty when none.

    Every reserve asks first (a repeat answers with the first reservation), and nearly every
    answer is empty."""
    if not db.is_postgresql:
        async with db.session() as session:
            return await ReservationRepository(session).of_order(order_id)
    async with db.driver_connection() as connection:
        rows = await connection.fetch(_RESERVATIONS_OF_ORDER, order_id)
    return [ReservedLine(**in_utc(dict(row))) for row in rows]
