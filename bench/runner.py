"""One benchmark run: stand the stack up, seed it, run the chosen scenarios, report."""

from __future__ import annotations

import asyncio
import os
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Awaitable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc

from bench import paired, procstat, profiling, scenarios
from bench.coldstart import COLD_START
from bench.loadgen.wrk import ensure_wrk
from bench.profiles import Profile
from bench.replicas import REPLICAS
from bench.report import Report
from bench.scenarios import BASELINES, MEMORY, SCENARIOS, Bench
from bench.seed import seed
from bench.stack import PROCESSES, Stack, bench_stack
from bench.targets import evaluate
from bench.tracing_cost import TRACING
from meshkit.settings import PROJECT_ROOT

# Every scenario, by key: tracing's cost runs the others' under each setting.
CATALOGUE = {
    **SCENARIOS,
    TRACING.key: TRACING,
    COLD_START.key: COLD_START,
    REPLICAS.key: REPLICAS,
}
ALL = (*SCENARIOS, MEMORY, TRACING.key, COLD_START.key, REPLICAS.key)
# Cold start first, while the mesh is idle. Closed-loop scenarios run in slices that alternate
# with their baseline's (`bench.paired`). The replicas and tracing's cost restart the mesh:
# they come last.
ORDER = (COLD_START.key, "1", "2", "3", "4", "5", "6", REPLICAS.key, "8")
# Scenarios that restart the mesh's processes: no profile follows them, and the memory after
# the load is read before the first of them.
RESTARTING = (REPLICAS.key, TRACING.key)
# The table's order: each baseline above the scenarios compared with it, a reference below.
SHOWN = ("hello", "1", "floor1", "2", "3", "floor3", "echo", "4", "5", "10", "6", MEMORY, "8", "9")


def _say(message: str, began: float) -> None:
    print(f"[{time.monotonic() - began:6.1f}s] {message}", file=sys.stderr, flush=True)


def _commit() -> str:
    found = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    return found.stdout.strip() or "unknown"


def _memory_after(results: dict[str, Any], stack: Stack) -> None:
    results[MEMORY]["after"] = scenarios.memory(stack)
    results[MEMORY]["after_anonymous"] = scenarios.memory(stack, "RssAnon")
    results[MEMORY]["after_proportional"] = scenarios.memory(stack, "Pss")


def _plan(selected: Collection[str]) -> list[str]:
    return [key for key in ORDER if key in selected]


@dataclass
class _Compared:
    """What the paired scenarios leave for the table besides their own figures: the slices of
    each baseline (pooled once every scenario ran) and each reference's figures."""

    warmed: set[str] = field(default_factory=set)
    baseline_slices: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    references: dict[str, dict[str, Any]] = field(default_factory=dict)

    def results(self) -> dict[str, dict[str, Any]]:
        pooled = {name: paired.pool(slices) for name, slices in self.baseline_slices.items()}
        return pooled | self.references


async def _run(bench: Bench, key: str, compared: _Compared) -> dict[str, Any]:
    definition = CATALOGUE[key]
    if definition.run is not None:
        return await definition.run(bench)
    assert definition.baseline is not None
    reference = BASELINES[definition.reference] if definition.reference else None
    measured = await paired.measure(
        bench, definition, BASELINES[definition.baseline], compared.warmed, reference
    )
    compared.baseline_slices.setdefault(definition.baseline, []).extend(measured.baseline_slices)
    if reference is not None and measured.reference is not None:
        compared.references[reference.key] = measured.reference
    return measured.figures


async def _profiled(
    bench: Bench,
    key: str,
    directory: Path,
    processes: Collection[str],
    run: Awaitable[dict[str, Any]],
) -> tuple[dict[str, Any], list[profiling.Profile]]:
    """Run a scenario while py-spy samples the chosen processes of the mesh."""
    pids = {name: pid for name, pid in bench.mesh_pids.items() if name in processes}
    async with profiling.recording(pids, directory, f"scenario{key}") as outputs:
        result = await run
    return result, [profiling.summarize(name, path) for name, path in outputs.items()]


async def run_bench(
    profile: Profile,
    selected: Collection[str] = ALL,
    *,
    mesh_log: Path | None = None,
    py_spy_dir: Path | None = None,
    py_spy_processes: Collection[str] = PROCESSES,
) -> Report:
    began = time.monotonic()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    plan = _plan(selected)
    if py_spy_dir is not None:
        profiling.py_spy()  # fail now, not after the set-up, when it is missing
    if any(key in plan for key in ("1", "2", "3", TRACING.key)):
        ensure_wrk()
    results: dict[str, Any] = {}
    profiles: dict[str, list[profiling.Profile]] = {}
    stolen_before = procstat.machine_seconds()[1]
    meta: dict[str, Any] = {
        "profile": profile.name,
        "started_at": started_at,
        "commit": _commit(),
        "cores": os.cpu_count(),
        "load_average_before": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "connections": profile.connections,
    }
    async with bench_stack(keep_logs=mesh_log) as stack:
        _say("mesh ready; seeding", began)
        seeded = await seed(
            stack,
            products=profile.products,
            categories=profile.categories,
            shoppers=profile.shoppers,
            order_owners=profile.order_owners,
            orders_per_owner=profile.orders_per_owner,
        )
        meta.update(
            gateway_workers=stack.gateway_workers,
            products=len(seeded.product_ids),
            categories=len(seeded.category_ids),
            users=len(seeded.shoppers),
            seeded_orders=len(seeded.orders),
        )
        bench = Bench(stack, seeded, seeded.write(stack.workdir / "seed.json"), profile)
        if MEMORY in selected:
            await asyncio.sleep(1)  # let the sign-ups' work settle
            results[MEMORY] = {
                "idle": scenarios.memory(stack),
                "idle_anonymous": scenarios.memory(stack, "RssAnon"),
                "idle_proportional": scenarios.memory(stack, "Pss"),
            }
        compared = _Compared()
        for key in plan:
            if key in RESTARTING and MEMORY in selected and "after" not in results[MEMORY]:
                _memory_after(results, stack)
            _say(f"running {CATALOGUE[key].title}", began)
            bench.more_to_run = key != plan[-1]
            result: dict[str, Any]
            try:
                run = _run(bench, key, compared)
                # Tracing's cost restarts the processes a profile would have been following.
                if py_spy_dir is not None and key not in (*RESTARTING, COLD_START.key):
                    result, profiles[key] = await _profiled(
                        bench, key, py_spy_dir, py_spy_processes, run
                    )
                else:
                    result = await run
            except Exception as exc:  # one broken scenario must not hide the others' figures
                traceback.print_exc(file=sys.stderr)
                result = {"failed": f"{type(exc).__name__}: {exc}"[:2000]}
            results[key] = result
        # A baseline's row pools every slice it ran, between the slices of all its scenarios.
        results.update(compared.results())
        if MEMORY in selected and "after" not in results[MEMORY]:
            _memory_after(results, stack)
        meta["emails_sent"] = stack.mail.received
        _say("stopping the mesh", began)
    if py_spy_dir is not None:
        (py_spy_dir / "summary.md").write_text(profiling.summary_markdown(profiles))
        meta["py_spy"] = str(py_spy_dir)
    meta["load_average_after"] = round(os.getloadavg()[0], 2)
    meta["duration_s"] = round(time.monotonic() - began, 1)
    # Cores the hypervisor gave other guests, on average over the run: a noisy spell shows.
    meta["stolen_cores"] = round(
        (procstat.machine_seconds()[1] - stolen_before) / meta["duration_s"], 2
    )
    ordered = {key: results[key] for key in SHOWN if key in results}
    return Report(meta, ordered, evaluate(ordered))
