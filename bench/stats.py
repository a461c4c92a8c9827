"""Latency summaries: nearest-rank percentiles, and percentiles pooled from slices of a run."""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence

# The percentiles a load generator reports for each slice of a run, finer towards the tail,
# so that the slices of a scenario can be pooled into its percentiles (`pooled_percentile`).
QUANTILE_POINTS: tuple[float, ...] = (
    *(step / 2 for step in range(1, 199)),  # 0.5 to 99.0
    *(round(99 + step / 10, 1) for step in range(1, 10)),  # 99.1 to 99.9
    *(round(99.9 + step / 100, 2) for step in range(1, 10)),  # 99.91 to 99.99
    100.0,  # the slowest request
)


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


def quantiles_ms(latencies_s: Sequence[float]) -> list[float]:
    """Latencies given in seconds at every one of `QUANTILE_POINTS`, in milliseconds."""
    ordered = sorted(latencies_s)
    if not ordered:
        return []
    # Rounded before the ceiling: 99.9 / 100 * 1000 is 999.0000000000001 in binary floats.
    ranks = (max(1, math.ceil(round(point * len(ordered) / 100, 6))) for point in QUANTILE_POINTS)
    return [round(ordered[rank - 1] * 1000, 3) for rank in ranks]


Slice = tuple[int, Sequence[float]]  # requests, and their latencies at QUANTILE_POINTS


def _share_at_or_below(quantiles: Sequence[float], value: float) -> float:
    """The share of a slice's requests no slower than `value`, read off its quantiles (a
    step function: exact at the points' resolution, never more)."""
    covered = bisect.bisect_right(quantiles, value)
    return QUANTILE_POINTS[covered - 1] / 100 if covered else 0.0


def pooled_percentile(slices: Iterable[Slice], fraction: float) -> float | None:
    """The percentile of all the slices' requests taken together: the smallest latency that
    at least `fraction` of them did not exceed. One slice gives its own percentile back."""
    counted = [(count, quantiles) for count, quantiles in slices if count and quantiles]
    total = sum(count for count, _ in counted)
    if not total:
        return None
    candidates = sorted({value for _, quantiles in counted for value in quantiles})
    needed = fraction * total - 1e-9 * total

    def enough(value: float) -> bool:
        return sum(count * _share_at_or_below(q, value) for count, q in counted) >= needed

    # `enough` grows with the value: the first candidate where it holds, by bisection.
    low, high = 0, len(candidates) - 1
    while low < high:
        middle = (low + high) // 2
        if enough(candidates[middle]):
            high = middle
        else:
            low = middle + 1
    return candidates[low]
