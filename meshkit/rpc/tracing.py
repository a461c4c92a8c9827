"""Spans for gRPC calls, both ends, with the trace context in the calls' metadata.

Added only while tracing is on (`meshkit.telemetry`): the server's interceptor chain and the
mesh's channels are built without them otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc

from meshkit.rpc.interceptors import Behavior, UnaryInterceptor, failure_code
from meshkit.telemetry import TRACEPARENT, TRACESTATE, extract, inject

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

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

    def __init__(self, tracer: Tracer) -> None:
        from opentelemetry.trace import SpanKind

        self.tracer = tracer
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
        with self.tracer.start_as_current_span(
            method.lstrip("/"),
            context=extract(carrier),
            kind=self._kind,
            attributes=_attributes(method),
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                response = await call_next(request, context)
            except BaseException as error:
                _end(span, context.code() or failure_code(error, context), server=True)
                raise
            _end(span, context.code() or grpc.StatusCode.OK, server=True)
            return response


async def traced_call(
    tracer: Tracer, method: str, call: Any, metadata: tuple[tuple[str, str | bytes], ...]
) -> Any:
    """`call(metadata)` inside a client span, with the span's context added to `metadata`."""
    from opentelemetry.trace import SpanKind

    with tracer.start_as_current_span(
        method.lstrip("/"),
        kind=SpanKind.CLIENT,
        attributes=_attributes(method),
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        carrier: dict[str, str] = {}
        inject(carrier)
        try:
            response = await call((*metadata, *carrier.items()))
        except grpc.aio.AioRpcError as error:
            _end(span, error.code(), server=False)
            raise
        _end(span, grpc.StatusCode.OK, server=False)
        return response
