"""The driver-level order reads give what the ORM gives, on PostgreSQL and on SQLite."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from meshkit.data import Database
from meshkit.ids import new_id
from order_service.messages import order_message
from order_service.models import Order, OrderItem, OrderStatus, metadata
from order_service.reads import load_order, load_order_by_key
from tests.conftest import DatabaseFactory

pytestmark = pytest.mark.integration

ADDRESS = {
    "recipient": "Ada",
    "line1": "1 Main St",
    "line2": "",
    "city": "London",
    "postal_code": "N1",
    "country_code": "GB",
}


async def orm_order(session: AsyncSession, order_id: str) -> Any:
    """The order as the ORM maps it, with its items: the reference the fast reads must equal
    (it has every attribute the answer is built from)."""
    return await session.get(Order, order_id, options=[selectinload(Order.items)])


@pytest.fixture
async def database(database_on_each_backend: DatabaseFactory) -> Database:
    return await database_on_each_backend(metadata)


def an_order(items: int, *, shipped: bool = False) -> Order:
    created = datetime(2026, 11, 1, 12, 30, 15, 123456, tzinfo=UTC)
    order = Order(
        id=new_id(),
        user_id=new_id(),
        status=OrderStatus.SHIPPED if shipped else OrderStatus.PENDING,
        idempotency_key=new_id(),
        request_hash="f" * 64,
        currency_code="EUR",
        total_minor=0,
        payment_method="pm_card_visa",
        shipping_address=json.dumps(ADDRESS),
        cancel_reason="",
        carrier="DHL" if shipped else "",
        tracking_number="JD0001" if shipped else "",
        created_at=created,
        updated_at=created + timedelta(minutes=5),
        paid_at=created + timedelta(minutes=1) if shipped else None,
        shipped_at=created + timedelta(minutes=5) if shipped else None,
    )
    # Out of order on purpose: the read returns them by position.
    order.items = [
        OrderItem(
            position=position,
            product_id=new_id(),
            product_name=f"Item {position}",
            seller_id=new_id(),
            quantity=position + 1,
            unit_price_minor=100 * (position + 1),
        )
        for position in reversed(range(items))
    ]
    order.total_minor = sum(item.line_total_minor for item in order.items)
    return order


@pytest.mark.parametrize(("items", "shipped"), [(3, True), (1, False), (0, False)])
async def test_the_fast_read_equals_the_orm_read(
    database: Database, items: int, shipped: bool
) -> None:
    order = an_order(items, shipped=shipped)
    async with database.transaction() as session:
        session.add(order)

    loaded = await load_order(database, order.id)
    async with database.session() as session:
        through_orm = await orm_order(session, order.id)

    assert loaded is not None and through_orm is not None
    assert order_message(loaded) == order_message(through_orm)
    assert [item.position for item in loaded.items] == list(range(items))
    assert loaded.created_at == order.created_at and loaded.created_at.tzinfo is not None


async def test_an_unknown_order_is_none(database: Database) -> None:
    assert await load_order(database, new_id()) is None


async def test_the_read_by_idempotency_key_is_the_owners_order(database: Database) -> None:
    order, other = an_order(2), an_order(1)
    async with database.transaction() as session:
        session.add_all([order, other])

    found = await load_order_by_key(database, order.user_id, order.idempotency_key)
    async with database.session() as session:
        through_orm = await orm_order(session, order.id)

    assert found is not None and through_orm is not None
    assert order_message(found) == order_message(through_orm)
    assert found.request_hash == order.request_hash
    # A key is the owner's own: someone else's order with that key is not found.
    assert await load_order_by_key(database, other.user_id, order.idempotency_key) is None
    assert await load_order_by_key(database, order.user_id, new_id()) is None
