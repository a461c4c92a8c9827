"""Client channels: one per upstream, created at start-up, with deadlines and safe retries."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeAlias

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

logger = logging.getLogger(__name__)

if TYPE_CHECKING:  # generic only in grpc's type stubs
    _UnaryUnaryClientInterceptor: TypeAlias = grpc.aio.UnaryUnaryClientInterceptor[Any, Any]
else:
    _UnaryUnaryClientInterceptor = grpc.aio.UnaryUnaryClientInterceptor

# Where a call's bearer token comes from: the caller's own token by default; a service
# token for calls a service makes on its own behalf.
TokenSource = Callable[[], Awaitable[str | None]]

# Pass as a call's metadata to send no token at all, e.g. when asking for one.
NO_TOKEN: tuple[tuple[str, str], ...] = ((AUTHORIZATION_HEADER, ""),)

# A deadline this close to passing is not worth a network round trip.
_MIN_USEFUL_TIMEOUT = 0.001


def service_config(max_attempts: int = 4) -> str:
    """Retries on UNAVAILABLE only: the one code that says the call did not run.

    Retrying anything else could repeat a side effect or hammer a service that said no.
    The default deadline is set per call by the interceptor, not here: grpc 1.85 fails a
    call at once when a service-config timeout is shorter than the call's own deadline.
    """
    return json.dumps(
        {
            "methodConfig": [
                {
                    "name": [{}],
                    "retryPolicy": {
                        "maxAttempts": max_attempts,
                        "initialBackoff": "0.05s",
                        "maxBackoff": "1s",
                        "backoffMultiplier": 2,
                        "retryableStatusCodes": ["UNAVAILABLE"],
                    },
                }
            ]
        }
    )


class _ForwardContext(_UnaryUnaryClientInterceptor):
    """Passes on the request id, correlation id, token, and what remains of the deadline."""

    def __init__(self, default_timeout: float, token_source: TokenSource | None) -> None:
        self.default_timeout = default_timeout
        self.token_source = token_source

    async def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Any],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        timeout = client_call_details.timeout or self.default_timeout
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
        metadata = grpc.aio.Metadata(*(client_call_details.metadata or ()))
        present = {key for key, _ in metadata}
        if REQUEST_ID_HEADER not in present and (request_id := request_id_var.get()):
            metadata.add(REQUEST_ID_HEADER, request_id)
        if CORRELATION_ID_HEADER not in present and (correlation_id := correlation_id_var.get()):
            metadata.add(CORRELATION_ID_HEADER, correlation_id)
        if AUTHORIZATION_HEADER in present:
            if not metadata.get(AUTHORIZATION_HEADER):
                # NO_TOKEN: the caller asked for an anonymous call.
                metadata.delete_all(AUTHORIZATION_HEADER)
        else:
            token = await self._token()
            if token:
                metadata.add(AUTHORIZATION_HEADER, f"Bearer {token}")
        details = grpc.aio.ClientCallDetails(
            method=client_call_details.method,
            timeout=timeout,
            metadata=metadata,
            credentials=client_call_details.credentials,
            wait_for_ready=client_call_details.wait_for_ready,
        )
        return await continuation(details, request)

    async def _token(self) -> str | None:
        if self.token_source is not None:
            return await self.token_source()
        principal = principal_var.get()
        return principal.token if principal else None


def create_channel(
    target: str,
    *,
    timeout_seconds: float = 5.0,
    token_source: TokenSource | None = None,
    max_attempts: int = 4,
) -> grpc.aio.Channel:
    """An insecure channel to a service in the mesh (TLS belongs to the deployment's proxy)."""
    return grpc.aio.insecure_channel(
        target,
        options=[
            ("grpc.service_config", service_config(max_attempts)),
            ("grpc.enable_retries", 1),
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_permit_without_calls", 1),
        ],
        interceptors=[_ForwardContext(timeout_seconds, token_source)],  # type: ignore[list-item]
    )


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
