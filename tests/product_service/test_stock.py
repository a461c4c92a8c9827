"""Stock reservations on PostgreSQL: never oversold, all or nothing, once per order."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from ecommerce.product.v1 import product_pb2
from meshkit.rpc import timestamp
from tests.product_service.conftest import CatalogApi, expect, violations

pytestmark = pytest.mark.integration

Code = grpc.StatusCode


async def test_fifty_concurrent_orders_for_five_units(catalog: CatalogApi) -> None:
    product = await catalog.create_product("Limited edition", stock=5)
    results = await asyncio.gather(
        *(catalog.reserve(f"order-{n}", (product.id, 1)) for n in range(50)),
        return_exceptions=True,
    )
    succeeded = [r for r in results if isinstance(r, product_pb2.ReserveStockResponse)]
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(succeeded) == 5
    assert len(refused) == 45
    assert {error.code() for error in refused} == {Code.FAILED_PRECONDITION}
    assert await catalog.stock_of(product.id) == 0
    check = await catalog.stub.CheckStock(
        product_pb2.CheckStockRequest(product_id=product.id, quantity=1),
        metadata=catalog.identity.service.auth,
    )
    assert (check.available, check.stock) == (False, 0)


async def test_a_retried_reserve_reserves_once(catalog: CatalogApi) -> None:
    product = await catalog.create_product("Kite", stock=10)
    first = await catalog.reserve("order-1", (product.id, 3))
    assert not first.already_reserved
    assert [(i.product_id, i.quantity) for i in first.items] == [(product.id, 3)]
    again = await catalog.reserve("order-1", (product.id, 3))
    assert again.already_reserved
    assert list(again.items) == list(first.items)
    assert await catalog.stock_of(product.id) == 7
    # Each answer names the products as priced: the first as its stock was taken.
    for answer in (first, again):
        [priced] = answer.products
        assert (priced.id, priced.name, priced.price, priced.seller_id, priced.stock) == (
            product.id,
            "Kite",
            product.price,
            product.seller_id,
            7,
        )


async def test_a_reservation_names_its_products_in_the_order_of_its_items(
    catalog: CatalogApi,
) -> None:
    first = await catalog.create_product("First", price=250)
    second = await catalog.create_product("Second", price=100)
    # Asked for in the reverse of their ids' order: items and products come sorted by id.
    reserved = await catalog.reserve("order-2", (second.id, 1), (first.id, 1))
    assert [i.product_id for i in reserved.items] == sorted([first.id, second.id])
    assert [p.id for p in reserved.products] == [i.product_id for i in reserved.items]
    prices = {p.id: p.price.amount_minor for p in reserved.products}
    assert prices == {first.id: 250, second.id: 100}


async def test_a_reservation_in_two_currencies_is_refused_and_takes_nothing(
    catalog: CatalogApi,
) -> None:
    dollars = await catalog.create_product("Dollars", stock=5)
    euros = await catalog.create_product("Euros", stock=5, currency="EUR")
    error = await expect(
        Code.FAILED_PRECONDITION, catalog.reserve("order-3", (dollars.id, 1), (euros.id, 1))
    )
    assert "one currency" in (error.details() or "")
    assert (await catalog.stock_of(dollars.id), await catalog.stock_of(euros.id)) == (5, 5)


@pytest.mark.parametrize("stock", [100, 2])
async def test_concurrent_reserves_of_one_order_reserve_once(
    catalog: CatalogApi, stock: int
) -> None:
    # With exactly the order's quantity in stock, the repeats that queued behind the first
    # find none left: the first's reservation is still their answer, not a shortage.
    product = await catalog.create_product("Kite", stock=stock)
    results = await asyncio.gather(
        *(catalog.reserve("order-1", (product.id, 2)) for _ in range(10))
    )
    assert sum(not r.already_reserved for r in results) == 1
    assert await catalog.stock_of(product.id) == stock - 2


async def test_all_or_nothing_across_items(catalog: CatalogApi) -> None:
    plenty = await catalog.create_product("Plenty", stock=10)
    scarce = await catalog.create_product("Scarce", stock=1)
    error = await expect(
        Code.FAILED_PRECONDITION, catalog.reserve("order-1", (plenty.id, 2), (scarce.id, 2))
    )
    assert scarce.id in (error.details() or "")
    assert "2 wanted, 1 left" in (error.details() or "")
    assert await catalog.stock_of(plenty.id) == 10
    assert await catalog.stock_of(scarce.id) == 1
    # The failed attempt left no reservation behind: the order can try again.
    ok = await catalog.reserve("order-1", (plenty.id, 2), (scarce.id, 1))
    assert not ok.already_reserved
    assert (await catalog.stock_of(plenty.id), await catalog.stock_of(scarce.id)) == (8, 0)


async def test_release_gives_stock_back_once(catalog: CatalogApi) -> None:
    a = await catalog.create_product("A", stock=5)
    b = await catalog.create_product("B", stock=5)
    await catalog.reserve("order-1", (a.id, 2), (b.id, 5))
    assert (await catalog.stock_of(a.id), await catalog.stock_of(b.id)) == (3, 0)
    assert await catalog.release("order-1") is True
    assert await catalog.release("order-1") is False
    assert (await catalog.stock_of(a.id), await catalog.stock_of(b.id)) == (5, 5)
    assert await catalog.release("never-reserved") is False
    # A released order does not reserve again.
    await expect(Code.FAILED_PRECONDITION, catalog.reserve("order-1", (a.id, 1)))
    assert await catalog.stock_of(a.id) == 5


async def test_concurrent_releases_give_back_once(catalog: CatalogApi) -> None:
    product = await catalog.create_product("Kite", stock=4)
    await catalog.reserve("order-1", (product.id, 4))
    released = await asyncio.gather(*(catalog.release("order-1") for _ in range(8)))
    assert released.count(True) == 1
    assert await catalog.stock_of(product.id) == 4


async def test_invalid_reservations(catalog: CatalogApi) -> None:
    product = await catalog.create_product("Kite", stock=4)
    error = await expect(
        Code.INVALID_ARGUMENT, catalog.reserve("order-1", (product.id, 0), (product.id, 1))
    )
    assert set(violations(error)) == {"items[0].quantity", "items[1].product_id"}
    error = await expect(Code.INVALID_ARGUMENT, catalog.reserve("order-1"))
    assert "items" in violations(error)
    error = await expect(Code.INVALID_ARGUMENT, catalog.reserve("", (product.id, 1)))
    assert "order_id" in violations(error)
    await expect(Code.FAILED_PRECONDITION, catalog.reserve("order-2", ("no-such-product", 1)))
    assert await catalog.stock_of(product.id) == 4


async def test_held_reservations_of_a_window_page_by_page_for_services_only(
    catalog: CatalogApi,
) -> None:
    product = await catalog.create_product("Lantern", stock=100)
    start = datetime.now(UTC) - timedelta(seconds=1)
    for n in range(5):
        await catalog.reserve(f"held-{n}", (product.id, 1))
    await catalog.reserve("released", (product.id, 1))
    assert await catalog.release("released")
    end = datetime.now(UTC) + timedelta(seconds=1)

    async def page(token: str = "", **window: datetime) -> product_pb2.ListHeldReservationsResponse:
        bounds = {"start": start, "end": end, **window}
        return await catalog.stub.ListHeldReservations(
            product_pb2.ListHeldReservationsRequest(
                reserve_time_start=timestamp(bounds["start"]),
                reserve_time_end=timestamp(bounds["end"]),
                page_size=2,
                page_token=token,
            ),
            metadata=catalog.identity.service.auth,
        )

    seen: list[str] = []
    token = ""
    while True:
        got = await page(token)
        seen.extend(got.order_ids)
        token = got.next_page_token
        if not token:
            break
    assert seen == [f"held-{n}" for n in range(5)]  # ascending; the released one is not held
    # Another window: none of them.
    assert not (await page(start=end, end=end + timedelta(seconds=5))).order_ids
    error = await expect(Code.INVALID_ARGUMENT, page(start=end, end=start))
    assert "reserve_time_end" in violations(error)
    await expect(
        Code.PERMISSION_DENIED,
        catalog.stub.ListHeldReservations(
            product_pb2.ListHeldReservationsRequest(
                reserve_time_start=timestamp(start), reserve_time_end=timestamp(end)
            ),
            metadata=catalog.identity.seller.auth,
        ),
    )
