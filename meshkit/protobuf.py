"""Conversions between protobuf well-known types and Python values."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime

from google.protobuf import field_mask_pb2, timestamp_pb2

from meshkit.errors import InvalidArgument


def timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    result = timestamp_pb2.Timestamp()
    result.FromDatetime(value.astimezone(UTC))
    return result


def to_datetime(value: timestamp_pb2.Timestamp) -> datetime:
    return value.ToDatetime(tzinfo=UTC)


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
