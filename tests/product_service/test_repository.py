"""The catalog's unit of work on PostgreSQL and on SQLite: its repositories' statements, the
records they give, and what a commit keeps."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import fields, replace
from pathlib import Path

import pytest
from sqlalchemy import Table

from meshkit.data import Database, IntegrityViolation, upgrade_to_head_async
from meshkit.ids import new_id
from product_service.app import MIGRATIONS
from product_service.models import Category, Product, Reservation
from product_service.reads import load_category, load_product, load_reservations
from product_service.records import CategoryRecord, ProductRecord, ReservationRecord
from product_service.unit_of_work import CatalogUnitOfWork

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


async def a_product(database: Database, category_id: str | None = None) -> ProductRecord:
    async with CatalogUnitOfWork(database) as uow:
        product = await uow.products.add(
            name="Dune",
            description="Spice.",
            price_minor=1999,
            currency_code="EUR",
            stock=3,
            category_id=category_id,
            seller_id=new_id(),
        )
        await uow.commit()
    return product


def test_each_record_has_its_tables_columns() -> None:
    for record, model in (
        (CategoryRecord, Category),
        (ProductRecord, Product),
        (ReservationRecord, Reservation),
    ):
        table: Table = model.__table__  # type: ignore[assignment]
        assert {field.name for field in fields(record)} == set(table.columns.keys())


async def test_categories_are_added_renamed_and_deleted(database: Database) -> None:
    async with CatalogUnitOfWork(database) as uow:
        books = await uow.categories.add("Books", "Paper.")
        await uow.commit()
    assert books.created_at.tzinfo is not None
    assert await load_category(database, books.id) == books

    async with CatalogUnitOfWork(database) as uow:
        assert await uow.categories.by_name("BOOKS") == books
        renamed = await uow.categories.save(books, replace(books, name="Novels"))
        await uow.commit()
    assert renamed is not None
    assert (renamed.name, renamed.description, renamed.created_at) == (
        "Novels",
        "Paper.",
        books.created_at,
    )
    assert renamed.updated_at >= books.updated_at
    assert await load_category(database, books.id) == renamed

    with pytest.raises(IntegrityViolation):
        async with CatalogUnitOfWork(database) as uow:
            await uow.categories.add("novels", "")

    async with CatalogUnitOfWork(database) as uow:
        await uow.categories.delete(books.id)
        assert await uow.categories.save(books, renamed) is None
        await uow.commit()
    assert await load_category(database, books.id) is None


async def test_nothing_is_kept_without_a_commit(database: Database) -> None:
    async with CatalogUnitOfWork(database) as uow:
        category = await uow.categories.add("Toys", "")
    assert await load_category(database, category.id) is None


async def test_products_are_added_and_saved(database: Database) -> None:
    async with CatalogUnitOfWork(database) as uow:
        category = await uow.categories.add("Books", "")
        await uow.commit()
    product = await a_product(database, category.id)
    assert (product.stock, product.archived, product.category_id) == (3, False, category.id)
    assert await load_product(database, product.id) == product

    async with CatalogUnitOfWork(database) as uow:
        locked = await uow.products.get(product.id, for_update=True)
        assert locked == product
        saved = await uow.products.save(product, replace(product, name="Dune II", archived=True))
        assert await uow.products.count_in_category(category.id) == 1
        await uow.commit()
    assert saved is not None
    assert (saved.name, saved.archived, saved.created_at) == ("Dune II", True, product.created_at)
    assert await load_product(database, product.id) == saved

    # The category has a product: the foreign key refuses its deletion, and a product in a
    # category that does not exist.
    with pytest.raises(IntegrityViolation):
        async with CatalogUnitOfWork(database) as uow:
            await uow.categories.delete(category.id)
    with pytest.raises(IntegrityViolation):
        await a_product(database, new_id())


async def test_stock_is_taken_reserved_and_given_back(database: Database) -> None:
    first, second = await a_product(database), await a_product(database)
    order_id = new_id()
    async with CatalogUnitOfWork(database) as uow:
        taken = await uow.products.take_stock(first.id, 3)
        # The product as its stock was taken: what is left, and what it sells at.
        assert taken is not None
        assert (taken.stock, taken.price_minor, taken.name) == (0, first.price_minor, first.name)
        assert await uow.products.take_stock(second.id, 4) is None
        left = await uow.products.take_stock(second.id, 1)
        assert left is not None and left.stock == 2
        await uow.reservations.add(order_id, [(first.id, 3), (second.id, 1)])
        await uow.commit()

    async with CatalogUnitOfWork(database) as uow:
        reserved = await uow.reservations.of_order(order_id)
    assert list(await load_reservations(database, order_id)) == reserved
    assert sorted((r.product_id, r.quantity, r.released_at) for r in reserved) == sorted(
        [(first.id, 3, None), (second.id, 1, None)]
    )

    with pytest.raises(IntegrityViolation):
        async with CatalogUnitOfWork(database) as uow:
            await uow.reservations.add(order_id, [(first.id, 1)])

    async with CatalogUnitOfWork(database) as uow:
        released = await uow.reservations.release(order_id, reserved[0].created_at)
        for product_id, quantity in released:
            await uow.products.give_back_stock(product_id, quantity)
        assert await uow.reservations.release(order_id, reserved[0].created_at) == []
        await uow.commit()
    assert released == sorted([(first.id, 3), (second.id, 1)])
    stocks = [await load_product(database, p.id) for p in (first, second)]
    assert [p.stock if p else None for p in stocks] == [3, 3]
    assert all(r.released_at is not None for r in await load_reservations(database, order_id))


async def test_a_save_writes_only_what_it_changes(database: Database) -> None:
    # SQLite takes no lock on a read: a product read before a reservation took stock, then
    # renamed, must not write its old stock back.
    async with CatalogUnitOfWork(database) as uow:
        category = await uow.categories.add("Books", "")
        await uow.commit()
    product = await a_product(database, category.id)
    async with CatalogUnitOfWork(database) as uow:
        taken = await uow.products.take_stock(product.id, 2)
        assert taken is not None and taken.stock == product.stock - 2
        await uow.commit()
    async with CatalogUnitOfWork(database) as uow:
        saved = await uow.products.save(product, replace(product, name="Dune II"))
        unchanged = await uow.products.save(product, product)
        await uow.commit()
    assert saved is not None
    assert (saved.name, saved.stock) == ("Dune II", product.stock - 2)
    assert unchanged == product  # nothing to write: nothing written
