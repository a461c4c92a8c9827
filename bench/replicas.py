"""Scenario 10: the saga's steps with two replicas of the order, payment and notification
services, to see whether scaling out moves the highest rate sustained and the CPU per order.

The second replicas run beside the first on ports of their own; they compete for the same
queues, and the gateway spreads its calls to the order service over both (a gRPC `ipv4:`
target of the two addresses, taken in turn by the channels' round_robin).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import replace
from typing import Any

from bench.coldstart import grpc_serving
from bench.scenarios import Bench, Definition, saga
from bench.stack import stop_process
from localmesh.launcher import free_port

REPLICATED = ("order_service", "payment_service", "notification_service")
READY_TIMEOUT_SECONDS = 60.0


async def _serving(target: str, process: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while not await grpc_serving(target):
        if process.returncode is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the replica at {target} did not serve")
        await asyncio.sleep(0.1)


async def replicated_saga(bench: Bench) -> dict[str, Any]:
    """10: the saga's steps (the fixed rate as long as one step) with the replicas."""
    stack = bench.stack
    ports = {name: free_port() for name in REPLICATED}
    first = stack.mesh.ports.grpc["order_service"]
    both = f"ipv4:127.0.0.1:{first},127.0.0.1:{ports['order_service']}"
    replicas: dict[str, asyncio.subprocess.Process] = {}
    await stack.restart_mesh({"ORDER_SERVICE_ADDR": both})
    try:
        for name, port in ports.items():
            replicas[name] = await stack.mesh.spawn_replica(name, port)
        for name, port in ports.items():
            await _serving(f"127.0.0.1:{port}", replicas[name])
        profile = replace(bench.profile, saga_seconds=bench.profile.saga_step_seconds)
        extra = {f"{name} (2)": process.pid for name, process in replicas.items()}
        result = await saga(replace(bench, profile=profile, extra_pids=extra), costs=False)
    except BaseException:
        # The mesh put back as well as it can be; the failure that ended the run is the one
        # to report, not one of putting it back.
        await stop_process(*replicas.values())
        with contextlib.suppress(Exception):
            await stack.restart_mesh({})
        raise
    await stop_process(*replicas.values())
    # The mesh as it was: one of each, the gateway calling the one order service.
    await stack.restart_mesh({})
    result["replicas"] = {name: 2 for name in REPLICATED}
    return result


REPLICAS = Definition(
    "10", "10 saga with 2 replicas of order, payment and notification", run=replicated_saga
)
