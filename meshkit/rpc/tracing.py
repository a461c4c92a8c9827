"""Spans for gRPC calls, both ends, with the trace context in the calls' metadata.

Added only while tracing is on (`meshkit.telemetry`): the server's interceptor chain and the
mesh's channels are built without them otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc

from meshkit.rpc.interceptors import Behavior, UnaryInterceptor, failure_code
from meshkit.telemetry import TRACEPARENT, TRACESTATE, enter, inject, leave

if TYPE_CHECKING:
    from opentelemetry.trace import Span

# Probed every few seconds by every orchestrator: a span each would bury the traces.
_HEALTH = "/grpc.health.v1.Health/"
# The codes that say the server failed, not the caller (OpenTelemetry's gRPC conventions).
_SERVER_FAULTS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)


def _attributes(method: str) -> dict[str, str]:
    service, _, name = method.lstrip("/").rpartition("/")
    return {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}


def _end(span: Span, code: grpc.StatusCode, server: bool) -> None:
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("rpc.grpc.status_code", code.value[0])
    # A server's span is an error only for a fault of its own; a client's for any failure.
    if code is not grpc.StatusCode.OK and (not server or code in _SERVER_FAULTS):
        span.set_status(Status(StatusCode.ERROR, code.name))


class TracingInterceptor(UnaryInterceptor):
    """A server span per call, continuing the caller's trace from the call's metadata."""

    def __init__(self) -> None:
        from opentelemetry.trace import SpanKind

        self._kind = SpanKind.SERVER

    async def around(
        self,
        method: str,
        request: Any,
        context: grpc.aio.ServicerContext[Any, Any],
        call_next: Behavior,
    ) -> Any:
        if method.startswith(_HEALTH):
            return await call_next(request, context)
        carrier = {
            key: value
            for key, value in context.invocation_metadata() or ()
            if key in (TRACEPARENT, TRACESTATE) and isinstance(value, str)
        }
        entered = enter(method.lstrip("/"), None, self._kind, _attributes(method), carrier=carrier)
        if entered.span is None:  # not sampled: its context is current, for the calls it makes
            try:
                return await call_next(request, context)
            finally:
                leave(entered)
        try:
            response = await call_next(request, context)
        except BaseException as error:
            _end(entered.span, context.code() or failure_code(error, context), server=True)
            raise
        else:
            _end(entered.span, context.code() or grpc.StatusCode.OK, server=True)
            return response
        finally:
            leave(entered)


async def traced_call(method: str, call: Any, metadata: tuple[tuple[str, str | bytes], ...]) -> Any:
    """`call(metadata)` inside a client span, with the span's context added to `metadata`;
    of an unsampled trace, with only its context added."""
    from opentelemetry.trace import SpanKind

    entered = enter(method.lstrip("/"), None, SpanKind.CLIENT, _attributes(method))
    try:
        carrier: dict[str, str] = {}
        inject(carrier)
        if entered.span is None:
            return await call((*metadata, *carrier.items()))
        try:
            response = await call((*metadata, *carrier.items()))
        except grpc.aio.AioRpcError as error:
            _end(entered.span, error.code(), server=False)
            raise
        _end(entered.span, grpc.StatusCode.OK, server=False)
        return response
    finally:
        leave(entered)
