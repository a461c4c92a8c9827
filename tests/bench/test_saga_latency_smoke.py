"""The saga benchmark runs end to end and produces figures (no timing is asserted)."""

from __future__ import annotations

import pytest

from bench.saga_latency import run

pytestmark = pytest.mark.e2e


async def test_saga_latency_produces_figures() -> None:
    result = await run(orders=10, rate=10)
    assert result["orders"] == 10
    assert result["post_errors"] == 0
    assert result["lost"] == 0
    assert result["p50_ms"] is not None
    assert result["p99_ms"] is not None
    assert result["p50_ms"] <= result["p99_ms"]
