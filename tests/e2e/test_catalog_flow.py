"""The catalog end to end, through the real gateway, with Redis caching in between."""

from __future__ import annotations

import uuid

import pytest

from tests.e2e.conftest import RunningMesh
from tests.e2e.shop import Shop, assert_problem

pytestmark = pytest.mark.e2e


async def test_seller_lists_customers_find_others_cannot_edit(mesh: RunningMesh) -> None:
    shop = Shop(mesh)
    admin, seller, rival = await shop.admin(), await shop.seller(), await shop.seller()
    word = uuid.uuid4().hex[:10]
    category = await mesh.client.post(
        "/v1/categories", json={"name": f"Kites {word}"}, headers=admin.headers
    )
    assert category.status_code == 201, category.text
    created = await mesh.client.post(
        "/v1/products",
        json={
            "name": f"Box kite {word}",
            "description": "Flies in light wind",
            "price": {"amount_minor": 4_500, "currency_code": "USD"},
            "stock": 7,
            "category_id": category.json()["id"],
        },
        headers=seller.headers,
    )
    assert created.status_code == 201, created.text
    product = created.json()
    assert created.headers["location"].endswith(product["id"])

    params = {
        "query": word.upper(),
        "category_id": category.json()["id"],
        "min_price": 4_000,
        "max_price": 5_000,
        "in_stock": "true",
        "order_by": "price",
    }
    for _ in range(2):  # a miss, then a hit from the cache: the same answer
        found = await mesh.client.get("/v1/products", params=params)
        assert found.status_code == 200, found.text
        assert [p["id"] for p in found.json()["products"]] == [product["id"]]

    edit = await mesh.client.patch(
        f"/v1/products/{product['id']}", json={"stock": 0}, headers=rival.headers
    )
    assert_problem(edit, 403)
    mine = await mesh.client.patch(
        f"/v1/products/{product['id']}", json={"stock": 0}, headers=seller.headers
    )
    assert mine.status_code == 200, mine.text
    # The write invalidated the cached listing: out of stock, it is no longer found.
    assert (await mesh.client.get("/v1/products", params=params)).json()["products"] == []


async def test_invalid_prices_quantities_and_pages_are_400(mesh: RunningMesh) -> None:
    shop = Shop(mesh)
    seller = await shop.seller()
    negative = await mesh.client.post(
        "/v1/products",
        json={"name": "Bad", "price": {"amount_minor": -1, "currency_code": "USD"}, "stock": 1},
        headers=seller.headers,
    )
    body = assert_problem(negative, 400)
    assert any("price" in error["field"] for error in body["errors"])
    bad_stock = await mesh.client.post(
        "/v1/products",
        json={"name": "Bad", "price": {"amount_minor": 100, "currency_code": "usd!"}, "stock": -5},
        headers=seller.headers,
    )
    assert_problem(bad_stock, 400)
    assert_problem(await mesh.client.get("/v1/products", params={"page_size": 101}), 400)
    assert_problem(await mesh.client.get("/v1/products", params={"page_token": "tampered"}), 400)
    assert_problem(await mesh.client.get("/v1/products", params={"order_by": "stock"}), 400)
