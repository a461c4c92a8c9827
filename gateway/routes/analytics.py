"""Sales analytics (admins)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from google.protobuf import timestamp_pb2
from pydantic import AfterValidator, BeforeValidator
from pydantic_core import PydanticCustomError

from ecommerce.order.v1 import analytics_pb2
from gateway.deps import Admin, upstreams
from gateway.schemas.carts import Sales, SalesPeriod, TopProduct, TopProducts
from gateway.schemas.common import Money, problem_responses, rfc3339

router = APIRouter(tags=["analytics"])


# What starts an RFC 3339 date-time: pydantic would also read a number ("0.5") as Unix time.
_RFC3339_START = re.compile(r"\d{4}-\d{2}-\d{2}([Tt ]|$)")


def _rfc3339(value: object) -> object:
    """Refuse a time that is not written as RFC 3339 says, before pydantic reads it."""
    if isinstance(value, str) and not _RFC3339_START.match(value):
        raise PydanticCustomError(
            "datetime_format", "must be an RFC 3339 date-time, such as 2026-01-31T00:00:00Z"
        )
    return value


def _in_utc(value: datetime | None) -> datetime | None:
    """The time in UTC, as a protobuf Timestamp holds it; one UTC cannot hold is invalid.

    A parameter's error, so the route answers 400 naming it like any other bad parameter.
    """
    if value is None:
        return None
    if value.tzinfo is None:
        # Read as UTC, as Timestamp.FromDatetime reads it.
        return value.replace(tzinfo=UTC)
    try:
        # 0001-01-01T00:00:00+05:00 is still in year 0 in UTC, which datetime cannot hold.
        return value.astimezone(UTC)
    except OverflowError:
        raise PydanticCustomError(
            "datetime_range", "must be from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z"
        ) from None


Start = Annotated[
    datetime | None,
    Query(description="RFC 3339, inclusive; default 30 days before end."),
    BeforeValidator(_rfc3339),
    AfterValidator(_in_utc),
]
End = Annotated[
    datetime | None,
    Query(description="RFC 3339, exclusive; default now."),
    BeforeValidator(_rfc3339),
    AfterValidator(_in_utc),
]
_GRANULARITY = {
    "day": analytics_pb2.GRANULARITY_DAY,
    "week": analytics_pb2.GRANULARITY_WEEK,
    "month": analytics_pb2.GRANULARITY_MONTH,
}


def _timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    result = timestamp_pb2.Timestamp()
    result.FromDatetime(value)
    return result


@router.get(
    "/v1/analytics/top-products",
    summary="Best-selling products of paid and shipped orders, by quantity then revenue",
    responses=problem_responses(400, 401, 403),
)
async def top_products(
    request: Request,
    admin: Admin,
    start: Start = None,
    end: End = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> TopProducts:
    stubs = upstreams(request)
    response = await stubs.analytics.GetTopProducts(
        analytics_pb2.GetTopProductsRequest(
            start_time=_timestamp(start), end_time=_timestamp(end), limit=limit
        )
    )
    return TopProducts(products=[TopProduct.from_proto(p) for p in response.products])


@router.get(
    "/v1/analytics/sales",
    summary="Orders and revenue per day, ISO week or month (UTC), zeros included",
    responses=problem_responses(400, 401, 403),
)
async def sales(
    request: Request,
    admin: Admin,
    granularity: Literal["day", "week", "month"] = "day",
    start: Start = None,
    end: End = None,
) -> Sales:
    stubs = upstreams(request)
    response = await stubs.analytics.GetSales(
        analytics_pb2.GetSalesRequest(
            granularity=_GRANULARITY[granularity],
            start_time=_timestamp(start),
            end_time=_timestamp(end),
        )
    )
    return Sales(
        granularity=granularity,
        periods=[
            SalesPeriod(
                period_start=rfc3339(period.period_start_time),
                order_count=period.order_count,
                revenue=Money.from_proto(period.revenue),
            )
            for period in response.periods
        ],
    )
