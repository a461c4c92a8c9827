"""Conversions between protobuf well-known and common types and Python values."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime, timedelta

from google.protobuf import field_mask_pb2, timestamp_pb2

from ecommerce.common.v1 import money_pb2
from meshkit.errors import InvalidArgument

# The arithmetic of Timestamp.FromDatetime and ToDatetime, at a fraction of their cost (they
# are written in Python with keyword arguments throughout): every order and product a service
# answers with carries two or three timestamps, and a page of them twenty times as many.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    return None if value is None else to_timestamp(value)


def to_timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    """A datetime as a protobuf timestamp (a naive one is local time, as `astimezone` reads it)."""
    since = value.astimezone(UTC) - _EPOCH
    return timestamp_pb2.Timestamp(
        seconds=since.days * 86_400 + since.seconds, nanos=since.microseconds * 1_000
    )


def to_datetime(value: timestamp_pb2.Timestamp) -> datetime:
    """A protobuf timestamp as an aware UTC datetime, nanoseconds truncated to microseconds."""
    return _EPOCH + timedelta(0, value.seconds, value.nanos // 1_000)


def mask_paths(mask: field_mask_pb2.FieldMask, allowed: Collection[str]) -> set[str]:
    """The paths of an update mask, refusing an empty mask or a path outside `allowed`."""
    paths = set(mask.paths)
    if not paths:
        raise InvalidArgument.for_field("update_mask", "must name at least one field")
    if unknown := sorted(paths - set(allowed)):
        raise InvalidArgument.for_field(
            "update_mask",
            f"cannot update {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}",
        )
    return paths


def money(amount_minor: int, currency_code: str) -> money_pb2.Money:
    """An amount in minor units, as every API and event carries it."""
    return money_pb2.Money(amount_minor=amount_minor, currency_code=currency_code)
