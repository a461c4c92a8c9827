"""The public listing on PostgreSQL: every filter, every order, and keyset pages."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from ecommerce.product.v1 import product_pb2
from tests.product_service.conftest import CatalogApi, StartCatalog, expect, violations

pytestmark = pytest.mark.integration


@dataclass
class Shelf:
    """A small catalog with something for every filter."""

    products: list[product_pb2.Product]
    books: str
    toys: str


@pytest.fixture
async def shelf(catalog: CatalogApi) -> Shelf:
    books = (await catalog.create_category("Books")).id
    toys = (await catalog.create_category("Toys")).id
    identity = catalog.identity
    specs = [
        # name, description, price, stock, category, seller
        ("The Art of Computer Programming", "Knuth's classic", 19_900, 3, books, identity.seller),
        ("Structure and Interpretation", "A WIZARD book", 4_500, 0, books, identity.seller),
        ("Red kite", "Flies in any wind", 2_500, 12, toys, identity.seller),
        ("blue kite", "A red tail, 100% nylon", 2_500, 0, toys, identity.other_seller),
        ("Yo-yo", "wooden_toy", 300, 50, toys, identity.other_seller),
        ("Zebra puzzle", "Logic PUZZLE book", 900, 5, "", identity.other_seller),
        ("abacus", "Counting frame", 2_500, 1, toys, identity.seller),
    ]
    products = [
        await catalog.create_product(
            name, description=text, price=price, stock=stock, category_id=category, by=seller
        )
        for name, text, price, stock, category, seller in specs
    ]
    hidden = await catalog.create_product("Archived kite", price=2_500, stock=9)
    await catalog.stub.DeleteProduct(
        product_pb2.DeleteProductRequest(id=hidden.id), metadata=identity.seller.auth
    )
    return Shelf(products, books, toys)


def names(products: list[product_pb2.Product]) -> list[str]:
    return [product.name for product in products]


def matching(shelf: Shelf, keep: Callable[[product_pb2.Product], bool]) -> set[str]:
    return {product.name for product in shelf.products if keep(product)}


async def test_filters(catalog: CatalogApi, shelf: Shelf) -> None:
    identity = catalog.identity
    cases: list[tuple[dict[str, Any], Callable[[product_pb2.Product], bool]]] = [
        ({}, lambda p: True),
        # Case-insensitive, in name or description; every word must occur.
        ({"query": "KITE"}, lambda p: "kite" in p.name.lower()),
        ({"query": "red"}, lambda p: p.name in {"Red kite", "blue kite"}),
        ({"query": "red kite"}, lambda p: p.name in {"Red kite", "blue kite"}),
        ({"query": "  Kite   BLUE "}, lambda p: p.name == "blue kite"),
        ({"query": "book"}, lambda p: p.name in {"Structure and Interpretation", "Zebra puzzle"}),
        # LIKE wildcards in the query are plain characters.
        ({"query": "100%"}, lambda p: p.name == "blue kite"),
        ({"query": "_"}, lambda p: p.name == "Yo-yo"),
        ({"query": "nothing-like-this"}, lambda p: False),
        ({"category_id": shelf.books}, lambda p: p.category_id == shelf.books),
        (
            {"seller_id": identity.other_seller.id},
            lambda p: p.seller_id == identity.other_seller.id,
        ),
        ({"min_price": 2_500}, lambda p: p.price.amount_minor >= 2_500),
        ({"max_price": 900}, lambda p: p.price.amount_minor <= 900),
        ({"min_price": 900, "max_price": 4_500}, lambda p: 900 <= p.price.amount_minor <= 4_500),
        ({"min_price": 0, "max_price": 0}, lambda p: False),
        ({"in_stock": True}, lambda p: p.stock > 0),
        ({"in_stock": False}, lambda p: p.stock == 0),
        (
            {"category_id": shelf.toys, "in_stock": True, "max_price": 2_500, "query": "kite"},
            lambda p: p.name == "Red kite",
        ),
    ]
    for request, keep in cases:
        found = names(await catalog.list_all(**request))
        assert len(found) == len(set(found)), request
        assert set(found) == matching(shelf, keep), request
        assert "Archived kite" not in found


def expected_orders(products: list[product_pb2.Product]) -> dict[str, list[str]]:
    """Ids in each listing order, id breaking ties in the order's direction."""

    def by_price(p: product_pb2.Product) -> tuple[int, str]:
        return (p.price.amount_minor, p.id)

    def by_time(p: product_pb2.Product) -> tuple[object, str]:
        return (p.create_time.ToDatetime(), p.id)

    orders = {
        "price": sorted(products, key=by_price),
        "-price": sorted(products, key=by_price, reverse=True),
        "name": sorted(products, key=lambda p: (p.name.lower(), p.id)),
        "-created_at": sorted(products, key=by_time, reverse=True),
    }
    orders[""] = orders["-created_at"]
    return {order_by: [p.id for p in ordered] for order_by, ordered in orders.items()}


async def test_every_order(catalog: CatalogApi, shelf: Shelf) -> None:
    expected = expected_orders(shelf.products)
    by_id = {p.id: p.name for p in shelf.products}
    assert [by_id[i] for i in expected["name"][:3]] == ["abacus", "blue kite", "Red kite"]
    for order_by, ordered in expected.items():
        # Small pages, so the keyset crosses ties (three products cost 2500).
        listed = await catalog.list_all(page_size=2, order_by=order_by)
        assert [p.id for p in listed] == ordered, order_by


async def test_pages_visit_every_product_once_while_products_are_added(
    catalog: CatalogApi,
) -> None:
    prices = itertools.cycle([100, 200, 200, 300, 500])
    originals = {
        (await catalog.create_product(f"Item {n:02}", price=next(prices), stock=n % 3)).id
        for n in range(23)
    }
    for order_by in ("price", "-price", "name", "-created_at"):
        seen: list[str] = []
        token = ""
        added = 0
        while True:
            page = await catalog.list_products(order_by=order_by, page_size=4, page_token=token)
            seen.extend(p.id for p in page.products)
            token = page.next_page_token
            if not token:
                break
            # New products land before and after the cursor; neither shifts the pages.
            for price in (50, 250, 1000):
                await catalog.create_product(f"New {order_by} {added}", price=price)
                added += 1
        assert len(seen) == len(set(seen)), order_by
        assert originals <= set(seen), order_by


async def test_page_size_and_order_are_checked(catalog: CatalogApi) -> None:
    for _ in range(3):
        await catalog.create_product()
    page = await catalog.list_products(page_size=0)
    assert len(page.products) == 3 and page.next_page_token == ""
    error = await expect(grpc.StatusCode.INVALID_ARGUMENT, catalog.list_products(page_size=101))
    assert "page_size" in violations(error)
    error = await expect(grpc.StatusCode.INVALID_ARGUMENT, catalog.list_products(order_by="id"))
    assert "order_by" in violations(error)
    error = await expect(
        grpc.StatusCode.INVALID_ARGUMENT, catalog.list_products(min_price=10, max_price=5)
    )
    assert "max_price" in violations(error)


async def test_page_tokens_are_tamper_proof_and_bound_to_the_filters(catalog: CatalogApi) -> None:
    for _ in range(3):
        await catalog.create_product()
    token = (await catalog.list_products(page_size=1, order_by="price")).next_page_token
    assert token
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    for bad_token, request in (
        (tampered, {"order_by": "price"}),
        ("not a token", {"order_by": "price"}),
        (token, {"order_by": "name"}),  # another order
        (token, {"order_by": "price", "query": "widget"}),  # another filter
    ):
        error = await expect(
            grpc.StatusCode.INVALID_ARGUMENT,
            catalog.list_products(page_size=1, page_token=bad_token, **request),
        )
        assert "page_token" in violations(error)
    # The same filters written differently are the same listing.
    again = await catalog.list_products(
        page_size=1, order_by=" price ", query="  ", page_token=token
    )
    assert len(again.products) == 1


async def test_listing_and_stock_on_sqlite(start_catalog: StartCatalog, tmp_path: Path) -> None:
    """`make run` defaults to SQLite: the same listing and reservations work there."""
    async with start_catalog(database_url=f"sqlite+aiosqlite:///{tmp_path / 'p.db'}") as api:
        created = [
            await api.create_product(
                f"{'Item' if n % 2 else 'item'} {n}", price=(n % 3) * 100, stock=n % 2
            )
            for n in range(7)
        ]
        for order_by, ordered in expected_orders(created).items():
            listed = await api.list_all(page_size=2, order_by=order_by)
            assert [p.id for p in listed] == ordered, order_by
        assert len(await api.list_all(query="ITEM 3")) == 1
        assert len(await api.list_all(in_stock=True, max_price=100)) == 2
        await api.reserve("order-1", (created[1].id, 1))
        await expect(
            grpc.StatusCode.FAILED_PRECONDITION, api.reserve("order-2", (created[1].id, 1))
        )
        assert await api.release("order-1") is True
        assert await api.stock_of(created[1].id) == 1
