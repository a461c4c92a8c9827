"""The soak: minutes of orders at half the rate with shoppers browsing the catalog, for memory
that grows and errors that come only with time."""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from bench.procstat import family_rss_mb
from chaos.faults import FaultResult
from chaos.invariants import Figures
from chaos.load import OrderLoad
from chaos.report import render_table
from chaos.runner import Suite, settle_and_check
from chaos.seed import stock_products

THINK_SECONDS = 0.5
PAGE_SIZE = 20


@dataclass
class Browsing:
    requests: int = 0
    errors: int = 0
    # Status (0: no answer) to how many times, of the errors.
    statuses: dict[int, int] = field(default_factory=dict)

    def count(self, status: int) -> None:
        self.requests += 1
        if status != 200:
            self.errors += 1
            self.statuses[status] = self.statuses.get(status, 0) + 1


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


async def _status(client: httpx.AsyncClient, path: str, **params: Any) -> tuple[int, Any]:
    try:
        response = await client.get(path, params=params)
    except httpx.HTTPError:
        return 0, None
    return response.status_code, response.json() if response.status_code == 200 else None


async def _shopper(
    client: httpx.AsyncClient, stop: asyncio.Event, rng: random.Random, browsing: Browsing
) -> None:
    """A shopper reading a page of the catalog, then one product of it, then again."""
    while not stop.is_set():
        status, page = await _status(client, "/v1/products", page_size=PAGE_SIZE)
        browsing.count(status)
        products = (page or {}).get("products") or []
        if products:
            status, _ = await _status(client, f"/v1/products/{rng.choice(products)['id']}")
            browsing.count(status)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), THINK_SECONDS * rng.uniform(0.5, 1.5))


async def run_soak(suite: Suite, minutes: float, shoppers: int) -> SoakReport:
    stack = suite.stack
    initial_stock = await stock_products(suite.client, suite.shop, "soak")
    pids = stack.pids()
    start_mb = {name: family_rss_mb(pid) for name, pid in pids.items()}
    load = OrderLoad(
        suite.client, suite.shop.customers, list(initial_stock), suite.rate / 2, suite.rng
    )
    stop = asyncio.Event()
    browsing = Browsing()
    suite.say(f"soak: {minutes:g} min, {suite.rate / 2:g} orders/s, {shoppers} shoppers browsing")
    placing = asyncio.create_task(load.run())
    browsers = [
        asyncio.create_task(_shopper(suite.client, stop, random.Random(index), browsing))
        for index in range(shoppers)
    ]
    await asyncio.sleep(minutes * 60)
    stop.set()
    load.stop()
    await asyncio.gather(placing, *browsers)
    end_mb = {name: family_rss_mb(pid) for name, pid in pids.items()}
    incidents = []
    if browsing.errors:
        incidents.append(
            f"{browsing.errors} of {browsing.requests} catalog reads failed: {browsing.statuses}"
        )
    figures = await settle_and_check(
        suite, "soak", load, initial_stock, datetime.now(UTC), FaultResult(), incidents
    )
    suite.say(f"soak: {'PASS' if figures.passed else 'FAIL'}")
    memory = tuple(Memory(name, start_mb[name], end_mb[name]) for name in pids)
    return SoakReport(figures, browsing, memory)
