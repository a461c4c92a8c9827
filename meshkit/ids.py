"""Identifiers: UUIDv7 strings, ordered by creation time (friendly to B-tree indexes)."""

from __future__ import annotations

import os
import time
import uuid
from datetime import datetime


def new_id(at: datetime | None = None) -> str:
    """A UUIDv7 (RFC 9562) as 32 hex digits: 48-bit Unix milliseconds, then randomness.

    `at` (aware) dates the id at another moment than now: a record written today for a past
    event sorts among the ids of its own time.
    """
    millis = time.time_ns() // 1_000_000 if at is None else int(at.timestamp() * 1000)
    rand = int.from_bytes(os.urandom(10), "big")
    value = (millis & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= (rand >> 68) << 64 & (0xFFF << 64)  # 12 random bits
    value |= 0b10 << 62  # variant
    value |= rand & ((1 << 62) - 1)
    return uuid.UUID(int=value).hex
