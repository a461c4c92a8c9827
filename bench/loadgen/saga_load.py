"""Orders placed through the gateway at fixed arrival rates, timed from POST to PAID.

`python -m bench.loadgen.saga_load --gateway URL --seed-file F --namespace NS
--phases 20x60,30x15,45x15` runs each phase (orders/s x seconds) open loop: arrivals do not
wait for answers. Each order's PAID moment is when its `order.confirmed` event reaches a queue
of this process's own on the mesh's exchange, so measuring adds no polling load. After each
phase it waits for that phase's orders to settle; the steps after the first stop at the first
rate the mesh does not sustain. Prints one JSON object: per phase, POST-to-PAID percentiles,
orders completed per second, failed POSTs, orders cancelled and orders lost (never PAID).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import random
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp

from bench.baselines.serving import loop_factory
from bench.seed import ADDRESS, Seeded
from bench.stats import summary_ms
from meshkit.messaging import Topology

# What "sustained" means for a step: every order placed and PAID, at least this share of the
# offered rate completed, and a p99 under this bound (a growing backlog breaks both).
SUSTAINED_SHARE = 0.9
SUSTAINED_P99_MS = 1000.0


@dataclass(frozen=True)
class Phase:
    rate: float
    seconds: float

    @classmethod
    def parse(cls, text: str) -> Phase:
        rate, seconds = text.split("x")
        return cls(float(rate), float(seconds))


@dataclass
class Tracker:
    """When each order was posted, and when it was PAID or CANCELLED."""

    posted: dict[str, float] = field(default_factory=dict)
    paid: dict[str, float] = field(default_factory=dict)
    cancelled: set[str] = field(default_factory=set)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def settled(self, orders: list[str]) -> bool:
        return all(o in self.paid or o in self.cancelled for o in orders)

    async def wait_settled(self, orders: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.settled(orders) and (left := deadline - time.monotonic()) > 0:
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(left, 0.5))


async def _listen(
    connection: aio_pika.abc.AbstractConnection, namespace: str, tracker: Tracker
) -> None:
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=1000)
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    exchange = await Topology(namespace).declare_exchange(channel)
    await queue.bind(exchange, "order.confirmed")
    await queue.bind(exchange, "order.cancelled")

    async def on_event(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        now = time.monotonic()
        order_id = message.correlation_id or ""
        if message.routing_key == "order.confirmed":
            tracker.paid.setdefault(order_id, now)
        else:
            tracker.cancelled.add(order_id)
        tracker.changed.set()
        await message.ack()

    await queue.consume(on_event)


class Placer:
    """Places one order per call, for shoppers and products taken in turn."""

    def __init__(self, client: aiohttp.ClientSession, seeded: Seeded, tracker: Tracker) -> None:
        self.client = client
        self.tracker = tracker
        self.products = seeded.product_ids
        self.headers = itertools.cycle(
            [{"Authorization": f"Bearer {s.token}"} for s in seeded.shoppers]
        )
        self.rng = random.Random(5)
        self.errors: dict[str, int] = {}

    async def place(self, into: list[str]) -> None:
        started = time.monotonic()
        try:
            async with self.client.post(
                "/v1/orders",
                json={
                    "items": [{"product_id": self.rng.choice(self.products), "quantity": 1}],
                    "payment_method": "pm_card_visa",
                    "shipping_address": ADDRESS,
                },
                headers={**next(self.headers), "Idempotency-Key": uuid.uuid4().hex},
            ) as response:
                if response.status != 201:
                    self._error(str(response.status))
                    return
                order_id = (await response.json())["id"]
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._error(type(exc).__name__)
            return
        self.tracker.posted[order_id] = started
        into.append(order_id)

    def _error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


async def run_phase(placer: Placer, phase: Phase, drain: float) -> dict[str, Any]:
    orders: list[str] = []
    errors_before = sum(placer.errors.values())
    count = max(1, round(phase.rate * phase.seconds))
    cpu_from = time.process_time()
    began = time.monotonic()
    pending = []
    for index in range(count):  # open loop: the i-th order leaves at i/rate, answered or not
        await asyncio.sleep(max(0.0, began + index / phase.rate - time.monotonic()))
        pending.append(asyncio.create_task(placer.place(orders)))
    await asyncio.gather(*pending)
    await placer.tracker.wait_settled(orders, drain)
    settled = time.monotonic()
    wall = settled - began
    return {
        "rate_per_s": phase.rate,
        "seconds": phase.seconds,
        "orders": orders,
        "post_errors": sum(placer.errors.values()) - errors_before,
        # On time.monotonic's clock, which the benchmark shares: it reads the phase's CPU.
        "began": began,
        "settled": settled,
        "loadgen_cpu_cores": round((time.process_time() - cpu_from) / wall, 2),
    }


def figures(phase: dict[str, Any], tracker: Tracker) -> dict[str, Any]:
    orders: list[str] = phase.pop("orders")
    began: float = phase["began"]
    paid = [o for o in orders if o in tracker.paid]
    latencies = [tracker.paid[o] - tracker.posted[o] for o in paid]
    last = max((tracker.paid[o] for o in paid), default=began)
    completed = round(len(paid) / max(last - began, 1e-9), 1) if paid else 0.0
    cancelled = sum(o in tracker.cancelled for o in orders)
    result = {
        **phase,
        "placed": len(orders),
        "paid": len(paid),
        "cancelled": cancelled,
        "lost": len(orders) - len(paid) - cancelled,
        "completed_per_s": completed,
        **summary_ms(latencies),
    }
    result["sustained"] = bool(
        result["post_errors"] == 0
        and result["lost"] == 0
        and cancelled == 0
        and completed >= SUSTAINED_SHARE * phase["rate_per_s"]
        and result["p99_ms"] is not None
        and result["p99_ms"] < SUSTAINED_P99_MS
    )
    return result


async def run(
    gateway: str,
    seeded: Seeded,
    amqp_url: str,
    namespace: str,
    phases: list[Phase],
    drain: float,
    final_drain: float,
) -> dict[str, Any]:
    tracker = Tracker()
    connection = await aio_pika.connect(amqp_url)
    try:
        await _listen(connection, namespace, tracker)
        async with aiohttp.ClientSession(
            gateway,
            connector=aiohttp.TCPConnector(limit=1000),
            timeout=aiohttp.ClientTimeout(total=30),
        ) as client:
            placer = Placer(client, seeded, tracker)
            warmup: list[str] = []
            await asyncio.gather(*(placer.place(warmup) for _ in range(10)))
            await tracker.wait_settled(warmup, drain)
            placer.errors.clear()
            raw = []
            for index, phase in enumerate(phases):
                raw.append(await run_phase(placer, phase, drain))
                # The first phase is the fixed rate; the steps go on while the mesh keeps up.
                if index > 0 and not figures(dict(raw[-1]), tracker)["sustained"]:
                    break
            every = [o for phase in raw for o in phase["orders"]]
            await tracker.wait_settled(every, final_drain)  # what is not PAID by then is lost
            results = [figures(phase, tracker) for phase in raw]
            errors = dict(placer.errors)
    finally:
        await connection.close()
    sustained = [p["rate_per_s"] for p in results[1:] if p["sustained"]]
    return {
        "phases": results,
        "highest_sustained_rate": max(sustained, default=None),
        "post_errors_by_kind": errors,
        "loadgen": "aiohttp open-loop client, 1 process",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--seed-file", type=Path, required=True)
    parser.add_argument("--amqp-url", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--phases", required=True, help="RATExSECONDS,... e.g. 20x60,30x15")
    parser.add_argument("--drain", type=float, default=15.0, help="seconds to settle a phase")
    parser.add_argument("--final-drain", type=float, default=30.0)
    args = parser.parse_args()
    phases = [Phase.parse(text) for text in args.phases.split(",")]
    seeded = Seeded.read(args.seed_file)
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        result = runner.run(
            run(
                args.gateway, seeded, args.amqp_url, args.namespace, phases,
                args.drain, args.final_drain,
            )
        )  # fmt: skip
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
