"""Analytics figures straight from the database, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from ecommerce.order.v1 import analytics_pb2
from meshkit.context import Principal, Role
from meshkit.data import Database, upgrade_to_head_async
from meshkit.errors import InvalidArgument, PermissionDenied
from meshkit.ids import new_id
from order_service.analytics import Analytics, Granularity
from order_service.app import MIGRATIONS
from order_service.grpc_api import AnalyticsService
from order_service.models import Order, OrderItem
from tests.conftest import PostgresFactory

pytestmark = pytest.mark.integration

# (when, status, [(product, name, quantity, unit price)])
ORDERS = [
    (datetime(2024, 3, 4, 10, tzinfo=UTC), "PAID", [("p1", "Lamp", 2, 1_000)]),
    (datetime(2024, 3, 4, 23, 59, tzinfo=UTC), "SHIPPED", [("p2", "Desk", 1, 5_000)]),
    (datetime(2024, 3, 6, 12, tzinfo=UTC), "PAID", [("p1", "Lamp", 1, 1_000)]),
    (datetime(2024, 3, 12, 8, tzinfo=UTC), "PAID", [("p1", "Lamp", 3, 1_000)]),
    (datetime(2024, 3, 13, 8, tzinfo=UTC), "CANCELLED", [("p2", "Desk", 9, 5_000)]),
    (datetime(2024, 3, 14, 8, tzinfo=UTC), "PENDING", [("p2", "Desk", 9, 5_000)]),
    (
        datetime(2024, 4, 1, 0, 0, tzinfo=UTC),
        "PAID",
        [("p2", "Desk", 2, 5_000), ("p1", "Lamp", 1, 1_000)],
    ),
]

ADMIN = Principal("admin", Role.ADMIN, "t")


@pytest.fixture(params=["sqlite", "postgresql"])
async def analytics(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_databases: PostgresFactory
) -> AsyncIterator[Analytics]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'orders.db'}"
    else:
        url = await postgres_databases()
    await upgrade_to_head_async(MIGRATIONS, url)
    async with Database(url) as database:
        async with database.transaction() as session:
            for when, status, lines in ORDERS:
                order_id = new_id()
                session.add(
                    Order(
                        id=order_id,
                        user_id="u1",
                        status=status,
                        idempotency_key=order_id,
                        request_hash="-",
                        currency_code="USD",
                        total_minor=sum(q * price for _, _, q, price in lines),
                        payment_method="pm_card_visa",
                        shipping_address="{}",
                        created_at=when,
                        updated_at=when,
                        items=[
                            OrderItem(
                                position=i,
                                product_id=pid,
                                product_name=name,
                                quantity=q,
                                unit_price_minor=price,
                            )
                            for i, (pid, name, q, price) in enumerate(lines)
                        ],
                    )
                )
        yield Analytics(database, StillAdmin())


class StillAdmin:
    """The user service's answer for an admin whose account is as its token says."""

    async def confirm(self, principal: Principal) -> None:
        return None


class NoLongerAdmin:
    """The user service's answer once the admin was demoted or deactivated."""

    async def confirm(self, principal: Principal) -> None:
        raise PermissionDenied("This account may no longer do this.")


def day(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def test_top_products(analytics: Analytics) -> None:
    rows = await analytics.top_products(ADMIN, day("2024-03-01"), day("2024-05-01"), 5)
    assert [(r.product_name, r.quantity, r.revenue_minor) for r in rows] == [
        ("Lamp", 7, 7_000),
        ("Desk", 3, 15_000),
    ]


@pytest.mark.parametrize(
    ("granularity", "start", "end", "expected"),
    [
        (
            Granularity.DAY,
            "2024-03-04",
            "2024-03-07",
            [("2024-03-04", 2, 7_000), ("2024-03-05", 0, 0), ("2024-03-06", 1, 1_000)],
        ),
        (
            Granularity.WEEK,
            "2024-03-04",
            "2024-03-25",
            [("2024-03-04", 3, 8_000), ("2024-03-11", 1, 3_000), ("2024-03-18", 0, 0)],
        ),
        (
            Granularity.MONTH,
            "2024-02-01",
            "2024-04-30",
            [("2024-02-01", 0, 0), ("2024-03-01", 4, 11_000), ("2024-04-01", 1, 11_000)],
        ),
    ],
)
async def test_sales_per_period_with_zeros(
    analytics: Analytics,
    granularity: Granularity,
    start: str,
    end: str,
    expected: list[tuple[str, int, int]],
) -> None:
    rows = await analytics.sales(ADMIN, granularity, day(start), day(end))
    assert [
        (r.start.strftime("%Y-%m-%d"), r.order_count, r.revenue_minor) for r in rows
    ] == expected


async def test_only_admins(analytics: Analytics) -> None:
    with pytest.raises(PermissionDenied):
        await analytics.sales(Principal("u1", Role.CUSTOMER, "t"), Granularity.DAY, None, None)


async def test_a_default_start_before_year_one_is_invalid(analytics: Analytics) -> None:
    end = day("0001-01-02")
    with pytest.raises(InvalidArgument) as top:
        await analytics.top_products(ADMIN, None, end, 5)
    with pytest.raises(InvalidArgument) as sales:
        await analytics.sales(ADMIN, Granularity.DAY, None, end)
    for raised in (top, sales):
        assert [v.field for v in raised.value.violations] == ["start"]
        assert "30 days after 0001-01-01" in raised.value.message


@pytest.mark.parametrize(
    ("granularity", "start", "end"),
    [
        (Granularity.MONTH, "9999-11-01T00:00", "9999-12-31T23:00"),
        (Granularity.WEEK, "9999-12-01T00:00", "9999-12-31T23:59:59.999999"),
        (Granularity.DAY, "9999-12-30T00:00", "9999-12-31T00:00:01"),
    ],
)
async def test_periods_ending_after_year_9999_are_invalid(
    analytics: Analytics, granularity: Granularity, start: str, end: str
) -> None:
    with pytest.raises(InvalidArgument) as raised:
        await analytics.sales(ADMIN, granularity, day(start), day(end))
    assert [v.field for v in raised.value.violations] == ["end"]
    assert f"last {granularity} would end after 9999-12-31" in raised.value.message


async def test_ranges_at_the_ends_of_the_calendar_are_answered(analytics: Analytics) -> None:
    assert await analytics.top_products(ADMIN, day("0001-01-01"), day("0001-01-02"), 5) == []
    assert await analytics.top_products(ADMIN, day("9999-12-01"), day("9999-12-31T23:59"), 5) == []
    early = await analytics.sales(ADMIN, Granularity.WEEK, day("0001-01-01"), day("0001-01-09"))
    late = await analytics.sales(ADMIN, Granularity.MONTH, day("9999-11-01"), day("9999-12-01"))
    assert [(r.start.date().isoformat(), r.order_count) for r in [*early, *late]] == [
        ("0001-01-01", 0),
        ("0001-01-08", 0),
        ("9999-11-01", 0),
    ]


@pytest.mark.parametrize("field", ["start_time", "end_time"])
async def test_a_timestamp_past_year_9999_is_invalid_over_grpc(field: str) -> None:
    # A Timestamp holds any int64 of seconds: the servicer refuses what no time can be.
    request = analytics_pb2.GetTopProductsRequest()
    getattr(request, field).seconds = 10**12  # year ~33658

    class Unasked:
        async def top_products(self, *args: object) -> list[object]:
            raise AssertionError("the domain was asked")

    service = AnalyticsService(cast(Analytics, Unasked()))
    with pytest.raises(InvalidArgument) as raised:
        await service.GetTopProducts(request, cast(Any, None))
    assert [violation.field for violation in raised.value.violations] == [field]


async def test_a_token_that_outlived_its_admin_reads_no_sales(analytics: Analytics) -> None:
    former = Analytics(analytics.db, NoLongerAdmin())
    with pytest.raises(PermissionDenied):
        await former.top_products(ADMIN, None, None, 5)
    with pytest.raises(PermissionDenied):
        await former.sales(ADMIN, Granularity.DAY, None, None)
