"""A closed-loop scenario measured against its baseline in alternating slices.

The machine is shared: a neighbour can slow all of it for a minute, and a scenario measured
after its baseline would be compared with a different machine. Measured in short slices that
alternate (baseline then scenario, scenario then baseline, ...), the two slices of each round
see nearly the same machine; the scenario's ratio is the median of its rounds' ratios, which
one slowed round cannot move. Throughput and percentiles pool every slice's requests.
"""

from __future__ import annotations

import asyncio
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.dbstats import TransactionMeter
from bench.scenarios import Bench, Definition, Slice
from bench.stats import pooled_percentile

# PostgreSQL publishes a backend's transaction counts up to a second late.
STATISTICS_LAG_SECONDS = 1.0


@dataclass
class Measured:
    """A scenario's figures, its baseline's slices (pooled later with those it ran beside the
    other scenarios), and its reference's figures, compared with the baseline."""

    figures: dict[str, Any]
    baseline_slices: list[dict[str, Any]]
    reference: dict[str, Any] | None = None


async def measure(
    bench: Bench,
    scenario: Definition,
    baseline: Definition,
    warmed: set[str],
    reference: Definition | None = None,
) -> Measured:
    """The scenario's figures, compared with its baseline and, when it has one, its reference.

    Each is warmed up first, once per run (as `warmed` records): the warm-up fills the caches
    and the connections of the servers' pools. A round runs the scenario between the other
    two, so that it sees the machine each of them saw; the order turns every round.
    """
    others = [definition for definition in (baseline, reference) if definition is not None]
    for definition in (*others, scenario):
        if definition.key not in warmed:
            await _slice_of(definition)(bench, definition.warmup_seconds(bench.profile))
            warmed.add(definition.key)
    await asyncio.sleep(STATISTICS_LAG_SECONDS)
    database = await TransactionMeter(bench.stack.databases).start()
    slices: dict[str, list[dict[str, Any]]] = {d.key: [] for d in (*others, scenario)}
    for round_number in range(bench.profile.rounds):
        order = [others[0], scenario, *others[1:]]
        for definition in order if round_number % 2 == 0 else reversed(order):
            result = await _slice_of(definition)(bench, bench.profile.slice_seconds)
            slices[definition.key].append(result)
    own, theirs = slices[scenario.key], slices[baseline.key]
    figures = pool(own)
    figures["db_transactions"] = await database.stop()
    figures.update(compare(own, theirs, baseline.key))
    if reference is None:
        return Measured(figures, theirs)
    references = slices[reference.key]
    figures["reference"] = compare(own, references, reference.key)
    return Measured(figures, theirs, pool(references) | compare(references, theirs, baseline.key))


def _slice_of(definition: Definition) -> Slice:
    if definition.slice is None:
        raise ValueError(f"scenario {definition.key} is not closed-loop load")
    return definition.slice


def compare(
    own: Sequence[dict[str, Any]], theirs: Sequence[dict[str, Any]], baseline: str
) -> dict[str, Any]:
    """Each round's ratio of the scenario's throughput to its baseline's, and their median."""
    rounds = [
        {
            "rps": mine["rps"],
            "baseline_rps": base["rps"],
            "ratio": round(mine["rps"] / base["rps"], 3) if base["rps"] else None,
        }
        for mine, base in zip(own, theirs, strict=True)
    ]
    ratios = [entry["ratio"] for entry in rounds if entry["ratio"] is not None]
    return {
        "baseline": baseline,
        "rounds": rounds,
        "ratio": round(statistics.median(ratios), 3) if ratios else None,
    }


def pool(slices: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One figure set from the slices of one load: requests and errors added up, throughput
    over their time together (each slice's rate weighted by its length), percentiles of all
    their requests, CPU averaged over the slices (of equal length)."""
    requests = sum(result["requests"] for result in slices)
    seconds = sum(result["seconds"] for result in slices)
    # A slice's own rate, not requests over seconds: a gRPC client process that was late
    # measured its rate over less than the slice (`grpc_load`).
    weighted_rps = sum(result["rps"] * result["seconds"] for result in slices)
    latencies = [(result["requests"], result["quantiles_ms"]) for result in slices]
    errors: Counter[str] = Counter()
    for result in slices:
        errors.update(result.get("errors_by_kind") or result.get("errors_by_code") or {})
    cores: Counter[str] = Counter()
    for result in slices:
        cores.update(result["server_cpu_cores"])
    first = slices[0]
    return {
        "requests": requests,
        "seconds": round(seconds, 2),
        "rps": round(weighted_rps / seconds, 1) if seconds else 0.0,
        **{f"p{point}_ms": pooled_percentile(latencies, point / 100) for point in (50, 95, 99)},
        "max_ms": max(result["max_ms"] or 0.0 for result in slices),
        "errors": sum(result["errors"] for result in slices),
        "errors_by_kind": dict(errors),
        "slices": len(slices),
        "slices_rps": [result["rps"] for result in slices],
        # Which slice a pooled tail came from: one stalled slice, or all of them.
        "slices_p99_ms": [result["p99_ms"] for result in slices],
        "concurrency": first["concurrency"],
        "loadgen": first["loadgen"],
        "loadgen_cpu_cores": round(max(result["loadgen_cpu_cores"] for result in slices), 2),
        "loadgen_capacity_cores": first["loadgen_capacity_cores"],
        **_lateness(slices),
        "server_cpu_cores": {name: round(total / len(slices), 2) for name, total in cores.items()},
    }


def _lateness(slices: Sequence[dict[str, Any]]) -> dict[str, float]:
    late = [result["loadgen_late_s"] for result in slices if "loadgen_late_s" in result]
    return {"loadgen_late_s": max(late)} if late else {}
