"""gRPC server bootstrap: health per service, reflection, interceptors, graceful shutdown."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from meshkit.rpc.channels import KEEPALIVE_TIME_MS
from meshkit.rpc.interceptors import (
    AccessLogInterceptor,
    AuthInterceptor,
    ErrorMappingInterceptor,
    InterceptorChain,
    RequestContextInterceptor,
    TokenVerifier,
    UnaryInterceptor,
)
from meshkit.rpc.reflection import enable_server_reflection
from meshkit.telemetry import tracer

logger = logging.getLogger(__name__)

# Readiness: the whole process, and each service it serves by its full name, is SERVING only
# while it reaches its dependencies (`meshkit.readiness`). Balancers and the gateway ask "".
OVERALL_HEALTH = ""
# Liveness: SERVING from start until shutdown whatever the dependencies do, so an orchestrator
# restarts a process that is stuck, not one whose database is away (a restart would not bring
# it back).
LIVENESS = "liveness"


@dataclass(frozen=True)
class ServiceRegistration:
    """One gRPC service a process serves: its full name, servicer and generated adder."""

    name: str
    servicer: Any
    add_to_server: Callable[[Any, grpc.aio.Server], None]


@dataclass
class GrpcServer:
    """A started server, with the health servicer that reports on it."""

    server: grpc.aio.Server
    health: HealthServicer
    port: int
    service_names: Sequence[str] = field(default_factory=tuple)

    async def set_ready(self, ready: bool) -> None:
        """Readiness (the process and each of its services), leaving liveness as it is.

        Once shutdown has begun this changes nothing: grpc_health's servicer ignores `set`
        after `enter_graceful_shutdown`, so a late check cannot say SERVING again.
        """
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if ready
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in (OVERALL_HEALTH, *self.service_names):
            await self.health.set(name, status)

    async def stop(self, grace: float) -> None:
        """Say NOT_SERVING first (liveness too) so balancers stop routing here, then drain
        in-flight calls."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)

    async def wait(self) -> None:
        await self.server.wait_for_termination()


# Options of every gRPC server of the mesh, whatever its settings.
_FIXED_SERVER_OPTIONS: tuple[tuple[str, int], ...] = (
    # grpc shares a port between servers by default; a taken port must fail loudly instead.
    ("grpc.so_reuseport", 0),
    # The mesh's clients ping idle connections every KEEPALIVE_TIME_MS. gRPC's servers allow
    # a ping without calls only every 5 minutes by default, and answer more with a GOAWAY
    # (too_many_pings) that drops the connection and logs an error on both sides.
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", KEEPALIVE_TIME_MS // 2),
)

# How long a client's connection lives by default (GRPC_MAX_CONNECTION_AGE_SECONDS).
DEFAULT_MAX_CONNECTION_AGE_SECONDS = 30.0
# Calls still running on a connection past its age get this long to finish before it is
# closed under them. Longer than any deadline the mesh gives a call (RPC_TIMEOUT_SECONDS, 5 s
# by default), so only a call stuck past its own deadline is cut; a connection with no call
# left closes at once, whatever this says.
MAX_CONNECTION_AGE_GRACE_MS = 30_000


def server_options(
    max_connection_age_seconds: float = DEFAULT_MAX_CONNECTION_AGE_SECONDS,
) -> tuple[tuple[str, int], ...]:
    """Options of every gRPC server of the mesh; an age of 0 lets connections live for ever."""
    options = _FIXED_SERVER_OPTIONS
    if max_connection_age_seconds > 0:
        # HTTP/2 keeps a client on the replica it first reached: one connection carries all
        # its calls. Past this age (gRPC adds ±10% so clients do not all reconnect together)
        # the server sends GOAWAY; the client reconnects, resolves the name again, and so
        # finds replicas started since, which round_robin (`meshkit.rpc.channels`) then uses.
        options += (
            ("grpc.max_connection_age_ms", round(max_connection_age_seconds * 1000)),
            ("grpc.max_connection_age_grace_ms", MAX_CONNECTION_AGE_GRACE_MS),
        )
    return options


# With the default connection age: `start_grpc_server` is given the service's own.
SERVER_OPTIONS = server_options()


def default_interceptors(
    verifier: TokenVerifier | None, public_methods: Collection[str]
) -> list[grpc.aio.ServerInterceptor[Any, Any]]:
    # Outermost first: context before logging, logging sees the mapped status, and auth
    # failures are domain errors that the mapper turns into UNAUTHENTICATED.
    layers: list[UnaryInterceptor] = [
        RequestContextInterceptor(),
        AccessLogInterceptor(),
        ErrorMappingInterceptor(),
        AuthInterceptor(verifier, public_methods),
    ]
    if tracer() is not None:
        from meshkit.rpc.tracing import TracingInterceptor

        # Outermost: the span holds the whole call, and its context is current for the rest.
        layers.insert(0, TracingInterceptor())
    return [InterceptorChain(layers)]


async def start_grpc_server(
    services: Sequence[ServiceRegistration],
    *,
    host: str = "0.0.0.0",
    port: int = 0,
    verifier: TokenVerifier | None = None,
    public_methods: Collection[str] = (),
    interceptors: Sequence[grpc.aio.ServerInterceptor[Any, Any]] | None = None,
    ready: bool = True,
    max_connection_age_seconds: float = DEFAULT_MAX_CONNECTION_AGE_SECONDS,
) -> GrpcServer:
    """Start serving `services` plus health and reflection; port 0 picks a free port.

    Readiness starts as `ready` says; liveness starts SERVING.
    """
    server = grpc.aio.server(
        interceptors=list(interceptors)
        if interceptors is not None
        else default_interceptors(verifier, public_methods),
        options=list(server_options(max_connection_age_seconds)),
    )
    for service in services:
        service.add_to_server(service.servicer, server)

    health_servicer = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [service.name for service in services]
    enable_server_reflection(
        [*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name], server
    )

    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot listen on {host}:{port}: the port is taken or not allowed")
    # Health is set before the port serves its first call, so no caller sees a status the
    # service did not choose.
    started = GrpcServer(server=server, health=health_servicer, port=bound, service_names=names)
    await health_servicer.set(LIVENESS, health_pb2.HealthCheckResponse.SERVING)
    await started.set_ready(ready)
    await server.start()
    logger.info("grpc server listening", extra={"address": f"{host}:{bound}", "services": names})
    return started
