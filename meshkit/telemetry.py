"""Distributed tracing with OpenTelemetry, configured only by the standard `OTEL_*` variables.

Tracing is on when an OTLP endpoint is set (`OTEL_EXPORTER_OTLP_ENDPOINT`, or the traces one).
Without one nothing of OpenTelemetry is imported, no provider is installed, and the hooks of
`meshkit.rpc`, the gateway and the messaging layer are never added: tracing off costs nothing.

The rest is the SDK's own reading of the environment: `OTEL_EXPORTER_OTLP_PROTOCOL` (`grpc`
or `http/protobuf`), `OTEL_TRACES_SAMPLER` and `_ARG` (a parent-based ratio is the usual
choice), `OTEL_SERVICE_NAME` (the process's name by default) and `OTEL_RESOURCE_ATTRIBUTES`.
Context travels as W3C `traceparent` and `tracestate`, in gRPC metadata, HTTP headers, the
outbox's rows and the AMQP messages they become.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Tracer
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

logger = logging.getLogger(__name__)

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
_ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
_PROTOCOLS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")

_provider: TracerProvider | None = None
_tracer: Tracer | None = None


def tracing_requested(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment names somewhere to send traces."""
    return any(environ.get(name) for name in _ENDPOINTS) and environ.get(
        "OTEL_SDK_DISABLED", ""
    ).lower() not in {"true", "1"}


def configure_tracing(default_service_name: str) -> bool:
    """Install the SDK's provider and an OTLP exporter when tracing is requested; once per
    process. Returns whether tracing is on."""
    global _provider, _tracer
    if _provider is not None:
        return True
    if not tracing_requested():
        return False
    from opentelemetry import trace
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        # Neither OTEL_SERVICE_NAME nor OTEL_RESOURCE_ATTRIBUTES names the service.
        resource = resource.merge(Resource({SERVICE_NAME: default_service_name}))
    provider = TracerProvider(resource=resource)  # its sampler from OTEL_TRACES_SAMPLER
    provider.add_span_processor(BatchSpanProcessor(_exporter()))
    trace.set_tracer_provider(provider)
    _provider = provider
    _tracer = provider.get_tracer("meshkit")
    logger.info(
        "tracing to %s",
        next(os.environ[name] for name in _ENDPOINTS if os.environ.get(name)),
        extra={"service": resource.attributes.get(SERVICE_NAME)},
    )
    return True


def _exporter() -> Any:
    protocol = next((os.environ[name] for name in _PROTOCOLS if os.environ.get(name)), "grpc")
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpSpanExporter,
        )

        return HttpSpanExporter()
    raise ValueError(
        f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: the mesh exports grpc or http/protobuf"
    )


def tracer() -> Tracer | None:
    """The mesh's tracer, or None while tracing is off (then add no hooks)."""
    return _tracer


# What the end of a process gives the spans still buffered: within a stopping process's
# deadline (`SHUTDOWN_DEADLINE_SECONDS`), whatever the collector does.
FLUSH_AT_EXIT_MILLIS = 3000


def shutdown_tracing() -> None:
    """Send what is buffered, for a bounded time, then stop: at the end of the process."""
    global _provider, _tracer
    provider, _provider, _tracer = _provider, None, None
    if provider is not None:
        provider.force_flush(timeout_millis=FLUSH_AT_EXIT_MILLIS)
        provider.shutdown()


def inject(carrier: MutableMapping[str, str], context: Context | None = None) -> None:
    """Write the current (or the given) trace context into `carrier` as W3C headers."""
    _propagator().inject(carrier, context=context)


def extract(carrier: Mapping[str, Any]) -> Context:
    """The trace context W3C headers in `carrier` carry (an empty one without them)."""
    return _propagator().extract(
        {
            key: value.decode("latin-1") if isinstance(value, bytes) else str(value)
            for key, value in carrier.items()
            if key in (TRACEPARENT, TRACESTATE)
        }
    )


def _propagator() -> TraceContextTextMapPropagator:
    """W3C trace context, whatever OTEL_PROPAGATORS says: only those headers are carried."""
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    global _w3c
    if _w3c is None:
        _w3c = TraceContextTextMapPropagator()
    return _w3c


_w3c: TraceContextTextMapPropagator | None = None


def trace_ids() -> tuple[str, str] | None:
    """The current span's trace id and span id in hex, for log lines; None outside a span."""
    if _tracer is None:
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def trace_headers() -> dict[str, str]:
    """The current trace context as W3C headers, to store beside work done later; empty while
    tracing is off."""
    if _tracer is None:
        return {}
    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier


@contextmanager
def continuing(name: str, carrier: Mapping[str, Any]) -> Iterator[None]:
    """A span named `name`, current for the block, continuing the trace `carrier` holds (as
    `trace_headers` stored it); nothing while tracing is off."""
    if _tracer is None:
        yield
        return
    with _tracer.start_as_current_span(name, context=extract(carrier)):
        yield
