"""Targets are judged from figures: PASS, MISS, and MISS when a figure is missing."""

from __future__ import annotations

import os
from typing import Any

import pytest

from bench.__main__ import parse_args
from bench.procstat import machine_times
from bench.runner import _compare_with_baselines, _faster, _plan
from bench.stats import percentile, summary_ms
from bench.targets import evaluate


def _results(**overrides: Any) -> dict[str, Any]:
    results: dict[str, Any] = {
        "1": {"ratio": 0.4, "p99_ms": 20.0, "errors": 0},
        "3": {"ratio": 0.2},
        "4": {"ratio": 0.7},
        "5": {
            "phases": [
                {"rate_per_s": 20, "p99_ms": 200.0, "lost": 0, "placed": 100},
                {"rate_per_s": 40, "p99_ms": 900.0, "lost": 1, "placed": 40},
            ]
        },
        "6": {
            "error_rate": 0.0,
            "kinds": {
                "browse": {"p95_ms": 100.0},
                "view_product": {"p95_ms": None},
                "checkout": {"p95_ms": 700.0},
            },
        },
        "7": {"idle": {"gateway": 80.0, "order_service": 120.0}},
    }
    results.update(overrides)
    return results


def _verdicts(results: dict[str, Any]) -> dict[tuple[str, str], bool]:
    return {(c.row, c.target.split()[0]): c.passed for c in evaluate(results)}


def test_each_target_passes_or_misses_on_its_figure() -> None:
    verdicts = _verdicts(_results())
    assert verdicts[("1", "req/s")] is True
    assert verdicts[("1", "p99")] is True
    assert verdicts[("3", "req/s")] is False
    assert verdicts[("4", "req/s")] is True
    assert verdicts[("5@0", "p99")] is True
    assert verdicts[("5", "0")] is False  # one order lost at the second rate
    assert verdicts[("6:browse", "p95")] is True
    assert verdicts[("6:view_product", "p95")] is False  # no figure is a miss
    assert verdicts[("6:checkout", "p95")] is True
    assert verdicts[("7:gateway", "idle")] is True
    assert verdicts[("7:order_service", "idle")] is False


def test_a_failed_scenario_misses() -> None:
    checks = evaluate({"4": {"failed": "RuntimeError: boom"}})
    assert [(c.row, c.passed) for c in checks] == [("4", False)]


def test_percentiles_by_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.99) == 99
    assert percentile([], 0.5) is None
    assert summary_ms([0.001, 0.002])["max_ms"] == 2.0


def test_the_command_line_runs_the_full_profile_unless_told_otherwise() -> None:
    assert parse_args([]).profile == "full"
    assert parse_args(["--quick"]).profile == "quick"
    assert parse_args(["--profile", "smoke", "--scenarios", "1, 4"]).selected == ["1", "4"]
    with pytest.raises(SystemExit):
        parse_args(["--scenarios", "9"])


def test_a_baseline_runs_before_and_after_its_scenarios() -> None:
    assert _plan(["3"]) == ["hello", "3", "hello"]
    assert _plan(["1", "4"]) == ["hello", "1", "hello", "echo", "4", "echo"]
    assert _plan(["5", "7"]) == ["5"]


def test_the_faster_baseline_run_is_the_reference() -> None:
    slowed = {"rps": 5_000.0, "p99_ms": 60.0}
    steady = {"rps": 8_000.0, "p99_ms": 9.0}
    results: dict[str, Any] = {
        "hello": _faster(slowed, steady),
        "3": {"rps": 2_000.0},
        "echo": _faster({"failed": "TimeoutError"}, {"rps": 4_000.0}),
        "4": {"rps": 3_000.0},
    }
    _compare_with_baselines(results)
    assert results["hello"] == {**steady, "runs_rps": [5_000.0, 8_000.0]}
    assert (results["3"]["baseline"], results["3"]["ratio"]) == ("hello", 0.25)
    assert results["echo"]["runs_rps"] == [None, 4_000.0]
    assert results["4"]["ratio"] == 0.75
    assert _faster({"failed": "x"}, {"failed": "y"}) == {"failed": "x"}


def test_stolen_time_is_not_counted_as_busy() -> None:
    ticks = os.sysconf("SC_CLK_TCK")
    # user nice system idle iowait irq softirq steal guest guest_nice
    line = f"cpu  {ticks * 10} 0 {ticks * 2} {ticks * 50} {ticks} 0 {ticks} {ticks * 3} 0 0"
    assert machine_times(line) == (13.0, 3.0)
