"""The catalog's REST routes: the gateway's routers over the real product and user services."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gateway.app import create_app
from gateway.settings import GatewaySettings
from meshkit.settings import load_settings
from tests.product_service.conftest import CatalogApi, Person
from tests.support import problem

pytestmark = pytest.mark.integration


def gateway_for(catalog: CatalogApi) -> FastAPI:
    """The real gateway app, its catalog upstreams pointed at the running services."""
    return create_app(
        load_settings(
            GatewaySettings,
            env_file=None,
            product_service_addr=catalog.address,
            user_service_addr=catalog.identity.address,
        )
    )


@pytest.fixture
async def client(catalog: CatalogApi) -> AsyncIterator[httpx.AsyncClient]:
    app = gateway_for(catalog)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            yield http


def auth(person: Person) -> dict[str, str]:
    return {"Authorization": f"Bearer {person.token}"}


def error_fields(body: dict[str, Any]) -> set[str]:
    return {error["field"] for error in body.get("errors", [])}


KITE: dict[str, Any] = {
    "name": "Red kite",
    "description": "Flies in any wind",
    "price": {"amount_minor": 2599, "currency_code": "USD"},
    "stock": 4,
}


async def test_seller_lists_a_product_customers_find_it_others_cannot_edit_it(
    client: httpx.AsyncClient, catalog: CatalogApi
) -> None:
    identity = catalog.identity
    created = await client.post(
        "/v1/categories", json={"name": "Toys"}, headers=auth(identity.admin)
    )
    assert created.status_code == 201, created.text
    toys = created.json()
    assert created.headers["location"] == f"/v1/categories/{toys['id']}"

    response = await client.post(
        "/v1/products", json={**KITE, "category_id": toys["id"]}, headers=auth(identity.seller)
    )
    assert response.status_code == 201, response.text
    kite = response.json()
    assert response.headers["location"] == f"/v1/products/{kite['id']}"
    assert kite["price"] == {"amount_minor": 2599, "currency_code": "USD"}
    assert kite["seller_id"] == identity.seller.id and kite["archived"] is False
    await client.post(
        "/v1/products",
        json={**KITE, "name": "Yo-yo", "price": {"amount_minor": 300, "currency_code": "USD"}},
        headers=auth(identity.seller),
    )

    # A customer (or anyone, no token needed) finds it with every filter.
    for params in (
        {"query": "KITE"},
        {"query": "wind", "category_id": toys["id"]},
        {"min_price": 2000, "max_price": 3000},
        {"seller_id": identity.seller.id, "in_stock": "true", "query": "red"},
    ):
        found = await client.get("/v1/products", params=params)
        assert found.status_code == 200, found.text
        body = found.json()
        assert [p["id"] for p in body["products"]] == [kite["id"]], params
        assert body["next_page_token"] == ""
    ordered = await client.get("/v1/products", params={"order_by": "price", "page_size": 1})
    first = ordered.json()
    assert [p["name"] for p in first["products"]] == ["Yo-yo"]
    second = await client.get(
        "/v1/products",
        params={"order_by": "price", "page_size": 1, "page_token": first["next_page_token"]},
    )
    assert [p["name"] for p in second.json()["products"]] == ["Red kite"]
    assert (await client.get(f"/v1/products/{kite['id']}")).json() == kite

    # Another seller may not touch it; its seller may.
    problem(
        await client.patch(
            f"/v1/products/{kite['id']}", json={"stock": 0}, headers=auth(identity.other_seller)
        ),
        403,
    )
    problem(
        await client.delete(f"/v1/products/{kite['id']}", headers=auth(identity.other_seller)),
        403,
    )
    patched = await client.patch(
        f"/v1/products/{kite['id']}",
        json={"price": {"amount_minor": 1999, "currency_code": "USD"}},
        headers=auth(identity.seller),
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["price"]["amount_minor"] == 1999
    assert patched.json()["name"] == "Red kite"

    deleted = await client.delete(f"/v1/products/{kite['id']}", headers=auth(identity.seller))
    assert deleted.status_code == 204
    assert (await client.get(f"/v1/products/{kite['id']}")).json()["archived"] is True
    names = [p["name"] for p in (await client.get("/v1/products")).json()["products"]]
    assert names == ["Yo-yo"]

    # The category still holds (archived) products: 409.
    body = problem(
        await client.delete(f"/v1/categories/{toys['id']}", headers=auth(identity.admin)), 409
    )
    assert "still has" in body["detail"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda p: p | {"price": {"amount_minor": -1, "currency_code": "USD"}}, "amount_minor"),
        (lambda p: p | {"price": {"amount_minor": 100, "currency_code": "usd"}}, "currency_code"),
        (lambda p: p | {"stock": -3}, "product.stock"),
        (lambda p: p | {"name": "  "}, "product.name"),
    ],
)
async def test_invalid_prices_and_quantities_are_400(
    client: httpx.AsyncClient,
    catalog: CatalogApi,
    change: Callable[[dict[str, Any]], dict[str, Any]],
    field: str,
) -> None:
    seller = auth(catalog.identity.seller)
    body = problem(await client.post("/v1/products", json=change(KITE), headers=seller), 400)
    assert any(f.endswith(field) for f in error_fields(body)), body
    kite = (await client.post("/v1/products", json=KITE, headers=seller)).json()
    patch = {key: value for key, value in change(KITE).items() if KITE.get(key) != value}
    body = problem(
        await client.patch(f"/v1/products/{kite['id']}", json=patch, headers=seller), 400
    )
    assert any(f.endswith(field) for f in error_fields(body)), body


async def test_listing_parameters_are_checked(client: httpx.AsyncClient) -> None:
    for params, field in (
        ({"page_size": 101}, "page_size"),
        ({"order_by": "cheapest"}, "order_by"),
        ({"min_price": -1}, "min_price"),
        ({"in_stock": "maybe"}, "in_stock"),
        ({"page_token": "forged"}, "page_token"),
        ({"min_price": 10, "max_price": 5}, "max_price"),
    ):
        body = problem(await client.get("/v1/products", params=params), 400)
        assert field in error_fields(body), (params, body)


async def test_writes_need_the_right_caller(client: httpx.AsyncClient, catalog: CatalogApi) -> None:
    identity = catalog.identity
    problem(await client.post("/v1/products", json=KITE), 401)
    problem(await client.post("/v1/products", json=KITE, headers=auth(identity.customer)), 403)
    problem(
        await client.post("/v1/categories", json={"name": "X"}, headers=auth(identity.seller)), 403
    )
    problem(
        await client.post(
            "/v1/products", json={**KITE, "colour": "red"}, headers=auth(identity.seller)
        ),
        422,
    )
    problem(await client.get("/v1/products/no-such-product"), 404)
    problem(await client.get("/v1/categories/no-such-category"), 404)


async def test_admin_manages_categories(client: httpx.AsyncClient, catalog: CatalogApi) -> None:
    admin = auth(catalog.identity.admin)
    books = (await client.post("/v1/categories", json={"name": "Books"}, headers=admin)).json()
    problem(await client.post("/v1/categories", json={"name": "books"}, headers=admin), 409)
    renamed = await client.patch(
        f"/v1/categories/{books['id']}", json={"description": "Paper"}, headers=admin
    )
    assert renamed.status_code == 200
    assert (renamed.json()["name"], renamed.json()["description"]) == ("Books", "Paper")
    listed = (await client.get("/v1/categories")).json()
    assert [c["id"] for c in listed["categories"]] == [books["id"]]
    assert (await client.get(f"/v1/categories/{books['id']}")).json() == renamed.json()
    deleted = await client.delete(f"/v1/categories/{books['id']}", headers=admin)
    assert deleted.status_code == 204
    problem(await client.get(f"/v1/categories/{books['id']}"), 404)
