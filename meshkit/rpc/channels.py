"""Client channels: one per upstream, created at start-up, with deadlines and safe retries."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeAlias

import grpc

from meshkit.context import (
    AUTHORIZATION_HEADER,
    CORRELATION_ID_HEADER,
    REQUEST_ID_HEADER,
    correlation_id_var,
    principal_var,
    remaining_time,
    request_id_var,
)
from meshkit.rpc.idempotency import repeatable_methods
from meshkit.telemetry import tracer

logger = logging.getLogger(__name__)

Metadata: TypeAlias = grpc.aio.Metadata | Sequence[tuple[str, str | bytes]]

# Where a call's bearer token comes from: the caller's own token by default; a service
# token for calls a service makes on its own behalf.
TokenSource = Callable[[], Awaitable[str | None]]

# Pass as a call's metadata to send no token at all, e.g. when asking for one.
NO_TOKEN: tuple[tuple[str, str], ...] = ((AUTHORIZATION_HEADER, ""),)

# Clients ping an idle connection this often, so a dead peer (or a middlebox that dropped the
# connection) is noticed before the next call rather than by it; servers accept such pings
# (`meshkit.rpc.server.SERVER_OPTIONS`).
KEEPALIVE_TIME_MS = 30_000

# How soon a channel may look a name up again after the last lookup.
DNS_MIN_SECONDS_BETWEEN_LOOKUPS = 1

# How long a channel waits before it tries a failed connection again: from the first wait,
# growing by gRPC's factor of 1.6 per failure, to the longest. gRPC's own are 1 s and 120 s:
# an upstream back after an outage of a few minutes then went unused for up to two more,
# every call failing UNAVAILABLE meanwhile, and a mesh started all at once waited seconds
# for services that were up. A try is one TCP connect to a peer in the same cluster.
RECONNECT_BACKOFF_FIRST_MS = 250
RECONNECT_BACKOFF_LONGEST_MS = 2_000

# A deadline this close to passing is not worth a network round trip.
_MIN_USEFUL_TIMEOUT = 0.001


def service_config(max_attempts: int = 4) -> str:
    """Calls spread over every address the target resolves to; retried on UNAVAILABLE, and
    those the protos declare safe to run twice on CANCELLED too.

    gRPC's default policy (pick_first) sends every call of a channel down one connection to
    one address, so the replicas behind a name (one DNS record each, from a headless
    Kubernetes Service or compose's `--scale`) would get the callers they happen to be
    picked by; round_robin keeps a connection to each and takes them in turn.

    UNAVAILABLE is what a call gets that found no server (refused, reset, or a GOAWAY before
    it started), and is retried for every method. A call still running when a stopping
    server's grace (SHUTDOWN_GRACE_SECONDS) runs out gets it too, after doing part of its
    work: the grace is no shorter than the deadline the mesh gives a call
    (RPC_TIMEOUT_SECONDS), so by then its caller has given up on it. CANCELLED from a server
    is what one that stops gracefully (a rolling update, a scale-down) answers the calls it
    had accepted but not yet started; since a server may also say it of a call it did start,
    it is retried only for the methods declared safe to run twice
    (`meshkit.rpc.idempotency`): reads, CreateOrder per its key, ReserveStock per its
    order. Retrying
    any other code could repeat a side effect or hammer a service that said no. The default
    deadline is set per call by `MeshChannel`, not here: grpc 1.85 fails a call at once when
    a service-config timeout is shorter than the call's own deadline.
    """

    def retried_on(*codes: str) -> dict[str, object]:
        return {
            "maxAttempts": max_attempts,
            "initialBackoff": "0.05s",
            "maxBackoff": "1s",
            "backoffMultiplier": 2,
            "retryableStatusCodes": list(codes),
        }

    repeatable = [
        {"service": service, "method": method} for service, method in repeatable_methods()
    ]
    return json.dumps(
        {
            "loadBalancingConfig": [{"round_robin": {}}],
            "methodConfig": [
                # gRPC takes the most specific name that matches a call; a name given twice
                # would make every call of the channel fail.
                {"name": [{}], "retryPolicy": retried_on("UNAVAILABLE")},
                {"name": repeatable, "retryPolicy": retried_on("UNAVAILABLE", "CANCELLED")},
            ],
        }
    )


class _OutgoingContext:
    """What every call on a mesh channel carries: request and correlation ids, the token,
    and a deadline no later than what remains of the inbound call's."""

    def __init__(self, default_timeout: float, token_source: TokenSource | None) -> None:
        self.default_timeout = default_timeout
        self.token_source = token_source

    async def apply(
        self, timeout: float | None, given: Metadata | None
    ) -> tuple[float, tuple[tuple[str, str | bytes], ...]]:
        timeout = timeout or self.default_timeout
        remaining = remaining_time()
        if remaining is not None:
            if remaining <= _MIN_USEFUL_TIMEOUT:
                raise grpc.aio.AioRpcError(
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    grpc.aio.Metadata(),
                    grpc.aio.Metadata(),
                    details="the inbound call's deadline passed before this call was made",
                    debug_error_string="",
                )
            timeout = min(timeout, remaining)
        # Plain pairs: grpc.aio takes them as they are, where a Metadata object costs a
        # conversion on every call.
        pairs: list[tuple[str, str | bytes]] = list(given) if given else []
        present = {key for key, _ in pairs}
        if REQUEST_ID_HEADER not in present and (request_id := request_id_var.get()):
            pairs.append((REQUEST_ID_HEADER, request_id))
        if CORRELATION_ID_HEADER not in present and (correlation_id := correlation_id_var.get()):
            pairs.append((CORRELATION_ID_HEADER, correlation_id))
        if AUTHORIZATION_HEADER in present:
            if not next(value for key, value in pairs if key == AUTHORIZATION_HEADER):
                # NO_TOKEN: the caller asked for an anonymous call.
                pairs = [(key, value) for key, value in pairs if key != AUTHORIZATION_HEADER]
        else:
            token = await self._token()
            if token:
                pairs.append((AUTHORIZATION_HEADER, f"Bearer {token}"))
        return timeout, tuple(pairs)

    async def _token(self) -> str | None:
        if self.token_source is not None:
            return await self.token_source()
        principal = principal_var.get()
        return principal.token if principal else None


class _ContextUnaryUnary:
    """A unary method of a mesh channel: the call, with the outgoing context applied."""

    __slots__ = ("_context", "_inner")

    def __init__(self, inner: Any, context: _OutgoingContext) -> None:
        self._inner = inner
        self._context = context

    def __call__(
        self,
        request: Any,
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
        credentials: grpc.CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | None = None,
    ) -> Awaitable[Any]:
        return self._call(request, timeout, metadata, credentials, wait_for_ready, compression)

    async def _call(
        self,
        request: Any,
        timeout: float | None,
        metadata: Metadata | None,
        credentials: grpc.CallCredentials | None,
        wait_for_ready: bool | None,
        compression: grpc.Compression | None,
    ) -> Any:
        timeout, outgoing = await self._context.apply(timeout, metadata)
        return await self._inner(
            request,
            timeout=timeout,
            metadata=outgoing,
            credentials=credentials,
            wait_for_ready=wait_for_ready,
            compression=compression,
        )


class _TracedUnaryUnary(_ContextUnaryUnary):
    """A unary method whose calls are client spans, their context sent on (tracing on)."""

    __slots__ = ("_method",)

    def __init__(self, inner: Any, context: _OutgoingContext, method: str) -> None:
        super().__init__(inner, context)
        self._method = method

    async def _call(
        self,
        request: Any,
        timeout: float | None,
        metadata: Metadata | None,
        credentials: grpc.CallCredentials | None,
        wait_for_ready: bool | None,
        compression: grpc.Compression | None,
    ) -> Any:
        from meshkit.rpc.tracing import traced_call

        timeout, outgoing = await self._context.apply(timeout, metadata)

        def call(with_trace: tuple[tuple[str, str | bytes], ...]) -> Any:
            return self._inner(
                request,
                timeout=timeout,
                metadata=with_trace,
                credentials=credentials,
                wait_for_ready=wait_for_ready,
                compression=compression,
            )

        return await traced_call(self._method, call, outgoing)


class MeshChannel(grpc.aio.Channel):
    """A grpc.aio channel whose unary calls carry the mesh's context (`_OutgoingContext`).

    A wrapper rather than a client interceptor: grpc.aio runs every intercepted call in a
    task of its own, and that machinery was a visible share of the gateway's profile on a
    product read.
    Streaming methods pass through as they are (the mesh's own RPCs are all unary).
    """

    def __init__(self, inner: grpc.aio.Channel, context: _OutgoingContext) -> None:
        self._inner = inner
        self._context = context

    def unary_unary(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> Any:
        # The stubs generated by grpcio-tools pass `_registered_method`; grpc's type stubs
        # do not know it.
        unary_unary: Any = self._inner.unary_unary
        inner = unary_unary(method, request_serializer, response_deserializer, _registered_method)
        # Health is asked every few seconds: a trace each would bury the ones people read.
        if tracer() is not None and not method.startswith("/grpc.health.v1.Health/"):
            return _TracedUnaryUnary(inner, self._context, method)
        return _ContextUnaryUnary(inner, self._context)

    def unary_stream(self, *args: Any, **kwargs: Any) -> Any:
        return self._inner.unary_stream(*args, **kwargs)

    def stream_unary(self, *args: Any, **kwargs: Any) -> Any:
        return self._inner.stream_unary(*args, **kwargs)

    def stream_stream(self, *args: Any, **kwargs: Any) -> Any:
        return self._inner.stream_stream(*args, **kwargs)

    async def __aenter__(self) -> MeshChannel:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close(None)

    async def close(self, grace: float | None = None) -> None:
        await self._inner.close(grace)

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        return self._inner.get_state(try_to_connect)

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        await self._inner.wait_for_state_change(last_observed_state)

    async def channel_ready(self) -> None:
        await self._inner.channel_ready()


def create_channel(
    target: str,
    *,
    timeout_seconds: float = 5.0,
    token_source: TokenSource | None = None,
    max_attempts: int = 4,
) -> grpc.aio.Channel:
    """An insecure channel to a service in the mesh (TLS belongs to the deployment's proxy).

    `target` is any name gRPC resolves: `host:port` and `dns:///host:port` alike are looked
    up in DNS, and looked up again when a connection closes (servers close theirs after
    GRPC_MAX_CONNECTION_AGE_SECONDS), so replicas added later get calls too.
    """
    inner = grpc.aio.insecure_channel(
        target,
        options=[
            ("grpc.service_config", service_config(max_attempts)),
            # The balancing and retry policy are the mesh's own, whatever a DNS TXT record says.
            ("grpc.service_config_disable_resolution", 1),
            ("grpc.enable_retries", 1),
            ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
            ("grpc.keepalive_permit_without_calls", 1),
            # A replica that came back at another address (a container recreated, a pod
            # rescheduled) is looked up again within a second of its connection failing; gRPC
            # waits 30 s between lookups by default, failing calls with UNAVAILABLE meanwhile.
            ("grpc.dns_min_time_between_resolutions_ms", DNS_MIN_SECONDS_BETWEEN_LOOKUPS * 1000),
            ("grpc.initial_reconnect_backoff_ms", RECONNECT_BACKOFF_FIRST_MS),
            ("grpc.max_reconnect_backoff_ms", RECONNECT_BACKOFF_LONGEST_MS),
        ],
    )
    return MeshChannel(inner, _OutgoingContext(timeout_seconds, token_source))


class Channels:
    """The upstream channels of one process, keyed by upstream name, closed together."""

    def __init__(self) -> None:
        self._channels: dict[str, grpc.aio.Channel] = {}

    def add(self, name: str, channel: grpc.aio.Channel) -> grpc.aio.Channel:
        if name in self._channels:
            raise ValueError(f"a channel named {name!r} exists already")
        self._channels[name] = channel
        return channel

    def __getitem__(self, name: str) -> grpc.aio.Channel:
        return self._channels[name]

    def items(self) -> list[tuple[str, grpc.aio.Channel]]:
        return list(self._channels.items())

    async def close(self, grace: float | None = 1.0) -> None:
        channels, self._channels = self._channels, {}
        for channel in channels.values():
            await channel.close(grace)

    async def __aenter__(self) -> Channels:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
