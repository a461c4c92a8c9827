"""The gateway's own answer cache in the running mesh: hot product, listing and order reads
answered without a call, every change, through the gateway or behind it, shown to the next
read, and an order shown only to whom the order service shows it."""

from __future__ import annotations

import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import RunningMesh
from tests.e2e.shop import Shop, assert_problem
from tests.support import eventually

pytestmark = pytest.mark.e2e


async def gateway_hits(mesh: RunningMesh, kind: str) -> float:
    text = (await mesh.client.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "gateway_answer_cache_hits_total" and sample.labels == {"kind": kind}:
                return sample.value
    return 0.0


async def test_hot_catalog_reads_skip_the_call_and_changes_show_at_once(mesh: RunningMesh) -> None:
    shop = Shop(mesh)
    admin, seller, buyer = await shop.admin(), await shop.seller(), await shop.customer()
    word = uuid.uuid4().hex[:10]
    category = await mesh.client.post(
        "/v1/categories", json={"name": f"Cache {word}"}, headers=admin.headers
    )
    assert category.status_code == 201, category.text
    created = await mesh.client.post(
        "/v1/products",
        json={
            "name": f"Kite {word}",
            "price": {"amount_minor": 1_000, "currency_code": "USD"},
            "stock": 5,
            "category_id": category.json()["id"],
        },
        headers=seller.headers,
    )
    assert created.status_code == 201, created.text
    product_url = f"/v1/products/{created.json()['id']}"
    listing = {"category_id": category.json()["id"], "order_by": "price"}

    first = await mesh.client.get(product_url)
    assert first.status_code == 200, first.text

    async def answered_by_the_gateway() -> bool:
        before = await gateway_hits(mesh, "product")
        again = await mesh.client.get(product_url)
        # Byte for byte what the product service's answer was made into.
        assert (again.status_code, again.content) == (200, first.content)
        assert again.headers["content-type"] == "application/json"
        return await gateway_hits(mesh, "product") > before

    await eventually(answered_by_the_gateway, message="the gateway keeps the product")

    async def listing_answered_by_the_gateway() -> bool:
        before = await gateway_hits(mesh, "listing")
        page = await mesh.client.get("/v1/products", params=listing)
        assert [p["stock"] for p in page.json()["products"]] == [5]
        return await gateway_hits(mesh, "listing") > before

    await eventually(listing_answered_by_the_gateway, message="the gateway keeps the page")

    # A change through the gateway: the next reads show it, not what the gateway held.
    repriced = await mesh.client.patch(
        product_url,
        json={"price": {"amount_minor": 1_200, "currency_code": "USD"}},
        headers=seller.headers,
    )
    assert repriced.status_code == 200, repriced.text
    assert (await mesh.client.get(product_url)).json()["price"]["amount_minor"] == 1_200
    page = (await mesh.client.get("/v1/products", params=listing)).json()
    assert [p["price"]["amount_minor"] for p in page["products"]] == [1_200]

    # A change behind it: the order service takes stock from the product service.
    placed = await shop.place(buyer, created.json()["id"], quantity=5)
    assert placed.status_code == 201, placed.text
    assert (await mesh.client.get(product_url)).json()["stock"] == 0
    sold_out = await mesh.client.get("/v1/products", params={**listing, "in_stock": "true"})
    assert sold_out.json()["products"] == []


async def test_order_reads_skip_the_call_and_show_every_change(mesh: RunningMesh) -> None:
    shop = Shop(mesh)
    seller, buyer, stranger = await shop.seller(), await shop.customer(), await shop.customer()
    product = await shop.product(seller, stock=3)
    placed = await shop.place(buyer, product["id"], 1)
    assert placed.status_code == 201, placed.text
    order_url = f"/v1/orders/{placed.json()['id']}"
    # PENDING, then PAID once the saga has run: the change made behind the gateway shows.
    await shop.wait_status(buyer, placed.json()["id"], "PAID")

    async def answered_by_the_gateway() -> bool:
        before = await gateway_hits(mesh, "order")
        again = await mesh.client.get(order_url, headers=buyer.headers)
        assert (again.status_code, again.json()["status"]) == (200, "PAID")
        return await gateway_hits(mesh, "order") > before

    await eventually(answered_by_the_gateway, message="the gateway keeps the order")
    # Held for the buyer, not for anyone else: the order service still says who sees it.
    assert_problem(await mesh.client.get(order_url, headers=stranger.headers), 404)
    assert_problem(await mesh.client.get(order_url), 401)

    # A change through the gateway: the buyer's next read shows it.
    shipped = await mesh.client.post(
        f"{order_url}:ship",
        json={"carrier": "DHL", "tracking_number": "JD1"},
        headers=seller.headers,
    )
    assert shipped.status_code == 200, shipped.text
    after = await mesh.client.get(order_url, headers=buyer.headers)
    assert (after.json()["status"], after.json()["shipment"]["carrier"]) == ("SHIPPED", "DHL")
