"""Replicas share the calls: mesh channels take every resolved address in turn, and servers
close connections past their age so that clients find replicas started since."""

from __future__ import annotations

import socket
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any, ClassVar

import grpc
import pytest

from gateway.settings import GatewaySettings
from meshkit.rpc import create_channel
from meshkit.rpc.server import GrpcServer, ServiceRegistration, server_options, start_grpc_server
from meshkit.service import ServiceApp, ServiceDefinition, running_service
from meshkit.settings import ServiceSettings, load_settings

SERVICE = "test.v1.Replica"
WHERE = f"/{SERVICE}/Where"


class Replica:
    """Answers with its own name, and counts the calls of each client connection (by peer)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls_by_peer: Counter[str] = Counter()

    @property
    def calls(self) -> int:
        return self.calls_by_peer.total()

    async def where(self, request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        self.calls_by_peer[context.peer()] += 1
        return self.name.encode()

    def registration(self) -> ServiceRegistration:
        def add(replica: Replica, server: grpc.aio.Server) -> None:
            handler = grpc.unary_unary_rpc_method_handler(replica.where)
            server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(SERVICE, {"Where": handler}),)
            )

        return ServiceRegistration(SERVICE, self, add)


async def start_replica(replica: Replica, host: str = "127.0.0.1", port: int = 0) -> GrpcServer:
    return await start_grpc_server(
        [replica.registration()], host=host, port=port, public_methods={WHERE}
    )


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as servers:
        yield servers


async def serve(stack: AsyncExitStack, replica: Replica, host: str, port: int = 0) -> int:
    server = await start_replica(replica, host, port)
    stack.push_async_callback(server.stop, 0)
    return server.port


async def call_many(target: str, calls: int) -> None:
    async with create_channel(target) as channel:
        where = channel.unary_unary(WHERE, None, None)
        for _ in range(calls):
            await where(b"")


async def test_a_mesh_channel_spreads_its_calls_over_every_address(stack: AsyncExitStack) -> None:
    first, second = Replica("first"), Replica("second")
    ports = [await serve(stack, first, "127.0.0.1"), await serve(stack, second, "127.0.0.1")]
    # A name that stands for two addresses, as a headless Service's name does for two pods.
    await call_many(f"ipv4:{','.join(f'127.0.0.1:{port}' for port in ports)}", 40)
    # pick_first, gRPC's default, would send all 40 down one connection.
    assert first.calls + second.calls == 40
    assert min(first.calls, second.calls) >= 10, (first.calls, second.calls)


def _can_listen_on_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


async def _answers_through_localhost(stack: AsyncExitStack, host: str) -> bool:
    """Whether `dns:///localhost` reaches a server listening on `host` alone."""
    port = await serve(stack, Replica(host), host)
    async with create_channel(f"dns:///localhost:{port}", timeout_seconds=1) as channel:
        try:
            await channel.unary_unary(WHERE, None, None)(b"")
        except grpc.aio.AioRpcError:
            return False
    return True


@pytest.mark.skipif(not _can_listen_on_ipv6_loopback(), reason="no IPv6 loopback here")
async def test_a_mesh_channel_spreads_its_calls_over_every_address_dns_gives(
    stack: AsyncExitStack,
) -> None:
    # gRPC's resolver gives `localhost` as both 127.0.0.1 and ::1: two servers on one port,
    # one on each, are two replicas behind one DNS name.
    for host in ("127.0.0.1", "[::1]"):
        if not await _answers_through_localhost(stack, host):
            pytest.skip(f"localhost does not resolve to {host} here")
    ipv4, ipv6 = Replica("ipv4"), Replica("ipv6")
    port = await serve(stack, ipv4, "127.0.0.1")
    await serve(stack, ipv6, "[::1]", port)
    await call_many(f"dns:///localhost:{port}", 40)
    assert ipv4.calls + ipv6.calls == 40
    assert min(ipv4.calls, ipv6.calls) >= 10, (ipv4.calls, ipv6.calls)


class ReplicaSettings(ServiceSettings):
    service_name: ClassVar[str] = "replica_service"


async def test_a_connection_past_its_age_is_replaced_without_failing_a_call() -> None:
    replica = Replica("only")

    async def build(settings: ReplicaSettings, stack: AsyncExitStack) -> ServiceApp:
        return ServiceApp(services=[replica.registration()], public_methods={WHERE})

    settings = load_settings(
        ReplicaSettings,
        env_file=None,
        grpc_host="127.0.0.1",
        grpc_port=0,
        migrate_on_start=False,
        grpc_max_connection_age_seconds=0.5,
    )
    definition = ServiceDefinition(settings_cls=ReplicaSettings, build=build)
    async with (
        running_service(definition, settings) as server,
        create_channel(f"127.0.0.1:{server.port}") as channel,
    ):
        where = channel.unary_unary(WHERE, None, None)
        # Calls one after another until the server has seen the client on three connections
        # (two replaced); every one must succeed.
        deadline = time.monotonic() + 8
        while len(replica.calls_by_peer) < 3:
            assert time.monotonic() < deadline, f"connections seen: {dict(replica.calls_by_peer)}"
            assert await where(b"") == b"only"
    assert all(calls > 1 for calls in list(replica.calls_by_peer.values())[:2])


def test_an_age_of_zero_keeps_connections() -> None:
    assert "grpc.max_connection_age_ms" not in dict(server_options(0))
    aged = dict(server_options(30))
    assert aged["grpc.max_connection_age_ms"] == 30_000
    assert aged["grpc.max_connection_age_grace_ms"] > 5_000  # more than a call's deadline


def test_upstream_addresses_may_be_dns_targets() -> None:
    target = "dns:///order-service.shop.svc.cluster.local:50053"
    assert load_settings(ServiceSettings, env_file=None, order_service_addr=target)
    assert load_settings(GatewaySettings, env_file=None, order_service_addr=target)
