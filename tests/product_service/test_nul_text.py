"""NUL in text, which PostgreSQL text cannot hold: refused as INVALID_ARGUMENT naming the
field (or NOT_FOUND for an id), never an INTERNAL from the database."""

from __future__ import annotations

import grpc
import pytest

from tests.product_service.conftest import CatalogApi, expect, violations

pytestmark = pytest.mark.integration

Code = grpc.StatusCode
NUL_MESSAGE = "must not contain NUL characters"


async def test_nul_in_a_new_products_name_or_description_names_the_field(
    catalog: CatalogApi,
) -> None:
    error = await expect(Code.INVALID_ARGUMENT, catalog.create_product("Kite\x00"))
    assert violations(error) == {"product.name": NUL_MESSAGE}
    error = await expect(
        Code.INVALID_ARGUMENT, catalog.create_product("Kite", description="red\x00")
    )
    assert violations(error) == {"product.description": NUL_MESSAGE}


async def test_nul_in_a_changed_product_names_the_field(catalog: CatalogApi) -> None:
    kite = await catalog.create_product("Kite")
    error = await expect(Code.INVALID_ARGUMENT, catalog.update_product(kite.id, name="\x00"))
    assert violations(error) == {"product.name": NUL_MESSAGE}
    assert (await catalog.get_product(kite.id)).name == "Kite"


async def test_nul_in_a_category_names_the_field(catalog: CatalogApi) -> None:
    error = await expect(Code.INVALID_ARGUMENT, catalog.create_category("Kites\x00", "x"))
    assert violations(error) == {"category.name": NUL_MESSAGE}
    error = await expect(Code.INVALID_ARGUMENT, catalog.create_category("Kites", "x\x00"))
    assert violations(error) == {"category.description": NUL_MESSAGE}


async def test_nul_in_listing_filters_names_the_filter(catalog: CatalogApi) -> None:
    error = await expect(Code.INVALID_ARGUMENT, catalog.list_products(query="kite\x00"))
    assert violations(error) == {"query": NUL_MESSAGE}
    error = await expect(Code.INVALID_ARGUMENT, catalog.list_products(seller_id="s\x00"))
    assert violations(error) == {"seller_id": "is not an id"}


async def test_an_id_with_nul_names_no_product(catalog: CatalogApi) -> None:
    await expect(Code.NOT_FOUND, catalog.get_product("p\x00"))


async def test_nul_in_a_reservation_names_the_field(catalog: CatalogApi) -> None:
    kite = await catalog.create_product("Kite")
    error = await expect(Code.INVALID_ARGUMENT, catalog.reserve("o\x00", (kite.id, 1)))
    assert violations(error) == {"order_id": NUL_MESSAGE}
    error = await expect(Code.INVALID_ARGUMENT, catalog.reserve("o1", ("p\x00", 1)))
    assert violations(error) == {"items[0].product_id": NUL_MESSAGE}
    assert await catalog.stock_of(kite.id) == 10
