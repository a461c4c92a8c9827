"""Cold start: how long each process takes from its start to serving, with the mesh idle.

This is what a Kubernetes scale-up waits for: a new replica counts once its readiness passes.
Each process is started alone, as a second replica beside the running mesh (on ports of its
own, the same databases and broker), and stopped again once it serves.
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.scenarios import Bench, Definition
from bench.stack import PROCESSES, stop_process
from localmesh.launcher import free_port

# Longer than any start seen by far: past it the process is reported as not serving.
DEADLINE_SECONDS = 60.0
POLL_SECONDS = 0.02


async def grpc_serving(target: str) -> bool:
    async with grpc.aio.insecure_channel(target) as channel:
        try:
            answer = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=1
            )
        except grpc.aio.AioRpcError:
            return False
    return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)


async def http_ready(url: str) -> bool:
    """Whether `url` answers 200 within a second."""
    async with httpx.AsyncClient(timeout=1) as client:
        try:
            return (await client.get(url)).status_code == 200
        except httpx.HTTPError:
            return False


async def _seconds_to_serve(bench: Bench, name: str) -> float | None:
    port = free_port()
    if name == "gateway":
        ready = functools.partial(http_ready, f"http://127.0.0.1:{port}/readyz")
    else:
        ready = functools.partial(grpc_serving, f"127.0.0.1:{port}")
    started = time.monotonic()
    process = await bench.stack.mesh.spawn_replica(name, port)
    try:
        while time.monotonic() - started < DEADLINE_SECONDS:
            if process.returncode is not None:
                return None
            if await ready():
                return round(time.monotonic() - started, 2)
            await asyncio.sleep(POLL_SECONDS)
        return None
    finally:
        await stop_process(process)


async def cold_start(bench: Bench) -> dict[str, Any]:
    """9: seconds from process start to SERVING (the gateway: /readyz 200), each alone."""
    return {"seconds": {name: await _seconds_to_serve(bench, name) for name in PROCESSES}}


COLD_START = Definition("9", "9 cold start: process start to serving, idle", run=cold_start)
