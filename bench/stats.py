"""Latency summaries: percentiles by the nearest-rank method."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The nearest-rank percentile (0 < fraction <= 1), or None with no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def summary_ms(latencies_s: Sequence[float]) -> dict[str, float | None]:
    """p50, p95, p99 and max of latencies given in seconds, in milliseconds."""
    ordered = sorted(latencies_s)

    def at(fraction: float) -> float | None:
        value = percentile(ordered, fraction)
        return None if value is None else round(value * 1000, 1)

    return {
        "p50_ms": at(0.50),
        "p95_ms": at(0.95),
        "p99_ms": at(0.99),
        "max_ms": round(ordered[-1] * 1000, 1) if ordered else None,
    }
