"""Shopping end to end, through the gateway, with every process, RabbitMQ and a real SMTP server."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from meshkit.data import Database
from tests.e2e.conftest import RunningMesh
from tests.e2e.shop import ADDRESS, Shop, assert_problem
from tests.support import eventually

pytestmark = pytest.mark.e2e


async def test_order_is_paid_and_its_payment_readable(mesh: RunningMesh) -> None:
    shop = Shop(mesh)
    seller, buyer = await shop.seller(), await shop.customer()
    product = await shop.product(seller, stock=5, price=2_500)
    response = await shop.place(buyer, product["id"], 2)
    assert response.status_code == 201, response.text
    order = response.json()
    assert response.headers["location"] == f"/v1/orders/{order['id']}"
    assert order["status"] == "PENDING"
    assert order["total"] == {"amount_minor": 5_000, "currency_code": "USD"}
    await shop.wait_status(buyer, order["id"], "PAID")
    payment = await mesh.client.get(f"/v1/orders/{order['id']}/payment", headers=buyer.headers)
    assert payment.status_code == 200
    assert payment.json()["status"] == "SUCCEEDED"
    assert payment.json()["amount"]["amount_minor"] == 5_000
    assert await shop.stock(product["id"]) == 3


async def test_idempotency_key_replays_and_conflicts(mesh: RunningMesh) -> None:
    shop = Shop(mesh)
    seller, buyer = await shop.seller(), await shop.customer()
    product = await shop.product(seller, stock=5)
    key = uuid.uuid4().hex
    first = await shop.place(buyer, product["id"], 1, key=key)
    again = await shop.place(buyer, product["id"], 1, key=key)
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    other = await shop.place(buyer, product["id"], 2, key=key)
    reused = assert_problem(other, 409)
    assert "different order" in reused["detail"]
    assert reused["type"] == "/problems/idempotency-key-reused"
    missing = await mesh.client.post(
        "/v1/orders",
        json={
            "items": [{"product_id": product["id"], "quantity": 1}],
            "payment_method": "pm_card_visa",
            "shipping_address": ADDRESS,
        },
        headers=buyer.headers,
    )
    assert_problem(missing, 400)
    assert await shop.stock(product["id"]) == 4


async def test_insufficient_stock_and_bad_quantities(mesh: RunningMesh) -> None:
    shop = Shop(mesh)
    seller, buyer = await shop.seller(), await shop.customer()
    product = await shop.product(seller, stock=2)
    short = assert_problem(await shop.place(buyer, product["id"], 3), 409)
    assert "stock" in short["detail"].lower()
    # Told apart from any other conflict by its type, not its wording.
    assert short["type"] == "/problems/out-of-stock"
    body = assert_problem(await shop.place(buyer, product["id"], 0), 400)
    assert body["type"] == "/problems/invalid-argument"
    assert body["errors"][0]["field"] == "items[0].quantity"
    assert await shop.stock(product["id"]) == 2
    assert (await mesh.client.get("/v1/orders", headers=buyer.headers)).json()["orders"] == []


async def test_cart_checkout_to_paid_with_emails(mesh: RunningMesh) -> None:
    shop = Shop(mesh)
    seller, buyer = await shop.seller(), await shop.customer()
    product = await shop.product(seller, stock=10, price=1_250, name="Teapot")
    put = await mesh.client.put(
        f"/v1/cart/items/{product['id']}", json={"quantity": 3}, headers=buyer.headers
    )
    assert put.status_code == 200, put.text
    cart = (await mesh.client.get("/v1/cart", headers=buyer.headers)).json()
    assert cart["total"] == {"amount_minor": 3_750, "currency_code": "USD"}
    assert cart["items"][0]["short_of_stock"] is False
    checkout = await mesh.client.post(
        "/v1/cart:checkout",
        json={"payment_method": "pm_card_visa", "shipping_address": ADDRESS},
        headers={**buyer.headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert checkout.status_code == 201, checkout.text
    order = checkout.json()
    assert checkout.headers["location"] == f"/v1/orders/{order['id']}"
    assert checkout.headers["content-type"] == "application/json"
    assert (await mesh.client.get("/v1/cart", headers=buyer.headers)).json()["items"] == []
    await shop.wait_status(buyer, order["id"], "PAID")
    received = await shop.mail(buyer.email, "We received your order")
    assert "Teapot" in received.text()
    confirmed = await shop.mail(buyer.email, "Your order is confirmed")
    assert "37.50 USD" in confirmed.text()
    assert "<strong>37.50 USD</strong>" in confirmed.html()

    async def listed() -> bool:
        response = await mesh.client.get("/v1/notifications", headers=buyer.headers)
        sent = [n for n in response.json()["notifications"] if n["status"] == "SENT"]
        return len(sent) >= 2

    await eventually(listed, timeout=20, message="notifications listed as SENT")
    first = (await mesh.client.get("/v1/notifications", headers=buyer.headers)).json()
    assert first["notifications"][0]["event_type"] == "order.confirmed"  # newest first


async def test_declined_card_sends_the_failure_email(mesh: RunningMesh) -> None:
    shop = Shop(mesh)
    seller, buyer = await shop.seller(), await shop.customer()
    product = await shop.product(seller, stock=3)
    order = (await shop.place(buyer, product["id"], 1, method="pm_card_chargeDeclined")).json()
    await shop.wait_status(buyer, order["id"], "CANCELLED")
    mail = await shop.mail(buyer.email, "We could not take your payment")
    assert "declined" in mail.text()
    assert await shop.stock(product["id"]) == 3
    payment = (
        await mesh.client.get(f"/v1/orders/{order['id']}/payment", headers=buyer.headers)
    ).json()
    assert payment["status"] == "FAILED"
    assert payment["failure_code"] == "card_declined"


async def test_ship_and_the_timeline_of_the_whole_flow(mesh: RunningMesh) -> None:
    shop = Shop(mesh)
    seller, buyer = await shop.seller(), await shop.customer()
    other_seller = await shop.seller()
    product = await shop.product(seller, stock=3)
    order = (await shop.place(buyer, product["id"], 1)).json()
    # Shipping a PENDING order (409) is tested where the order can be held PENDING
    # (tests/saga): here the saga may pay it before any request could arrive.
    await shop.wait_status(buyer, order["id"], "PAID")
    ship = {"carrier": "DHL", "tracking_number": "JD0146"}
    assert_problem(
        await mesh.client.post(f"/v1/orders/{order['id']}:ship", json=ship, headers=buyer.headers),
        403,
    )
    assert_problem(
        await mesh.client.post(
            f"/v1/orders/{order['id']}:ship", json=ship, headers=other_seller.headers
        ),
        403,
    )
    shipped = await mesh.client.post(
        f"/v1/orders/{order['id']}:ship", json=ship, headers=seller.headers
    )
    assert shipped.status_code == 200, shipped.text
    assert shipped.json()["status"] == "SHIPPED"
    assert shipped.json()["shipment"]["carrier"] == "DHL"
    mail = await shop.mail(buyer.email, "Your order has shipped")
    assert "JD0146" in mail.text()
    not_pending = assert_problem(
        await mesh.client.post(f"/v1/orders/{order['id']}:cancel", headers=buyer.headers), 409
    )
    assert not_pending["type"] == "/problems/order-not-pending"

    async def complete() -> list[dict[str, str]] | None:
        response = await mesh.client.get(
            f"/v1/orders/{order['id']}/timeline", headers=buyer.headers
        )
        events = response.json()["events"]
        return events if sum(e["type"] == "notification.sent" for e in events) >= 3 else None

    events = await eventually(complete, timeout=20, message="timeline with three emails")
    types = [event["type"] for event in events]
    assert (
        types.index("order.created")
        < types.index("payment.succeeded")
        < types.index("order.confirmed")
        < types.index("order.shipped")
    )
    times = [event["time"] for event in events]
    assert times == sorted(times)
    assert {e["source"] for e in events} >= {
        "order_service",
        "payment_service",
        "notification_service",
    }
    stranger = await shop.customer()
    assert_problem(
        await mesh.client.get(f"/v1/orders/{order['id']}/timeline", headers=stranger.headers), 404
    )
    assert_problem(
        await mesh.client.get(f"/v1/orders/{order['id']}", headers=stranger.headers), 404
    )


async def test_smtp_outage_is_retried_until_the_mail_goes_out(mesh: RunningMesh) -> None:
    shop = Shop(mesh)
    seller, buyer = await shop.seller(), await shop.customer()
    product = await shop.product(seller, stock=3)
    mesh.smtp.stop()
    try:
        order = (await shop.place(buyer, product["id"], 1)).json()

        async def failing() -> bool:
            response = await mesh.client.get("/v1/notifications", headers=buyer.headers)
            return any(
                n["status"] == "PENDING" and n["attempts"] >= 1 and n["failure_reason"]
                for n in response.json()["notifications"]
            )

        await eventually(failing, timeout=20, message="a notification retrying")
    finally:
        mesh.smtp.start()
    await shop.mail(buyer.email, "We received your order")
    await shop.mail(buyer.email, "Your order is confirmed")
    await shop.wait_status(buyer, order["id"], "PAID")


async def test_customers_cannot_ship_see_analytics_or_others_notifications(
    mesh: RunningMesh,
) -> None:
    shop = Shop(mesh)
    seller, alice, bob = await shop.seller(), await shop.customer(), await shop.customer()
    product = await shop.product(seller, stock=3)
    order = (await shop.place(alice, product["id"], 1)).json()
    await shop.mail(alice.email, "We received your order")
    assert_problem(await mesh.client.get("/v1/analytics/sales", headers=alice.headers), 403)
    assert_problem(await mesh.client.get("/v1/analytics/top-products", headers=seller.headers), 403)
    ship = {"carrier": "DHL", "tracking_number": "1"}
    assert_problem(
        await mesh.client.post(f"/v1/orders/{order['id']}:ship", json=ship, headers=alice.headers),
        403,
    )
    bobs = (await mesh.client.get("/v1/notifications", headers=bob.headers)).json()
    assert bobs["notifications"] == []
    assert_problem(await mesh.client.get("/v1/notifications"), 401)


async def test_analytics_on_known_dates(mesh: RunningMesh) -> None:
    shop = Shop(mesh)
    seller, buyer, admin = await shop.seller(), await shop.customer(), await shop.admin()
    lamp = await shop.product(seller, stock=50, price=1_000, name="Lamp")
    desk = await shop.product(seller, stock=50, price=5_000, name="Desk")
    plan = [  # (when, product, quantity)
        (datetime(2024, 3, 4, 10, tzinfo=UTC), lamp, 2),  # Monday
        (datetime(2024, 3, 4, 23, 59, tzinfo=UTC), desk, 1),
        (datetime(2024, 3, 6, 12, tzinfo=UTC), lamp, 1),  # same ISO week, Wednesday
        (datetime(2024, 3, 12, 8, tzinfo=UTC), lamp, 3),  # next week
        (datetime(2024, 4, 1, 0, 0, tzinfo=UTC), desk, 2),  # April
    ]
    placed = []
    for when, product, quantity in plan:
        order = (await shop.place(buyer, product["id"], quantity)).json()
        placed.append((when, order["id"]))
    declined = (await shop.place(buyer, lamp["id"], 5, method="pm_card_chargeDeclined")).json()
    for _, order_id in placed:
        await shop.wait_status(buyer, order_id, "PAID")
    await shop.wait_status(buyer, declined["id"], "CANCELLED")
    # Back-date the orders: the figures must come from the database's own grouping.
    async with (
        Database(mesh.databases["order_service"]) as database,
        database.transaction() as session,
    ):
        for when, order_id in [*placed, (datetime(2024, 3, 4, 11, tzinfo=UTC), declined["id"])]:
            await session.execute(
                text("UPDATE orders SET created_at = :when WHERE id = :id"),
                {"when": when, "id": order_id},
            )
    params = {"start": "2024-03-01T00:00:00Z", "end": "2024-04-30T00:00:00Z"}
    top = await mesh.client.get(
        "/v1/analytics/top-products", params={**params, "limit": 5}, headers=admin.headers
    )
    assert top.status_code == 200, top.text
    assert [
        (p["product_name"], p["quantity"], p["revenue"]["amount_minor"])
        for p in top.json()["products"]
    ] == [
        ("Lamp", 6, 6_000),
        ("Desk", 3, 15_000),
    ]
    days = await mesh.client.get(
        "/v1/analytics/sales",
        params={
            "granularity": "day",
            "start": "2024-03-04T00:00:00Z",
            "end": "2024-03-07T00:00:00Z",
        },
        headers=admin.headers,
    )
    assert [
        (p["period_start"][:10], p["order_count"], p["revenue"]["amount_minor"])
        for p in days.json()["periods"]
    ] == [
        ("2024-03-04", 2, 7_000),
        ("2024-03-05", 0, 0),
        ("2024-03-06", 1, 1_000),
    ]
    weeks = await mesh.client.get(
        "/v1/analytics/sales",
        params={
            "granularity": "week",
            "start": "2024-03-04T00:00:00Z",
            "end": "2024-03-25T00:00:00Z",
        },
        headers=admin.headers,
    )
    assert [
        (p["period_start"][:10], p["order_count"], p["revenue"]["amount_minor"])
        for p in weeks.json()["periods"]
    ] == [
        ("2024-03-04", 3, 8_000),
        ("2024-03-11", 1, 3_000),
        ("2024-03-18", 0, 0),
    ]
    months = await mesh.client.get(
        "/v1/analytics/sales", params={"granularity": "month", **params}, headers=admin.headers
    )
    assert [
        (p["period_start"][:10], p["order_count"], p["revenue"]["amount_minor"])
        for p in months.json()["periods"]
    ] == [
        ("2024-03-01", 4, 11_000),
        ("2024-04-01", 1, 10_000),
    ]
