"""The catalog's reads outside a unit of work: products, reservations, categories, listings.

The product behind every cache miss and the reservation check before every reserve run on the
driver itself. Each reservation changes a product's stock and so drops its cached form: the
next read of that product misses and comes here. On PostgreSQL the row comes
back through asyncpg directly, as a plain record, a fraction of what `Session.get` cost (as for
users and orders). SQLite (the laptop default) reads through a session, with the repositories'
own statements; `tests/product_service/test_reads.py` holds both to the same answer. Every read
gives the records the repositories give (`product_service.records`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Executable,
    RowMapping,
    Table,
    func,
    literal,
    or_,
    select,
    tuple_,
)

from meshkit.data import Database, in_utc
from product_service.listing import Cursor, ProductFilter, SortField, SortKey, like_pattern
from product_service.models import Category, Product, Reservation
from product_service.records import (
    PRODUCT_FIELDS,
    RESERVATION_FIELDS,
    CategoryRecord,
    ProductRecord,
    ReservationRecord,
)
from product_service.repository import (
    CATEGORY_BY_ID,
    LISTED,
    PRODUCT_BY_ID,
    RESERVATIONS_OF_ORDER,
)

_categories: Table = Category.__table__  # type: ignore[assignment]
_products: Table = Product.__table__  # type: ignore[assignment]

_PRODUCT_BY_ID = f"SELECT {', '.join(PRODUCT_FIELDS)} FROM products WHERE id = $1"
_RESERVATIONS_OF_ORDER = (
    f"SELECT {', '.join(RESERVATION_FIELDS)} FROM reservations"
    " WHERE order_id = $1 ORDER BY product_id"
)

_SORT_COLUMNS: dict[SortField, ColumnElement[Any]] = {
    "price": _products.c.price_minor,
    "name": func.lower(_products.c.name),
    "created_at": _products.c.created_at,
}
_SORT_KEY = "sort_key"
_Record = TypeVar("_Record", CategoryRecord, ProductRecord)

# Categories by name, ignoring case; the name in lower case is each one's key in page tokens.
_category_key = func.lower(_categories.c.name)
_CATEGORIES = select(_categories, _category_key.label(_SORT_KEY)).order_by(_category_key)


async def _rows(
    db: Database, statement: Executable, params: Mapping[str, Any] | None = None
) -> Sequence[RowMapping]:
    """The rows of a query through a read session, by column name."""
    async with db.session() as session:
        result = await session.execute(statement, dict(params or {}))
        return result.mappings().all()


async def load_product(db: Database, product_id: str) -> ProductRecord | None:
    """The product, archived or not, or None."""
    if not db.is_postgresql:
        rows = await _rows(db, PRODUCT_BY_ID.statement, {"product_id": product_id})
        return ProductRecord(**rows[0]) if rows else None
    values = await db.driver_row(_PRODUCT_BY_ID, product_id)
    return ProductRecord(**values) if values is not None else None


async def load_reservations(db: Database, order_id: str) -> Sequence[ReservationRecord]:
    """The order's reservation rows, released or not, by product id; empty when none.

    Every reserve asks first (a repeat answers with the first reservation), and nearly every
    answer is empty."""
    if not db.is_postgresql:
        rows = await _rows(db, RESERVATIONS_OF_ORDER.statement, {"order_id": order_id})
        return [ReservationRecord(**row) for row in rows]
    async with db.driver_connection() as connection:
        found = await connection.fetch(_RESERVATIONS_OF_ORDER, order_id)
    return [ReservationRecord(**in_utc(dict(row))) for row in found]


async def held_reservations(
    db: Database, start: datetime, end: datetime, after_order_id: str, limit: int
) -> list[str]:
    """Up to `limit` ids of orders with stock still reserved, reserved in [start, end), past
    `after_order_id`, ascending (the index on reservation time serves the window)."""
    reservations: Table = Reservation.__table__  # type: ignore[assignment]
    query = (
        select(reservations.c.order_id)
        .where(
            reservations.c.released_at.is_(None),
            reservations.c.created_at >= start,
            reservations.c.created_at < end,
            reservations.c.order_id > after_order_id,
        )
        .group_by(reservations.c.order_id)
        .order_by(reservations.c.order_id)
        .limit(limit)
    )
    return [str(row["order_id"]) for row in await _rows(db, query)]


async def load_category(db: Database, category_id: str) -> CategoryRecord | None:
    """The category, or None."""
    rows = await _rows(db, CATEGORY_BY_ID.statement, {"category_id": category_id})
    return CategoryRecord(**rows[0]) if rows else None


async def category_page(
    db: Database, after: str | None, limit: int
) -> list[tuple[CategoryRecord, str]]:
    """Categories by name (ignoring case), each with its sort key."""
    query = _CATEGORIES.limit(limit)
    if after is not None:
        query = query.where(_category_key > after)
    return [_with_key(CategoryRecord, row) for row in await _rows(db, query)]


def _with_key(record: Callable[..., _Record], row: RowMapping) -> tuple[_Record, Any]:
    """The record of a row of a listing, and the sort key selected beside its columns."""
    values = dict(row)
    key = values.pop(_SORT_KEY)
    return record(**values), key


def _typed_literal(column: ColumnElement[Any], value: Any) -> ColumnElement[Any]:
    """A bound value carrying the column's type, so datetimes bind like the column's."""
    return literal(value, column.type)


async def product_page(
    db: Database, listing: ProductFilter, after: Cursor | None, limit: int
) -> list[tuple[ProductRecord, SortKey]]:
    """One page of listed products, each with its sort key (for the next page's cursor).

    Keyset pagination on (sort key, id): rows inserted meanwhile neither shift a page
    nor repeat one, and the index of the sort order serves every page alike.
    """
    key = _SORT_COLUMNS[listing.sort.field]
    query = select(_products, key.label(_SORT_KEY)).where(LISTED)
    for word in listing.words:
        pattern = like_pattern(word)
        query = query.where(
            or_(
                func.lower(_products.c.name).like(pattern, escape="\\"),
                func.lower(_products.c.description).like(pattern, escape="\\"),
            )
        )
    if listing.category_id:
        query = query.where(_products.c.category_id == listing.category_id)
    if listing.seller_id:
        query = query.where(_products.c.seller_id == listing.seller_id)
    if listing.min_price is not None:
        query = query.where(_products.c.price_minor >= listing.min_price)
    if listing.max_price is not None:
        query = query.where(_products.c.price_minor <= listing.max_price)
    if listing.in_stock is not None:
        query = query.where(_products.c.stock > 0 if listing.in_stock else _products.c.stock == 0)
    if after is not None:
        position = tuple_(key, _products.c.id)
        boundary = tuple_(_typed_literal(key, after.key), after.id)
        query = query.where(position < boundary if listing.sort.descending else position > boundary)
    if listing.sort.descending:
        query = query.order_by(key.desc(), _products.c.id.desc())
    else:
        query = query.order_by(key.asc(), _products.c.id.asc())
    rows = await _rows(db, query.limit(limit))
    return [_with_key(ProductRecord, row) for row in rows]
