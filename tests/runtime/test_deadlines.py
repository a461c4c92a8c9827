"""Deadline propagation: a service passes on what remains of its own deadline."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from meshkit.context import deadline_var
from meshkit.rpc import GrpcServer, create_channel, start_grpc_server
from tests.runtime.probe import PUBLIC_METHODS, SERVICE, Probe, registration

PUBLIC = PUBLIC_METHODS | {f"/{SERVICE}/Forward"}


@pytest.fixture
async def chain() -> AsyncIterator[str]:
    """front --Forward--> back: returns the front's address."""
    servers: list[GrpcServer] = []
    back = await start_grpc_server(
        [registration(Probe())], host="127.0.0.1", port=0, public_methods=PUBLIC
    )
    servers.append(back)
    front = await start_grpc_server(
        [registration(Probe(downstream=f"127.0.0.1:{back.port}"))],
        host="127.0.0.1",
        port=0,
        public_methods=PUBLIC,
    )
    servers.append(front)
    yield f"127.0.0.1:{front.port}"
    for server in servers:
        await server.stop(0)


async def test_downstream_inherits_remaining_deadline(chain: str) -> None:
    async with grpc.aio.insecure_channel(chain) as channel:
        remaining = float(
            await channel.unary_unary(f"/{SERVICE}/Forward", None, None)(b"", timeout=0.8)
        )
    # The downstream's own default would be 5 s; it got at most what the caller had left.
    assert 0 < remaining < 0.85  # the margin absorbs the clocks of two call sites


async def test_time_spent_upstream_is_subtracted(chain: str) -> None:
    async with grpc.aio.insecure_channel(chain) as channel:
        remaining = float(
            await channel.unary_unary(f"/{SERVICE}/Forward", None, None)(b"0.3", timeout=1.0)
        )
    # 0.3 s of the 1 s went on upstream work; the margin absorbs the network hop.
    assert remaining < 0.75


async def test_without_inbound_deadline_the_default_applies(chain: str) -> None:
    async with grpc.aio.insecure_channel(chain) as channel:
        remaining = float(await channel.unary_unary(f"/{SERVICE}/Forward", None, None)(b""))
    # The default of 5 s, measured on the far side of a network hop.
    assert 4.0 < remaining < 5.1


async def test_expired_deadline_fails_before_calling(chain: str) -> None:
    token = deadline_var.set(0.0)  # a monotonic time long past
    try:
        channel = create_channel(chain)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await channel.unary_unary(f"/{SERVICE}/Echo", None, None)(b"x")
        await channel.close(None)
    finally:
        deadline_var.reset(token)
    assert raised.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
