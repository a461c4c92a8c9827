"""Sales analytics for admins, computed by the database (GROUP BY over indexed columns)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol

from sqlalchemy import ColumnElement, func, select

from meshkit.context import Principal, Role
from meshkit.data import Database
from meshkit.errors import InvalidArgument
from meshkit.identity import authorize
from order_service.errors import CurrencyMismatch
from order_service.models import Order, OrderItem, OrderStatus

# Sold means paid: orders that were paid, whether shipped since or not.
SOLD = (OrderStatus.PAID, OrderStatus.SHIPPED)
MAX_PERIODS = 1_000
DEFAULT_SPAN = timedelta(days=30)
# The first moment a datetime holds, as a protobuf Timestamp does; both end with year 9999.
EARLIEST = datetime.min.replace(tzinfo=UTC)


class Granularity(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


@dataclass(frozen=True)
class ProductSales:
    product_id: str
    product_name: str
    quantity: int
    revenue_minor: int
    currency_code: str


@dataclass(frozen=True)
class PeriodSales:
    start: datetime
    order_count: int
    revenue_minor: int
    currency_code: str


def period_start(moment: datetime, granularity: Granularity) -> datetime:
    """The UTC start of the day, ISO week (Monday) or month holding `moment`."""
    day = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if granularity is Granularity.DAY:
        return day
    if granularity is Granularity.WEEK:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def next_period(start: datetime, granularity: Granularity) -> datetime | None:
    """The start of the period after the one starting at `start`; None after year 9999."""
    try:
        if granularity is Granularity.DAY:
            return start + timedelta(days=1)
        if granularity is Granularity.WEEK:
            return start + timedelta(weeks=1)
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    except OverflowError:
        return None


def periods_of(start: datetime, end: datetime, granularity: Granularity) -> list[datetime]:
    """The starts of the periods that hold some of [start, end), oldest first."""
    periods = [period_start(start, granularity)]
    while True:
        following = next_period(periods[-1], granularity)
        if following is None:
            # The last period would end past the last moment a time (or a Timestamp) holds.
            raise InvalidArgument.for_field(
                "end", f"is too late: the range's last {granularity} would end after 9999-12-31"
            )
        if following >= end:
            return periods
        periods.append(following)
        if len(periods) > MAX_PERIODS:
            raise InvalidArgument.for_field("start", f"the range spans over {MAX_PERIODS} periods")


def _period_key(dialect: str, granularity: Granularity) -> ColumnElement[str]:
    """The period's start as a 'YYYY-MM-DD' string, computed in SQL on either backend."""
    if dialect == "postgresql":
        truncated = func.date_trunc(granularity.value, func.timezone("UTC", Order.created_at))
        return func.to_char(truncated, "YYYY-MM-DD")
    # SQLite keeps UTC timestamps as text; its date functions read them directly.
    if granularity is Granularity.DAY:
        return func.strftime("%Y-%m-%d", Order.created_at)
    if granularity is Granularity.WEEK:
        # Monday of the week: move to the next Sunday (weekday 0), then back six days.
        return func.date(Order.created_at, "weekday 0", "-6 days")
    return func.strftime("%Y-%m-01", Order.created_at)


def _range(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    end = end or datetime.now(UTC)
    if start is None:
        if end - EARLIEST < DEFAULT_SPAN:
            raise InvalidArgument.for_field(
                "start",
                f"is required when end is less than {DEFAULT_SPAN.days} days after 0001-01-01",
            )
        start = end - DEFAULT_SPAN
    if start >= end:
        raise InvalidArgument.for_field("start", "must be before end")
    return start, end


class Accounts(Protocol):
    """Confirms the caller's account still has the powers its token claims."""

    async def confirm(self, principal: Principal) -> None: ...


class Analytics:
    def __init__(
        self, database: Database, accounts: Accounts, default_currency: str = "USD"
    ) -> None:
        self.db = database
        # Sales figures are the shop's own: a token that outlived its admin's demotion or
        # deactivation reads none.
        self.accounts = accounts
        self.default_currency = default_currency

    async def _admin(self, caller: Principal) -> None:
        await self.accounts.confirm(authorize(caller, Role.ADMIN))

    async def top_products(
        self, caller: Principal, start: datetime | None, end: datetime | None, limit: int
    ) -> Sequence[ProductSales]:
        await self._admin(caller)
        if not 0 <= limit <= 100:
            raise InvalidArgument.for_field("limit", "must be between 1 and 100")
        start, end = _range(start, end)
        quantity = func.sum(OrderItem.quantity).label("quantity")
        revenue = func.sum(OrderItem.quantity * OrderItem.unit_price_minor).label("revenue")
        query = (
            select(
                OrderItem.product_id,
                func.max(OrderItem.product_name).label("name"),
                quantity,
                revenue,
                Order.currency_code,
            )
            .join(Order, Order.id == OrderItem.order_id)
            .where(Order.status.in_(SOLD), Order.created_at >= start, Order.created_at < end)
            .group_by(OrderItem.product_id, Order.currency_code)
            .order_by(quantity.desc(), revenue.desc(), OrderItem.product_id)
            .limit(limit or 10)
        )
        async with self.db.session() as session:
            rows = (await session.execute(query)).all()
        return [
            ProductSales(
                row.product_id, row.name, int(row.quantity), int(row.revenue), row.currency_code
            )
            for row in rows
        ]

    async def sales(
        self,
        caller: Principal,
        granularity: Granularity,
        start: datetime | None,
        end: datetime | None,
    ) -> Sequence[PeriodSales]:
        """One row per period from start to end, periods with no sales as zeros."""
        await self._admin(caller)
        start, end = _range(start, end)
        periods = periods_of(start, end, granularity)
        dialect = "sqlite" if self.db.is_sqlite else "postgresql"
        key = _period_key(dialect, granularity).label("period")
        query = (
            select(
                key,
                func.count(Order.id).label("orders"),
                func.sum(Order.total_minor).label("revenue"),
                Order.currency_code,
            )
            .where(Order.status.in_(SOLD), Order.created_at >= start, Order.created_at < end)
            .group_by(key, Order.currency_code)
        )
        async with self.db.session() as session:
            rows = (await session.execute(query)).all()
        currencies = {row.currency_code for row in rows}
        if len(currencies) > 1:
            raise CurrencyMismatch(
                f"Sales in this range span several currencies ({', '.join(sorted(currencies))})."
            )
        currency = currencies.pop() if currencies else self.default_currency
        by_period = {str(row.period)[:10]: (int(row.orders), int(row.revenue or 0)) for row in rows}
        return [
            PeriodSales(
                start=period,
                order_count=by_period.get(period.strftime("%Y-%m-%d"), (0, 0))[0],
                revenue_minor=by_period.get(period.strftime("%Y-%m-%d"), (0, 0))[1],
                currency_code=currency,
            )
            for period in periods
        ]
