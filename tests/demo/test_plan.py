"""The demo shop's data: a catalog of the promised size, and a history analytics can show."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from demo.catalog import CATEGORIES
from demo.history import DAYS, SALES_CURRENCY, as_json, plan, sold_units

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def test_the_catalog_has_eight_categories_and_sixty_products_in_two_currencies() -> None:
    names = [item.name for category in CATEGORIES for item in category.items]
    assert len(CATEGORIES) == 8
    assert len(names) == len(set(names)) == 60
    assert {category.currency_code for category in CATEGORIES} == {"USD", "EUR"}


def test_the_plan_is_the_same_on_every_run() -> None:
    assert plan() == plan()


def test_the_history_has_orders_in_every_state_and_sells_in_one_currency() -> None:
    orders = plan()
    statuses = Counter(order.status for order in orders)
    assert set(statuses) == {"PENDING", "PAID", "SHIPPED", "CANCELLED"}
    assert min(statuses.values()) >= 3
    for order in orders:
        assert len({line.currency_code for line in order.lines}) == 1
        if order.sold:
            assert order.lines[0].currency_code == SALES_CURRENCY
    assert len({order.key for order in orders}) == len(orders)


def test_no_product_sells_more_than_its_stock() -> None:
    sold = sold_units(plan())
    for category in CATEGORIES:
        for item in category.items:
            assert sold[item.name] <= item.stock


def test_the_past_orders_are_spread_over_the_last_sixty_days() -> None:
    products = {
        item.name: {"id": f"id-{item.name}", "seller_id": "seller"}
        for category in CATEGORIES
        for item in category.items
    }
    bodies = [as_json(order, NOW, "customer", products) for order in plan()]
    days_with_sales = set()
    for body in bodies:
        placed = datetime.fromisoformat(body["placed_at"])
        assert NOW - timedelta(days=DAYS) < placed < NOW
        for moment in ("paid_at", "shipped_at", "cancelled_at"):
            if moment in body:
                assert placed < datetime.fromisoformat(body[moment]) < NOW
        if "paid_at" in body:
            days_with_sales.add(placed.date())
    assert len(days_with_sales) > 20
