"""A mesh channel whose upstream is away tries again within two seconds however long it has
been failing, so an upstream back after an outage is called again at once."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time

from grpc_health.v1 import health_pb2, health_pb2_grpc

from meshkit.rpc import create_channel
from meshkit.rpc.channels import RECONNECT_BACKOFF_LONGEST_MS

WATCHED_SECONDS = 4.0


async def test_a_failing_upstream_is_tried_again_within_the_longest_backoff() -> None:
    began = time.monotonic()
    attempts: list[float] = []

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Accepted and closed before HTTP/2 starts: each connection is one failed attempt.
        attempts.append(time.monotonic() - began)
        writer.close()

    listener = await asyncio.start_server(refuse, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    async with listener, create_channel(f"127.0.0.1:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() - began < WATCHED_SECONDS:
            # Every call fails: the upstream is away.
            with contextlib.suppress(Exception):
                await health.Check(health_pb2.HealthCheckRequest(), timeout=0.1)
            await asyncio.sleep(0.05)

    # gRPC's own backoff (1 s, growing to 120 s) tries at about 0, 1 and 2.6 s in this window.
    assert len(attempts) >= 5, attempts
    gaps = [later - earlier for earlier, later in itertools.pairwise(attempts)]
    # Its jitter is a fifth either way.
    assert max(gaps) <= RECONNECT_BACKOFF_LONGEST_MS / 1000 * 1.2 + 0.1, attempts
