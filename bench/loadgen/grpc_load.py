"""Closed-loop unary gRPC load from several processes: the echo baseline or GetProduct.

`python -m bench.loadgen.grpc_load --target HOST:PORT --call get_product --ids-file F
--concurrency 64 --processes 2 --duration 10` keeps `concurrency` calls in flight (split over
the processes, each a grpc.aio client on uvloop with one channel, as the gateway has), and
prints one JSON object: calls/s, latency percentiles, errors by status code, and the CPU the
generator itself used (in cores), so a reader can see it was not the bottleneck.

Every process measures the same window: from `--start-at` (a time.monotonic() reading, the
same clock in every process of the machine) for `--duration` seconds; the calls before it
warm the channel up. Without it, the window opens `--warmup` seconds after the start. A
process whose channel was ready only after the window opened measures the rest of it, its
rate over that time, and the output says how late it was (`loadgen_late_s`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import wrappers_pb2

from bench.baselines.echo_server import ECHO_METHOD
from bench.baselines.serving import loop_factory
from bench.stats import quantiles_ms, summary_ms
from ecommerce.product.v1 import product_pb2

CALL_TIMEOUT_SECONDS = 5.0

GET_PRODUCT_METHOD = "/ecommerce.product.v1.ProductService/GetProduct"


@dataclass(frozen=True)
class Plan:
    target: str
    call: str
    ids: list[str]
    concurrency: int
    duration: float
    start_at: float  # time.monotonic() when the measured window opens


def _callable(channel: grpc.aio.Channel, call: str) -> tuple[Any, Callable[[str], Any]]:
    """The multicallable and how to build its request from a product id."""
    if call == "echo":
        method = channel.unary_unary(
            ECHO_METHOD,
            request_serializer=wrappers_pb2.StringValue.SerializeToString,
            response_deserializer=wrappers_pb2.StringValue.FromString,
        )
        return method, lambda value: wrappers_pb2.StringValue(value=value)
    if call == "get_product":
        method = channel.unary_unary(
            GET_PRODUCT_METHOD,
            request_serializer=product_pb2.GetProductRequest.SerializeToString,
            response_deserializer=product_pb2.Product.FromString,
        )
        return method, lambda value: product_pb2.GetProductRequest(id=value)
    raise ValueError(f"unknown call {call!r}")


async def _drive(plan: Plan, offset: int) -> dict[str, Any]:
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    async with grpc.aio.insecure_channel(plan.target) as channel:
        await asyncio.wait_for(channel.channel_ready(), 10)
        method, build = _callable(channel, plan.call)
        requests = [build(value) for value in plan.ids]
        until = plan.start_at + plan.duration
        ready = time.monotonic()
        measure_from = max(plan.start_at, ready)

        async def worker(index: int) -> None:
            position = index
            while (now := time.monotonic()) < until:
                request = requests[position % len(requests)]
                position += plan.concurrency
                try:
                    await method(request, timeout=CALL_TIMEOUT_SECONDS)
                except grpc.aio.AioRpcError as exc:
                    if now >= measure_from:
                        errors[exc.code().name] += 1
                    continue
                if now >= measure_from:
                    latencies.append(time.monotonic() - now)

        tasks = [asyncio.create_task(worker(offset + i)) for i in range(plan.concurrency)]
        await asyncio.sleep(max(0.0, measure_from - time.monotonic()))
        cpu_from = time.process_time()
        await asyncio.gather(*tasks)
        cpu = time.process_time() - cpu_from
    return {
        "latencies": latencies,
        "errors": dict(errors),
        "cpu_s": cpu,
        "window_s": until - measure_from,
        "late_s": max(0.0, ready - plan.start_at),
    }


def _worker(plan: Plan, offset: int, results: Any) -> None:
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        results.put(runner.run(_drive(plan, offset)))


def run(plan: Plan, processes: int) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")  # no gRPC state is shared across a fork
    results = context.Queue()
    shares = [
        plan.concurrency // processes + (i < plan.concurrency % processes) for i in range(processes)
    ]
    workers = [
        context.Process(
            target=_worker,
            args=(
                Plan(plan.target, plan.call, plan.ids, share, plan.duration, plan.start_at),
                sum(shares[:i]),
                results,
            ),
        )
        for i, share in enumerate(shares)
    ]
    for process in workers:
        process.start()
    parts = [results.get() for _ in workers]
    for process in workers:
        process.join()
    return combine(plan, parts)


def combine(plan: Plan, parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures of the whole load from what each client process measured."""
    processes = len(parts)
    latencies = [value for part in parts for value in part["latencies"]]
    errors: Counter[str] = Counter()
    for part in parts:
        errors.update(part["errors"])
    # Each process's rate over the part of the window it measured (all of it, unless late);
    # one ready only after the window closed measured nothing.
    measured = [part for part in parts if part["window_s"] > 0]
    rps = sum(len(part["latencies"]) / part["window_s"] for part in measured)
    return {
        "requests": len(latencies),
        "seconds": plan.duration,
        "rps": round(rps, 1),
        **summary_ms(latencies),
        "quantiles_ms": quantiles_ms(latencies),
        "errors": sum(errors.values()),
        "errors_by_code": dict(errors),
        "concurrency": plan.concurrency,
        "loadgen": f"grpc.aio client, {processes} processes",
        "loadgen_cpu_cores": round(sum(part["cpu_s"] / part["window_s"] for part in measured), 2),
        "loadgen_capacity_cores": processes,
        "loadgen_late_s": round(max(part["late_s"] for part in parts), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target", required=True, help="host:port")
    parser.add_argument("--call", choices=["echo", "get_product"], required=True)
    parser.add_argument("--ids-file", type=Path, help="product ids, one a line")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--start-at", type=float, help="time.monotonic() to measure from")
    args = parser.parse_args()
    ids = args.ids_file.read_text().split() if args.ids_file else ["hello"]
    start_at = args.start_at if args.start_at is not None else time.monotonic() + args.warmup
    plan = Plan(args.target, args.call, ids, args.concurrency, args.duration, start_at)
    json.dump(run(plan, args.processes), sys.stdout)


if __name__ == "__main__":
    main()
