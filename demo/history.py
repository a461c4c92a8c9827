"""The demo customer's past orders: a fixed plan, dated relative to the day it is written."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from demo.accounts import ADDRESS
from demo.catalog import CATEGORIES, Item

# Analytics sums one currency at a time, so every sale of the past is in the shop's main
# currency; orders in the other one are only among those never paid.
SALES_CURRENCY = "USD"
DAYS = 60
CARRIERS = ("UPS", "DHL", "FedEx", "USPS")
DECLINED = ("pm_card_chargeDeclined", "payment failed: Your card was declined.")


@dataclass(frozen=True)
class Line:
    item: Item
    currency_code: str
    quantity: int


@dataclass(frozen=True)
class PlannedOrder:
    key: str
    status: str
    placed_ago: timedelta
    lines: tuple[Line, ...]
    payment_method: str = "pm_card_visa"
    cancel_reason: str = ""

    @property
    def sold(self) -> bool:
        return self.status in ("PAID", "SHIPPED")


def _lines(rng: random.Random, currency: str) -> tuple[Line, ...]:
    items = [
        (item, category.currency_code)
        for category in CATEGORIES
        if category.currency_code == currency
        for item in category.items
    ]
    chosen = rng.sample(items, k=rng.choice((1, 1, 2, 2, 3)))
    return tuple(Line(item, code, rng.choice((1, 1, 1, 2, 3))) for item, code in chosen)


def plan() -> tuple[PlannedOrder, ...]:
    """The same orders on every run (a seeded generator): the stock the catalog starts with
    depends on them, and a second run must find the very orders the first one wrote."""
    rng = random.Random(26)
    orders: list[PlannedOrder] = []

    def add(status: str, ago: timedelta, lines: tuple[Line, ...], **extra: Any) -> None:
        orders.append(PlannedOrder(f"demo-{len(orders) + 1:03d}", status, ago, lines, **extra))

    # Shipped within days of payment: most of the past sales, spread over the whole span.
    for _ in range(34):
        add("SHIPPED", timedelta(days=rng.uniform(5, DAYS - 0.5)), _lines(rng, SALES_CURRENCY))
    # Paid in the last few days, not shipped yet.
    for _ in range(6):
        add("PAID", timedelta(days=rng.uniform(0.1, 4)), _lines(rng, SALES_CURRENCY))
    # Cancelled: declined cards, and customers who changed their minds, in both currencies.
    for index in range(6):
        currency = SALES_CURRENCY if index % 2 else "EUR"
        ago = timedelta(days=rng.uniform(1, DAYS - 0.5))
        if index < 3:
            method, reason = DECLINED
            add(
                "CANCELLED", ago, _lines(rng, currency), payment_method=method, cancel_reason=reason
            )
        else:
            add("CANCELLED", ago, _lines(rng, currency), cancel_reason="cancelled by its owner")
    # Placed minutes ago, their payment not in yet. No payment will ever come (nothing was
    # published): the order service's reconciler cancels them an hour after they were placed,
    # as it would any order whose payment never arrived.
    for index in range(3):
        currency = "EUR" if index == 0 else SALES_CURRENCY
        add("PENDING", timedelta(minutes=rng.uniform(2, 20)), _lines(rng, currency))
    return tuple(orders)


def sold_units(orders: tuple[PlannedOrder, ...]) -> Counter[str]:
    """Units of each product (by name) the paid orders took out of stock for good."""
    sold: Counter[str] = Counter()
    for order in orders:
        if order.sold:
            for line in order.lines:
                sold[line.item.name] += line.quantity
    return sold


def as_json(
    order: PlannedOrder,
    now: datetime,
    user_id: str,
    products: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """The order as `python -m order_service demo-history` reads it, dated back from `now`;
    `products` are the catalog's, by name."""
    # Each order gets the same times and tracking number on every run, from its own seed.
    rng = random.Random(order.key)
    placed = now - order.placed_ago
    body: dict[str, Any] = {
        "key": order.key,
        "user_id": user_id,
        "status": order.status,
        "placed_at": placed.isoformat(),
        "currency_code": order.lines[0].currency_code,
        "payment_method": order.payment_method,
        "address": ADDRESS,
        "cancel_reason": order.cancel_reason,
        "items": [
            {
                "product_id": products[line.item.name]["id"],
                "product_name": line.item.name,
                "seller_id": products[line.item.name]["seller_id"],
                "quantity": line.quantity,
                "unit_price_minor": line.item.price_minor,
            }
            for line in order.lines
        ],
    }
    if order.sold:
        paid = placed + timedelta(seconds=rng.uniform(2, 20))
        body["paid_at"] = paid.isoformat()
        if order.status == "SHIPPED":
            body["shipped_at"] = (paid + timedelta(hours=rng.uniform(18, 72))).isoformat()
            body["carrier"] = rng.choice(CARRIERS)
            body["tracking_number"] = f"1Z{rng.randrange(10**15, 10**16)}"
    elif order.status == "CANCELLED":
        later = (
            timedelta(seconds=rng.uniform(2, 20))
            if order.cancel_reason == DECLINED[1]
            else timedelta(hours=rng.uniform(1, 20))
        )
        body["cancelled_at"] = (placed + later).isoformat()
    return body
