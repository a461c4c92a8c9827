"""A mixed shopper load through the gateway: simulated users with think time between requests.

`python -m bench.loadgen.shopper_load --gateway URL --seed-file F --users 200 --seconds 60`
runs each user as a loop, as locust would: pick an action by weight (browse a category 10,
view a product 5, add to cart 2, check out 1), do it, think 0.5-1.5 s, again. A checkout with
an empty cart adds an item first; `--only browse,view_product` keeps to those kinds, for
a load that changes nothing. Prints one JSON object: per kind of request its count,
errors, p50, p95, p99; the overall error rate; and the generator's own CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.baselines.serving import loop_factory
from bench.seed import ADDRESS, Seeded, Shopper
from bench.stats import summary_ms

WEIGHTS = {"browse": 10, "view_product": 5, "add_to_cart": 2, "checkout": 1}
THINK_SECONDS = (0.5, 1.5)
ORDERINGS = ("price", "-price", "name", "-created_at")


@dataclass
class Record:
    """Latencies and failures per kind of request, counted after the warm-up only."""

    measure_from: float
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))

    def add(self, kind: str, started: float, outcome: str | None) -> None:
        if started < self.measure_from:
            return
        if outcome is None:
            self.latencies[kind].append(time.monotonic() - started)
        else:
            self.errors[kind][outcome] = self.errors[kind].get(outcome, 0) + 1


class User:
    def __init__(
        self,
        client: aiohttp.ClientSession,
        shopper: Shopper,
        seeded: Seeded,
        record: Record,
        seed: int,
    ) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {shopper.token}"}
        self.seeded = seeded
        self.record = record
        self.rng = random.Random(seed)
        self.cart_items = 0

    async def _call(self, kind: str, method: str, url: str, ok: int = 200, **kw: Any) -> bool:
        started = time.monotonic()
        try:
            async with self.client.request(method, url, **kw) as response:
                await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.record.add(kind, started, type(exc).__name__)
            return False
        outcome = None if response.status == ok else str(response.status)
        self.record.add(kind, started, outcome)
        return outcome is None

    async def browse(self) -> None:
        params = {"order_by": self.rng.choice(ORDERINGS)}
        if self.seeded.category_ids:
            params["category_id"] = self.rng.choice(self.seeded.category_ids)
        await self._call("browse", "GET", "/v1/products", params=params)

    async def view_product(self) -> None:
        product = self.rng.choice(self.seeded.product_ids)
        await self._call("view_product", "GET", f"/v1/products/{product}")

    async def add_to_cart(self) -> None:
        product = self.rng.choice(self.seeded.product_ids)
        if await self._call(
            "add_to_cart",
            "PUT",
            f"/v1/cart/items/{product}",
            json={"quantity": 1},
            headers=self.headers,
        ):
            self.cart_items += 1

    async def checkout(self) -> None:
        if not self.cart_items:
            await self.add_to_cart()
        if await self._call(
            "checkout",
            "POST",
            "/v1/cart:checkout",
            ok=201,
            json={"payment_method": "pm_card_visa", "shipping_address": ADDRESS},
            headers={**self.headers, "Idempotency-Key": uuid.uuid4().hex},
        ):
            self.cart_items = 0

    async def live(self, until: float, mix: dict[str, int]) -> None:
        actions = {kind: getattr(self, kind) for kind in mix}
        kinds, weights = list(mix), list(mix.values())
        await asyncio.sleep(self.rng.uniform(*THINK_SECONDS))  # users arrive spread out
        while time.monotonic() < until:
            await actions[self.rng.choices(kinds, weights)[0]]()
            await asyncio.sleep(self.rng.uniform(*THINK_SECONDS))


async def run(
    gateway: str,
    seeded: Seeded,
    users: int,
    seconds: float,
    warmup: float,
    mix: dict[str, int] = WEIGHTS,
) -> dict[str, Any]:
    started = time.monotonic()
    record = Record(measure_from=started + warmup)
    until = record.measure_from + seconds
    async with aiohttp.ClientSession(
        gateway,
        connector=aiohttp.TCPConnector(limit=users + 10),
        timeout=aiohttp.ClientTimeout(total=30),
    ) as client:
        people = [
            User(client, seeded.shoppers[i % len(seeded.shoppers)], seeded, record, seed=i)
            for i in range(users)
        ]
        cpu_from, wall_from = time.process_time(), time.monotonic()
        await asyncio.gather(*(user.live(until, mix) for user in people))
        cores = (time.process_time() - cpu_from) / (time.monotonic() - wall_from)
    kinds: dict[str, dict[str, Any]] = {}
    total = errors = 0
    for kind in mix:
        done = record.latencies.get(kind, [])
        failed = sum(record.errors.get(kind, {}).values())
        total, errors = total + len(done) + failed, errors + failed
        kinds[kind] = {
            "requests": len(done) + failed,
            "rps": round((len(done) + failed) / seconds, 1),
            "errors": failed,
            "errors_by_kind": dict(record.errors.get(kind, {})),
            **summary_ms(done),
        }
    return {
        "users": users,
        "seconds": seconds,
        "kinds": kinds,
        "requests": total,
        "errors": errors,
        "error_rate": errors / total if total else None,
        "loadgen": "aiohttp users with think time, 1 process",
        "loadgen_cpu_cores": round(cores, 2),
        "loadgen_capacity_cores": 1,
    }


def _kinds(value: str) -> dict[str, int]:
    kinds = [kind.strip() for kind in value.split(",") if kind.strip()]
    unknown = [kind for kind in kinds if kind not in WEIGHTS]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(f"kinds are {', '.join(WEIGHTS)}; not {value!r}")
    return {kind: WEIGHTS[kind] for kind in kinds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--seed-file", type=Path, required=True)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument(
        "--only",
        type=_kinds,
        default=WEIGHTS,
        help=f"comma-separated kinds of request, of {', '.join(WEIGHTS)} (default: all)",
    )
    args = parser.parse_args()
    seeded = Seeded.read(args.seed_file)
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        result = runner.run(
            run(args.gateway, seeded, args.users, args.seconds, args.warmup, args.only)
        )
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
