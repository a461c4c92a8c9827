"""Timestamps to and from protobuf: protobuf's own arithmetic, at a fraction of its cost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from google.protobuf import timestamp_pb2

from meshkit.rpc import timestamp, to_datetime, to_timestamp

MOMENTS = [
    datetime(2026, 12, 4, 16, 0, 0, 123_456, tzinfo=UTC),
    datetime(1970, 1, 1, tzinfo=UTC),
    datetime(1969, 12, 31, 23, 59, 59, 5, tzinfo=UTC),  # before 1970: negative seconds
    datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    datetime(2026, 1, 1, 5, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
]


@pytest.mark.parametrize("moment", MOMENTS)
def test_a_datetime_becomes_the_timestamp_protobuf_makes(moment: datetime) -> None:
    expected = timestamp_pb2.Timestamp()
    expected.FromDatetime(moment.astimezone(UTC))
    assert timestamp(moment) == to_timestamp(moment) == expected
    assert to_datetime(expected) == moment


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [(1_764_866_183, 123_456_789), (0, 1_000), (-86_400, 999_999_999), (253_402_300_799, 0)],
)
def test_a_timestamp_becomes_the_datetime_protobuf_makes(seconds: int, nanos: int) -> None:
    stamp = timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)  # nanoseconds truncated
    converted = to_datetime(stamp)
    assert converted == stamp.ToDatetime(tzinfo=UTC)
    assert converted.tzinfo is UTC


def test_no_datetime_is_no_timestamp() -> None:
    assert timestamp(None) is None
