"""Reads and writes of categories, products and reservations, given a session or a
transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Table,
    bindparam,
    func,
    literal,
    not_,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from meshkit.data import Statement, Transaction, utcnow
from product_service.listing import Cursor, ProductFilter, SortField, like_pattern
from product_service.models import Category, Product, Reservation

_SORT_COLUMNS: dict[SortField, Any] = {
    "price": Product.price_minor,
    "name": func.lower(Product.name),
    "created_at": Product.created_at,
}

_LISTED = not_(Product.archived)


def _typed_literal(column: ColumnElement[Any], value: Any) -> ColumnElement[Any]:
    """A bound value carrying the column's type, so datetimes bind like the column's."""
    return literal(value, column.type)


class CategoryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, category_id: str) -> Category | None:
        return await self.session.get(Category, category_id)

    async def by_name(self, name: str) -> Category | None:
        return await self.session.scalar(
            select(Category).where(func.lower(Category.name) == name.lower())
        )

    async def add(self, category: Category) -> Category:
        self.session.add(category)
        await self.session.flush()
        return category

    async def delete(self, category: Category) -> None:
        await self.session.delete(category)
        await self.session.flush()

    async def page(self, after: str | None, limit: int) -> Sequence[tuple[Category, str]]:
        """Categories by name (ignoring case), each with its sort key."""
        key = func.lower(Category.name)
        query = select(Category, key).order_by(key).limit(limit)
        if after is not None:
            query = query.where(key > after)
        return [(row[0], row[1]) for row in (await self.session.execute(query)).all()]


class ProductRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, product_id: str, *, for_update: bool = False) -> Product | None:
        return await self.session.get(Product, product_id, with_for_update=for_update or None)

    async def add(self, product: Product) -> Product:
        self.session.add(product)
        await self.session.flush()
        return product

    async def count_in_category(self, category_id: str) -> int:
        """Products in a category, archived ones included (they still refer to it)."""
        count = await self.session.scalar(
            select(func.count()).select_from(Product).where(Product.category_id == category_id)
        )
        return int(count or 0)

    async def page(
        self, listing: ProductFilter, after: Cursor | None, limit: int
    ) -> Sequence[tuple[Product, Any]]:
        """One page of listed products, each with its sort key (for the next page's cursor).

        Keyset pagination on (sort key, id): rows inserted meanwhile neither shift a page
        nor repeat one, and the index of the sort order serves every page alike.
        """
        key = _SORT_COLUMNS[listing.sort.field]
        query = select(Product, key).where(_LISTED)
        for word in listing.words:
            pattern = like_pattern(word)
            query = query.where(
                or_(
                    func.lower(Product.name).like(pattern, escape="\\"),
                    func.lower(Product.description).like(pattern, escape="\\"),
                )
            )
        if listing.category_id:
            query = query.where(Product.category_id == listing.category_id)
        if listing.seller_id:
            query = query.where(Product.seller_id == listing.seller_id)
        if listing.min_price is not None:
            query = query.where(Product.price_minor >= listing.min_price)
        if listing.max_price is not None:
            query = query.where(Product.price_minor <= listing.max_price)
        if listing.in_stock is not None:
            query = query.where(Product.stock > 0 if listing.in_stock else Product.stock == 0)
        if after is not None:
            position = tuple_(key, Product.id)
            boundary = tuple_(_typed_literal(key, after.key), after.id)
            query = query.where(
                position < boundary if listing.sort.descending else position > boundary
            )
        if listing.sort.descending:
            query = query.order_by(key.desc(), Product.id.desc())
        else:
            query = query.order_by(key.asc(), Product.id.asc())
        rows = (await self.session.execute(query.limit(limit))).all()
        return [(row[0], row[1]) for row in rows]

    async def give_back_stock(self, product_id: str, quantity: int) -> int | None:
        """Return reserved units to stock (archived products too); the stock after it."""
        result = await self.session.execute(
            update(Product)
            .where(Product.id == product_id)
            .values(stock=Product.stock + quantity, updated_at=utcnow())
            .returning(Product.stock)
            .execution_options(synchronize_session=False)
        )
        after = result.scalar_one_or_none()
        return None if after is None else int(after)


_products: Table = Product.__table__  # type: ignore[assignment]
_reservations: Table = Reservation.__table__  # type: ignore[assignment]

# Built once, run with parameters: every order reserves its items with these.
_TAKE_STOCK = Statement(
    update(_products)
    .where(
        _products.c.id == bindparam("product_id"),
        _products.c.stock >= bindparam("quantity"),
        _LISTED,
    )
    .values(stock=_products.c.stock - bindparam("quantity"), updated_at=bindparam("now"))
    .returning(_products.c.stock)
)
_ADD_RESERVATION = Statement(_reservations.insert())


async def take_stock(tx: Transaction, product_id: str, quantity: int) -> int | None:
    """Take `quantity` off a listed product's stock in one conditional statement.

    Returns the stock left, or None when there is not enough (or the product is archived or
    unknown). Concurrent takers queue on the row lock and each re-checks the condition, so
    stock never goes negative.
    """
    row = await tx.fetchrow(
        _TAKE_STOCK, {"product_id": product_id, "quantity": quantity, "now": utcnow()}
    )
    return None if row is None else int(row["stock"])


async def add_reservations(
    tx: Transaction, order_id: str, lines: Sequence[tuple[str, int]]
) -> None:
    """One row per (product id, quantity); the primary key (order id, product id) lets one
    reserve of an order win (`IntegrityViolation` for the others)."""
    now = utcnow()
    await tx.execute_many(
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


class ReservationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def of_order(self, order_id: str) -> Sequence[Reservation]:
        return (
            await self.session.scalars(
                select(Reservation)
                .where(Reservation.order_id == order_id)
                .order_by(Reservation.product_id)
            )
        ).all()

    async def release(self, order_id: str, now: datetime) -> Sequence[tuple[str, int]]:
        """Mark an order's open reservations released; (product id, quantity) of each.

        Of two concurrent releases one marks the rows and the other finds none open, so
        stock goes back once.
        """
        result = await self.session.execute(
            update(Reservation)
            .where(Reservation.order_id == order_id, Reservation.released_at.is_(None))
            .values(released_at=now)
            .returning(Reservation.product_id, Reservation.quantity)
            .execution_options(synchronize_session=False)
        )
        return sorted((row[0], int(row[1])) for row in result.all())
