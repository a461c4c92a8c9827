"""The catalog's repositories in a unit of work: categories, products and reservations."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

from sqlalchemy import ColumnElement, Table, bindparam, func, insert, not_, select, update

from meshkit.data import Statement, Transaction, utcnow
from product_service.models import Category, Product, Reservation
from product_service.records import CategoryRecord, ProductRecord, ReservationRecord

_categories: Table = Category.__table__  # type: ignore[assignment]
_products: Table = Product.__table__  # type: ignore[assignment]
_reservations: Table = Reservation.__table__  # type: ignore[assignment]

# Listings and orders see only the products that are not archived.
LISTED: ColumnElement[bool] = not_(_products.c.archived)

# Shared with the reads outside a unit of work (`reads.py`), so both give the same records.
CATEGORY_BY_ID = Statement(select(_categories).where(_categories.c.id == bindparam("category_id")))
PRODUCT_BY_ID = Statement(select(_products).where(_products.c.id == bindparam("product_id")))
RESERVATIONS_OF_ORDER = Statement(
    select(_reservations)
    .where(_reservations.c.order_id == bindparam("order_id"))
    .order_by(_reservations.c.product_id)
)

# A bound parameter may not share its name with a column an UPDATE sets, hence "new_name" and
# the like below.
_CATEGORY_BY_NAME = Statement(
    select(_categories).where(func.lower(_categories.c.name) == bindparam("name_lower"))
)
_ADD_CATEGORY = Statement(insert(_categories).returning(*_categories.c))
_DELETE_CATEGORY = Statement(
    _categories.delete().where(_categories.c.id == bindparam("category_id"))
)

_PRODUCT_FOR_UPDATE = Statement(
    select(_products).where(_products.c.id == bindparam("product_id")).with_for_update()
)
_ADD_PRODUCT = Statement(insert(_products).returning(*_products.c))
# What a product update may change. Only the columns that changed are written: a row read
# unlocked (SQLite takes no lock on a read) must not write back a stock or an archived flag that
# a reservation or an archive committed since.
PRODUCT_CHANGEABLE = (
    "name",
    "description",
    "price_minor",
    "currency_code",
    "stock",
    "category_id",
    "archived",
)
RecordT = TypeVar("RecordT", CategoryRecord, ProductRecord)
CATEGORY_CHANGEABLE = ("name", "description")
# Saves built once per table and set of columns they set, run with parameters.
_SAVES: dict[tuple[str, frozenset[str]], Statement] = {}


async def _save_changes(
    tx: Transaction, table: Table, stored: RecordT, record: RecordT, changeable: Sequence[str]
) -> RecordT | None:
    """Write the columns of `changeable` in which `record` differs from `stored` (the same row
    as read in this transaction), with a new update time: only what changed, so that two
    changes to different columns of one row both stand. The record as stored (`stored` when
    nothing differs: nothing is written), or None when the row is gone."""
    changed = {
        name: getattr(record, name)
        for name in changeable
        if getattr(record, name) != getattr(stored, name)
    }
    if not changed:
        return stored
    key = (table.name, frozenset(changed))
    statement = _SAVES.get(key)
    if statement is None:
        # A bound parameter may not share its name with a column the UPDATE sets.
        statement = _SAVES[key] = Statement(
            update(table)
            .where(table.c.id == bindparam("row_id"))
            .values(
                {name: bindparam(f"new_{name}") for name in changed}
                | {"updated_at": bindparam("now")}
            )
            .returning(*table.c)
        )
    row = await tx.fetchrow(
        statement,
        {"row_id": stored.id, **{f"new_{n}": v for n, v in changed.items()}, "now": utcnow()},
    )
    return type(stored)(**row) if row is not None else None


_COUNT_IN_CATEGORY = Statement(
    select(func.count().label("products"))
    .select_from(_products)
    .where(_products.c.category_id == bindparam("category_id"))
)
# Every order reserves its items with these two.
_TAKE_STOCK = Statement(
    update(_products)
    .where(
        _products.c.id == bindparam("product_id"),
        _products.c.stock >= bindparam("quantity"),
        LISTED,
    )
    .values(stock=_products.c.stock - bindparam("quantity"), updated_at=bindparam("now"))
    .returning(*_products.c)
)
_ADD_RESERVATION = Statement(_reservations.insert())
_GIVE_BACK_STOCK = Statement(
    update(_products)
    .where(_products.c.id == bindparam("product_id"))
    .values(stock=_products.c.stock + bindparam("quantity"), updated_at=bindparam("now"))
    .returning(_products.c.stock)
)
_RELEASE_RESERVATIONS = Statement(
    update(_reservations)
    .where(
        _reservations.c.order_id == bindparam("released_order"),
        _reservations.c.released_at.is_(None),
    )
    .values(released_at=bindparam("now"))
    .returning(_reservations.c.product_id, _reservations.c.quantity)
)


class CategoryRepository:
    """The categories of one unit of work."""

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    async def get(self, category_id: str) -> CategoryRecord | None:
        row = await self.tx.fetchrow(CATEGORY_BY_ID, {"category_id": category_id})
        return CategoryRecord(**row) if row is not None else None

    async def by_name(self, name: str) -> CategoryRecord | None:
        """The category of this name, whatever the case of either."""
        row = await self.tx.fetchrow(_CATEGORY_BY_NAME, {"name_lower": name.lower()})
        return CategoryRecord(**row) if row is not None else None

    async def add(self, name: str, description: str) -> CategoryRecord:
        """A new category; a name taken meanwhile breaks the unique index
        (`IntegrityViolation`)."""
        row = await self.tx.fetchrow(_ADD_CATEGORY, {"name": name, "description": description})
        assert row is not None  # an INSERT ... RETURNING returns its row
        return CategoryRecord(**row)

    async def save(self, stored: CategoryRecord, category: CategoryRecord) -> CategoryRecord | None:
        """Write what `category` changes of `stored` (its name, its description) with a new
        update time; the record as stored, or None when the category is gone."""
        return await _save_changes(self.tx, _categories, stored, category, CATEGORY_CHANGEABLE)

    async def delete(self, category_id: str) -> None:
        """Delete the category; a product in it breaks the foreign key (`IntegrityViolation`)."""
        await self.tx.execute(_DELETE_CATEGORY, {"category_id": category_id})


class ProductRepository:
    """The products of one unit of work."""

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    async def get(self, product_id: str, *, for_update: bool = False) -> ProductRecord | None:
        """The product, archived or not; `for_update` locks its row until the transaction ends,
        so a concurrent reservation waits rather than interleaving."""
        statement = _PRODUCT_FOR_UPDATE if for_update else PRODUCT_BY_ID
        row = await self.tx.fetchrow(statement, {"product_id": product_id})
        return ProductRecord(**row) if row is not None else None

    async def add(
        self,
        *,
        name: str,
        description: str,
        price_minor: int,
        currency_code: str,
        stock: int,
        category_id: str | None,
        seller_id: str,
    ) -> ProductRecord:
        """A new listed product; a category deleted meanwhile breaks the foreign key
        (`IntegrityViolation`)."""
        row = await self.tx.fetchrow(
            _ADD_PRODUCT,
            {
                "name": name,
                "description": description,
                "price_minor": price_minor,
                "currency_code": currency_code,
                "stock": stock,
                "category_id": category_id,
                "seller_id": seller_id,
                "archived": False,
            },
        )
        assert row is not None  # an INSERT ... RETURNING returns its row
        return ProductRecord(**row)

    async def save(self, stored: ProductRecord, product: ProductRecord) -> ProductRecord | None:
        """Write what `product` changes of `stored`, the same product as read in this
        transaction, with a new update time; the record as stored, or None when the product
        is gone."""
        return await _save_changes(self.tx, _products, stored, product, PRODUCT_CHANGEABLE)

    async def count_in_category(self, category_id: str) -> int:
        """Products in a category, archived ones included (they still refer to it)."""
        row = await self.tx.fetchrow(_COUNT_IN_CATEGORY, {"category_id": category_id})
        return int(row["products"]) if row is not None else 0

    async def take_stock(self, product_id: str, quantity: int) -> ProductRecord | None:
        """Take `quantity` off a listed product's stock in one conditional statement.

        Returns the product as it is after (its stock what is left, its price what the
        reservation is priced at), or None when there is not enough (or the product is
        archived or unknown). Concurrent takers queue on the row lock and each re-checks the
        condition, so stock never goes negative.
        """
        row = await self.tx.fetchrow(
            _TAKE_STOCK, {"product_id": product_id, "quantity": quantity, "now": utcnow()}
        )
        return None if row is None else ProductRecord(**row)

    async def give_back_stock(self, product_id: str, quantity: int) -> int | None:
        """Return reserved units to stock (archived products too); the stock after it."""
        row = await self.tx.fetchrow(
            _GIVE_BACK_STOCK, {"product_id": product_id, "quantity": quantity, "now": utcnow()}
        )
        return None if row is None else int(row["stock"])


class ReservationRepository:
    """The reservations of one unit of work."""

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    async def of_order(self, order_id: str) -> list[ReservationRecord]:
        """The order's reservations, released or not, by product id."""
        rows = await self.tx.fetch(RESERVATIONS_OF_ORDER, {"order_id": order_id})
        return [ReservationRecord(**row) for row in rows]

    async def add(self, order_id: str, lines: Sequence[tuple[str, int]]) -> None:
        """One row per (product id, quantity); the primary key (order id, product id) lets one
        reserve of an order win (`IntegrityViolation` for the others)."""
        now = utcnow()
        await self.tx.execute_many(
            _ADD_RESERVATION,
            [
                {
                    "order_id": order_id,
                    "product_id": product_id,
                    "quantity": quantity,
                    "created_at": now,
                }
                for product_id, quantity in lines
            ],
        )

    async def release(self, order_id: str, now: datetime) -> list[tuple[str, int]]:
        """Mark an order's open reservations released; (product id, quantity) of each, by
        product id.

        Of two concurrent releases one marks the rows and the other finds none open, so
        stock goes back once.
        """
        rows = await self.tx.fetch(_RELEASE_RESERVATIONS, {"released_order": order_id, "now": now})
        return sorted((row["product_id"], int(row["quantity"])) for row in rows)
