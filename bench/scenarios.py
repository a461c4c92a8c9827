"""The scenarios and baselines: each runs its load generator and returns its figures."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.costs import CostMeter
from bench.loadgen.child import run_child
from bench.loadgen.wrk import Target, run_wrk
from bench.procstat import CpuMeter, CpuTimeline, family_rss_mb, infrastructure_pids
from bench.profiles import Profile
from bench.seed import Seeded
from bench.stack import AMQP_URL, PROCESSES, Stack


@dataclass
class Bench:
    """Everything a scenario runs against."""

    stack: Stack
    seeded: Seeded
    seed_file: Path
    profile: Profile
    # Processes beside the mesh's six that a scenario started (replicas), by name.
    extra_pids: Mapping[str, int] = field(default_factory=dict)
    # Whether a scenario runs after the current one: one that restarts the mesh with other
    # settings need not put the first ones back for none.
    more_to_run: bool = True
    # The gateway the HTTP scenarios load: the mesh's, unless a scenario started another.
    gateway_url: str | None = None

    @property
    def gateway(self) -> str:
        return self.gateway_url or self.stack.gateway_url

    @property
    def mesh_pids(self) -> dict[str, int]:
        return {**self.stack.pids, **self.extra_pids}

    def baseline_pids(self, *names: str) -> dict[str, int]:
        return {name: self.stack.baselines.processes[name].pid for name in names}


Scenario = Callable[[Bench], Awaitable[dict[str, Any]]]
# One slice of closed-loop load of so many seconds: its figures, with the server CPU it took.
Slice = Callable[[Bench, float], Awaitable[dict[str, Any]]]

# A gRPC slice's client processes start this long before its window opens: the time to
# start them and to warm their channels up.
GRPC_CLIENT_START_SECONDS = 1.5


async def _wrk(
    bench: Bench, url: str, targets: list[Target], pids: Mapping[str, int], seconds: float
) -> dict[str, Any]:
    meter = CpuMeter(pids).start()
    result = await run_wrk(
        url,
        targets,
        duration=seconds,
        connections=bench.profile.connections,
        workdir=bench.stack.workdir,
    )
    result["server_cpu_cores"] = meter.stop()
    return result


async def hello_world(bench: Bench, seconds: float) -> dict[str, Any]:
    """Baseline: GET / of a bare FastAPI app."""
    return await _wrk(
        bench,
        bench.stack.baselines.hello_url,
        [Target("/", {})],
        bench.baseline_pids("hello_app"),
        seconds,
    )


def _hot_products(bench: Bench) -> list[str]:
    return bench.seeded.product_ids[: bench.profile.hot_products]


async def product_by_id(bench: Bench, seconds: float) -> dict[str, Any]:
    """1: GET /v1/products/{id}, cycling through the hot products, cache warm."""
    targets = [Target(f"/v1/products/{pid}", {}) for pid in _hot_products(bench)]
    return await _wrk(bench, bench.gateway, targets, bench.mesh_pids, seconds)


async def product_floor(bench: Bench, seconds: float) -> dict[str, Any]:
    """Scenario 1's floor: the same requests to a bare FastAPI app, one bare grpc.aio hop to
    the echo server (`bench.baselines.floor_app`)."""
    targets = [Target(f"/v1/products/{pid}", {}) for pid in _hot_products(bench)]
    return await _wrk(
        bench,
        bench.stack.baselines.floor_url,
        targets,
        bench.baseline_pids("floor_app", "echo_server"),
        seconds,
    )


async def product_listing(bench: Bench, seconds: float) -> dict[str, Any]:
    """2: GET /v1/products?category_id=...&order_by=price, cycling through the categories."""
    targets = [
        Target(f"/v1/products?category_id={cid}&order_by=price", {})
        for cid in bench.seeded.category_ids
    ]
    return await _wrk(bench, bench.gateway, targets, bench.mesh_pids, seconds)


def _order_reads(bench: Bench) -> list[Target]:
    return [
        Target(f"/v1/orders/{order_id}", {"Authorization": f"Bearer {token}"})
        for order_id, token in bench.seeded.orders
    ]


async def order_by_id(bench: Bench, seconds: float) -> dict[str, Any]:
    """3: GET /v1/orders/{id} with its owner's bearer token, cycling through seeded orders."""
    return await _wrk(bench, bench.gateway, _order_reads(bench), bench.mesh_pids, seconds)


async def order_floor(bench: Bench, seconds: float) -> dict[str, Any]:
    """Scenario 3's floor: the same requests to a bare FastAPI app, one bare grpc.aio hop
    and the same read of the same database (`bench.baselines.floor_app`)."""
    return await _wrk(
        bench,
        bench.stack.baselines.floor_url,
        _order_reads(bench),
        bench.baseline_pids("floor_app", "floor_server"),
        seconds,
    )


async def _grpc(
    bench: Bench, target: str, call: str, pids: Mapping[str, int], seconds: float
) -> dict[str, Any]:
    ids = bench.stack.workdir / "hot-products.txt"
    ids.write_text("\n".join(_hot_products(bench)))
    start_at = time.monotonic() + GRPC_CLIENT_START_SECONDS
    argv = [
        sys.executable, "-m", "bench.loadgen.grpc_load",
        "--target", target, "--call", call, "--ids-file", str(ids),
        "--concurrency", str(bench.profile.connections), "--processes", "2",
        "--duration", str(seconds), "--start-at", repr(start_at),
    ]  # fmt: skip
    child = asyncio.ensure_future(run_child(argv, timeout=GRPC_CLIENT_START_SECONDS + seconds + 60))
    # The server's CPU over the window the generator measures, not its start-up.
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    meter = CpuMeter(pids).start()
    await asyncio.wait({child}, timeout=seconds)
    server_cpu_cores = meter.stop()
    run = (await child).check("grpc_load")
    result: dict[str, Any] = json.loads(run.stdout)
    result["server_cpu_cores"] = server_cpu_cores
    return result


async def echo(bench: Bench, seconds: float) -> dict[str, Any]:
    """Baseline: a unary call on a bare grpc.aio echo server."""
    return await _grpc(
        bench, bench.stack.baselines.echo_target, "echo", bench.baseline_pids("echo_server"),
        seconds,
    )  # fmt: skip


async def grpc_get_product(bench: Bench, seconds: float) -> dict[str, Any]:
    """4: ProductService.GetProduct over gRPC, straight to the product service."""
    return await _grpc(
        bench, bench.stack.grpc_target("product_service"), "get_product",
        {"product_service": bench.mesh_pids["product_service"]}, seconds,
    )  # fmt: skip


def _per_order_ms(cpu_seconds: Mapping[str, float], orders: int) -> dict[str, float]:
    if not orders:
        return {}
    return {name: round(seconds * 1000 / orders, 1) for name, seconds in cpu_seconds.items()}


async def saga(bench: Bench, *, costs: bool = True) -> dict[str, Any]:
    """5: orders through the gateway at a fixed rate, then stepping up; POST to PAID; with
    `costs`, the table of what an order cost each of the six processes."""
    profile = bench.profile
    phases = [f"{profile.saga_rate:g}x{profile.saga_seconds:g}"] + [
        f"{rate:g}x{profile.saga_step_seconds:g}" for rate in profile.saga_steps
    ]
    argv = [
        sys.executable, "-m", "bench.loadgen.saga_load",
        "--gateway", bench.stack.gateway_url, "--seed-file", str(bench.seed_file),
        "--amqp-url", AMQP_URL, "--namespace", bench.stack.namespace,
        "--phases", ",".join(phases),
        "--drain", str(profile.saga_drain), "--final-drain", str(profile.saga_final_drain),
    ]  # fmt: skip
    longest = (
        profile.saga_seconds
        + len(profile.saga_steps) * (profile.saga_step_seconds + profile.saga_drain)
        + profile.saga_drain * 2
        + profile.saga_final_drain
    )
    stack = bench.stack
    meter_costs = (
        await CostMeter(stack.databases, stack.metrics_urls, stack.mail).start() if costs else None
    )
    # The servers the saga leans on are measured beside the mesh: what an order costs the
    # machine is theirs as much as the services'.
    pids = {**bench.mesh_pids, **infrastructure_pids()}
    meter = CpuMeter(pids).start()
    timeline = CpuTimeline(pids).start()
    try:
        run = (await run_child(argv, timeout=longest + 60)).check("saga_load")
    finally:
        await timeline.stop()
    result: dict[str, Any] = json.loads(run.stdout)
    cpu_seconds = meter.seconds()
    result["server_cpu_cores"] = meter.stop()
    # What an order costs each process (idle time between phases included, a few percent).
    placed = sum(phase["placed"] for phase in result["phases"])
    result["cpu_ms_per_order"] = _per_order_ms(cpu_seconds, placed)
    # And in each phase alone, from its first order to its last one settled.
    for phase in result["phases"]:
        used = timeline.between(phase.pop("began"), phase.pop("settled"))
        phase["cpu_ms_per_order"] = _per_order_ms(used, phase["placed"])
    if meter_costs is not None:
        result["costs_per_order"] = await meter_costs.stop(placed)
    return result


async def shoppers(bench: Bench) -> dict[str, Any]:
    """6: simulated shoppers browsing, viewing, filling carts and checking out."""
    profile = bench.profile
    argv = [
        sys.executable, "-m", "bench.loadgen.shopper_load",
        "--gateway", bench.stack.gateway_url, "--seed-file", str(bench.seed_file),
        "--users", str(profile.shopper_users), "--seconds", str(profile.shopper_seconds),
        "--warmup", str(profile.shopper_warmup),
    ]  # fmt: skip
    meter = CpuMeter(bench.mesh_pids).start()
    timeout = profile.shopper_seconds + profile.shopper_warmup + 90
    run = (await run_child(argv, timeout=timeout)).check("shopper_load")
    result: dict[str, Any] = json.loads(run.stdout)
    result["server_cpu_cores"] = meter.stop()
    return result


def memory(stack: Stack, field: str = "VmRSS") -> dict[str, float]:
    """7: resident memory of each process of the mesh, in MB."""
    return {name: round(family_rss_mb(stack.pids[name], field), 1) for name in PROCESSES}


@dataclass(frozen=True)
class Definition:
    key: str
    title: str
    # A scenario with a run of its own (the saga, the shoppers), or closed-loop load measured
    # in slices against its baseline (`bench.paired`).
    run: Scenario | None = None
    slice: Slice | None = None
    baseline: str | None = None
    # A second baseline measured in the same rounds: what the same work costs with nothing of
    # the mesh's own, to tell the mesh's cost from its shape's.
    reference: str | None = None
    # The profile's warm-up that fills its caches and pools: "http", "grpc" or "reference".
    warmup: str = "http"

    def warmup_seconds(self, profile: Profile) -> float:
        return {
            "http": profile.http_warmup,
            "grpc": profile.grpc_warmup,
            "reference": profile.reference_warmup,
        }[self.warmup]


BASELINES = {
    "hello": Definition("hello", "baseline: FastAPI hello world (HTTP)", slice=hello_world),
    "echo": Definition("echo", "baseline: grpc.aio unary echo", slice=echo, warmup="grpc"),
    "floor1": Definition(
        "floor1",
        "reference: 1's floor (bare FastAPI, one grpc.aio hop to echo)",
        slice=product_floor,
        baseline="hello",
        warmup="reference",
    ),
    "floor3": Definition(
        "floor3",
        "reference: 3's floor (bare FastAPI, one grpc.aio hop, the same read)",
        slice=order_floor,
        baseline="hello",
        warmup="reference",
    ),
}
SCENARIOS = {
    "1": Definition(
        "1",
        "1 GET /v1/products/{id} (cache warm)",
        slice=product_by_id,
        baseline="hello",
        reference="floor1",
    ),
    "2": Definition(
        "2",
        "2 GET /v1/products?category_id&order_by=price",
        slice=product_listing,
        baseline="hello",
    ),
    "3": Definition(
        "3",
        "3 GET /v1/orders/{id} (bearer)",
        slice=order_by_id,
        baseline="hello",
        reference="floor3",
    ),
    "4": Definition(
        "4",
        "4 gRPC ProductService.GetProduct",
        slice=grpc_get_product,
        baseline="echo",
        warmup="grpc",
    ),
    "5": Definition("5", "5 saga POST /v1/orders to PAID", run=saga),
    "6": Definition("6", "6 mixed shoppers", run=shoppers),
}
MEMORY = "7"
