"""`order_service demo-history`: past orders written once, dated in the past, never published,
and only in development."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from meshkit.errors import InvalidArgument
from meshkit.ids import new_id
from meshkit.settings import Environment, load_migration_settings
from order_service import models
from order_service.history import SOURCE, PastOrder, demo_history, write_history
from order_service.reads import load_order_by_key, timeline_of
from order_service.settings import OrderSettings
from tests.conftest import DatabaseFactory

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def shipped(key: str = "demo-001") -> dict[str, Any]:
    placed = NOW - timedelta(days=20)
    return {
        "key": key,
        "user_id": "u1",
        "status": "SHIPPED",
        "placed_at": placed.isoformat(),
        "paid_at": (placed + timedelta(seconds=5)).isoformat(),
        "shipped_at": (placed + timedelta(days=1)).isoformat(),
        "carrier": "DHL",
        "tracking_number": "1Z123",
        "currency_code": "USD",
        "payment_method": "pm_card_visa",
        "address": {
            "recipient": "Casey",
            "line1": "350 Fifth Avenue",
            "line2": "",
            "city": "New York",
            "postal_code": "10118",
            "country_code": "US",
        },
        "items": [
            {
                "product_id": "p1",
                "product_name": "Pepper Mill",
                "seller_id": "s1",
                "quantity": 2,
                "unit_price_minor": 1899,
            }
        ],
    }


async def test_past_orders_are_written_once_with_their_timeline(
    database_on_each_backend: DatabaseFactory,
) -> None:
    database = await database_on_each_backend(models.metadata)
    orders = [PastOrder.from_json(shipped())]

    assert await write_history(database, orders) == (1, 0)
    assert await write_history(database, [PastOrder.from_json(shipped())]) == (0, 1)

    order = await load_order_by_key(database, "u1", "demo-001")
    assert order is not None
    assert order.status == "SHIPPED"
    assert order.total_minor == 3798
    assert order.created_at == NOW - timedelta(days=20)
    assert order.shipped_at == NOW - timedelta(days=19)
    # Its id dates from its placing, so lists ordered by id put it among its own days.
    assert order.id < new_id(at=NOW - timedelta(days=19)) and order.id > new_id(
        at=NOW - timedelta(days=21)
    )
    timeline = await timeline_of(database, order.id)
    assert [entry.event_type for entry in timeline] == [
        "order.created",
        "payment.succeeded",
        "order.confirmed",
        "order.shipped",
    ]
    assert {entry.source for entry in timeline} == {SOURCE}
    async with database.session() as session:
        # Nothing to publish: no payment charged, no email sent for a past order.
        assert (await session.execute(models.outbox.select())).first() is None


def test_an_order_with_invalid_lines_is_refused() -> None:
    body = shipped()
    body["items"][0]["quantity"] = 0
    with pytest.raises(InvalidArgument):
        PastOrder.from_json(body)


def test_demo_history_is_refused_outside_development() -> None:
    settings = load_migration_settings(
        OrderSettings, env_file=None, app_env=Environment.PRODUCTION.value
    )
    with pytest.raises(SystemExit, match="development only"):
        demo_history(settings, [])
