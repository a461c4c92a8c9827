"""The driver-level product and reservation reads give what the ORM gives, on PostgreSQL and
on SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from meshkit.data import Database, upgrade_to_head_async
from meshkit.ids import new_id
from product_service.app import MIGRATIONS
from product_service.messages import product_message
from product_service.models import Category, Product, Reservation
from product_service.reads import load_product, load_reservations
from product_service.records import PRODUCT_FIELDS, ProductRecord

pytestmark = pytest.mark.integration


@pytest.fixture(params=["postgresql", "sqlite"])
async def database(
    request: pytest.FixtureRequest, postgres_url: str, tmp_path: Path
) -> AsyncIterator[Database]:
    """The service's own schema, migrated (on PostgreSQL it needs pg_trgm)."""
    url = postgres_url if request.param == "postgresql" else f"sqlite+aiosqlite:///{tmp_path}/p.db"
    await upgrade_to_head_async(MIGRATIONS, url)
    async with Database(url) as database:
        yield database


def a_product(**fields: object) -> Product:
    created = datetime(2026, 11, 1, 12, 30, 15, 123456, tzinfo=UTC)
    values: dict[str, object] = {
        "id": new_id(),
        "name": "Dune",
        "description": "Spice, sand and politics.",
        "price_minor": 1999,
        "currency_code": "EUR",
        "stock": 7,
        "category_id": None,
        "seller_id": new_id(),
        "archived": False,
        "created_at": created,
        "updated_at": created + timedelta(minutes=5),
    }
    return Product(**{**values, **fields})


def record_of(product: Product | None) -> ProductRecord | None:
    """The mapped object as the record the domain sees, field by field."""
    if product is None:
        return None
    return ProductRecord(**{name: getattr(product, name) for name in PRODUCT_FIELDS})


@pytest.mark.parametrize(("categorized", "archived"), [(True, False), (False, True)])
async def test_the_fast_read_equals_the_orm_read(
    database: Database, categorized: bool, archived: bool
) -> None:
    category = Category(id=new_id(), name=f"Books {new_id()}")
    product = a_product(category_id=category.id if categorized else None, archived=archived)
    async with database.transaction() as session:
        session.add(category)
        await session.flush()
        session.add(product)

    loaded = await load_product(database, product.id)
    async with database.session() as session:
        through_orm = record_of(await session.get(Product, product.id))

    assert loaded is not None and through_orm is not None
    assert product_message(loaded) == product_message(through_orm)
    assert (loaded.archived, loaded.category_id) == (archived, product.category_id)
    assert loaded.updated_at == product.updated_at and loaded.updated_at.tzinfo is not None


async def test_an_unknown_product_is_none(database: Database) -> None:
    assert await load_product(database, new_id()) is None


async def test_the_reservations_read_equals_the_orm_read(database: Database) -> None:
    first, second = a_product(), a_product()
    order_id, released_order = new_id(), new_id()
    released = datetime(2026, 11, 2, 8, 0, 0, 654321, tzinfo=UTC)
    async with database.transaction() as session:
        session.add_all([first, second])
        await session.flush()
        session.add_all(
            [
                Reservation(order_id=order_id, product_id=second.id, quantity=2),
                Reservation(order_id=order_id, product_id=first.id, quantity=1),
                Reservation(
                    order_id=released_order, product_id=first.id, quantity=3, released_at=released
                ),
            ]
        )

    for order in (order_id, released_order, new_id()):
        loaded = await load_reservations(database, order)
        async with database.session() as session:
            through_orm = (
                await session.scalars(
                    select(Reservation)
                    .where(Reservation.order_id == order)
                    .order_by(Reservation.product_id)
                )
            ).all()
        assert [(r.product_id, r.quantity, r.released_at) for r in loaded] == [
            (r.product_id, r.quantity, r.released_at) for r in through_orm
        ]
    assert [r.product_id for r in await load_reservations(database, order_id)] == sorted(
        [first.id, second.id]
    )
    (released_line,) = await load_reservations(database, released_order)
    assert released_line.released_at == released and released_line.released_at.tzinfo is not None
