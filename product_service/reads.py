"""The product read behind every cache miss, on the driver itself.

Each reservation changes a product's stock and so drops its cached form: the order service's
next read of that product misses and comes here. On PostgreSQL the row comes back through
asyncpg directly, as a plain record, a fraction of what `Session.get` cost (as for users and
orders). SQLite (the laptop default) reads through the ORM; `tests/product_service/
test_reads.py` holds both to the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from meshkit.db import Database
from product_service.models import Product
from product_service.repository import ProductRepository

_COLUMNS = tuple(column.name for column in Product.__table__.columns)
_PRODUCT_BY_ID = f"SELECT {', '.join(_COLUMNS)} FROM products WHERE id = $1"


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
