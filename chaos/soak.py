"""The soak: minutes of orders at half the rate with shoppers browsing the catalog, for memory
that grows and errors that come only with time."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.procstat import family_rss_mb
from bench.seed import Seeded, Shopper
from chaos.faults import FaultResult
from chaos.invariants import Figures
from chaos.load import OrderLoad
from chaos.report import render_table
from chaos.runner import Suite, settle_and_check
from chaos.seed import stock_products
from meshkit.settings import PROJECT_ROOT

# What the shoppers do: read pages of the catalog and products, and change nothing, so that
# the round's accounting of orders and stock stays the order load's alone.
BROWSING = "browse,view_product"


@dataclass(frozen=True)
class Browsing:
    requests: int
    errors: int
    # What failed (an HTTP status or an exception's name) to how many times.
    failures: dict[str, int]
    # The shoppers' process's own CPU, in cores: near 1, it and not the mesh was the limit.
    loadgen_cores: float


@dataclass(frozen=True)
class Memory:
    process: str
    start_mb: float
    end_mb: float


@dataclass(frozen=True)
class SoakReport:
    figures: Figures
    browsing: Browsing
    memory: tuple[Memory, ...]

    def memory_table(self) -> str:
        return render_table(
            ["process", "RSS at start, MB", "RSS at end, MB", "growth, MB"],
            [
                [m.process, f"{m.start_mb:.1f}", f"{m.end_mb:.1f}", f"{m.end_mb - m.start_mb:+.1f}"]
                for m in self.memory
            ],
        )


async def _browse(
    suite: Suite, products: list[str], shoppers: int, seconds: float, seed_file: Path
) -> Browsing:
    """Shoppers browsing for `seconds`, in a process of their own: the bench's shopper load,
    whose client pools connections without a cost that grows with their number."""
    customers = suite.shop.customers
    Seeded(
        product_ids=products,
        category_ids=[],
        shoppers=[Shopper(person.id, person.email, person.token) for person in customers],
    ).write(seed_file)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.loadgen.shopper_load",
        "--gateway", suite.stack.gateway_url, "--seed-file", str(seed_file),
        "--users", str(shoppers), "--seconds", str(seconds), "--warmup", "0",
        "--only", BROWSING,
        cwd=PROJECT_ROOT,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        # Its own run, then the requests still in flight (each under 30 s).
        output, _ = await asyncio.wait_for(process.communicate(), seconds + 60)
    finally:
        if process.returncode is None:  # stopped early (Ctrl-C), or past its deadline
            process.kill()
            await process.wait()
    if process.returncode != 0:
        raise RuntimeError(f"the shoppers' process exited with {process.returncode}")
    result = json.loads(output)
    failures: dict[str, int] = {}
    for kind in result["kinds"].values():
        for failure, count in kind["errors_by_kind"].items():
            failures[failure] = failures.get(failure, 0) + count
    return Browsing(result["requests"], result["errors"], failures, result["loadgen_cpu_cores"])


async def run_soak(suite: Suite, minutes: float, shoppers: int) -> SoakReport:
    stack = suite.stack
    initial_stock = await stock_products(suite.client, suite.shop, "soak")
    pids = stack.pids()
    start_mb = {name: family_rss_mb(pid) for name, pid in pids.items()}
    load = OrderLoad(
        suite.client, suite.shop.customers, list(initial_stock), suite.rate / 2, suite.rng
    )
    suite.say(f"soak: {minutes:g} min, {suite.rate / 2:g} orders/s, {shoppers} shoppers browsing")
    placing = asyncio.create_task(load.run())
    try:
        with tempfile.TemporaryDirectory(prefix="chaos-soak-") as scratch:
            browsing = await _browse(
                suite, list(initial_stock), shoppers, minutes * 60, Path(scratch) / "shop.json"
            )
    finally:
        # However the browsing ended, no order is placed after it.
        load.stop()
        await placing
    end_mb = {name: family_rss_mb(pid) for name, pid in pids.items()}
    incidents = []
    if browsing.errors:
        incidents.append(
            f"{browsing.errors} of {browsing.requests} catalog reads failed: {browsing.failures}"
        )
    figures = await settle_and_check(
        suite, "soak", load, initial_stock, datetime.now(UTC), FaultResult(), incidents
    )
    suite.say(f"soak: {'PASS' if figures.passed else 'FAIL'}")
    memory = tuple(Memory(name, start_mb[name], end_mb[name]) for name in pids)
    return SoakReport(figures, browsing, memory)
