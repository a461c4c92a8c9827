"""Distributed tracing with OpenTelemetry, configured only by the standard `OTEL_*` variables.

Tracing is on when an OTLP endpoint is set (`OTEL_EXPORTER_OTLP_ENDPOINT`, or the traces one).
Without one nothing of OpenTelemetry is imported, no provider is installed, and the hooks of
`meshkit.rpc`, the gateway and the messaging layer are never added: tracing off costs nothing.

The rest is the SDK's own reading of the environment: `OTEL_EXPORTER_OTLP_PROTOCOL` (`grpc`
or `http/protobuf`), `OTEL_TRACES_SAMPLER` and `_ARG` (a parent-based ratio is the usual
choice), `OTEL_SERVICE_NAME` (the process's name by default) and `OTEL_RESOURCE_ATTRIBUTES`.
Context travels as W3C `traceparent` and `tracestate`, in gRPC metadata, HTTP headers, the
outbox's rows and the AMQP messages they become.

A trace is sampled once, where it starts (`enter`): a request the sampler drops makes no span
there, only its context travels on, flagged unsampled. With a parent-based sampler (the usual
choice, and what every process should run), every hop after it then skips the span machinery
too, and no service samples a fragment of it on its own.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import Sampler
    from opentelemetry.trace import Span, SpanKind, Tracer
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

logger = logging.getLogger(__name__)

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
_ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
_PROTOCOLS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")

_provider: TracerProvider | None = None
_tracer: Tracer | None = None
_sampler: Sampler | None = None
# Whether the sampler drops every child of an unsampled parent, as the parent-based ones do:
# then a dropped trace's later hops need not ask it.
_follows_parent = False
_root_rule: Callable[[int], bool] | None = None
# OpenTelemetry's API modules, imported once tracing is on: a hot path's imports cost.
_trace: Any = None
_contexts: Any = None
# The trace id `enter` drew and had sampled, for the provider to give the root span it makes.
_chosen_trace_id: ContextVar[int] = ContextVar("chosen_trace_id", default=0)


def tracing_requested(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment names somewhere to send traces."""
    return any(environ.get(name) for name in _ENDPOINTS) and environ.get(
        "OTEL_SDK_DISABLED", ""
    ).lower() not in {"true", "1"}


def configure_tracing(default_service_name: str) -> bool:
    """Install the SDK's provider and an OTLP exporter when tracing is requested; once per
    process. Returns whether tracing is on."""
    global _provider, _tracer, _sampler, _follows_parent, _root_rule, _trace, _contexts
    if _provider is not None:
        return True
    if not tracing_requested():
        return False
    from opentelemetry import context, trace
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        # Neither OTEL_SERVICE_NAME nor OTEL_RESOURCE_ATTRIBUTES names the service.
        resource = resource.merge(Resource({SERVICE_NAME: default_service_name}))
    # Its sampler from OTEL_TRACES_SAMPLER.
    provider = TracerProvider(
        resource=resource,
        id_generator=_ChosenTraceIds(),  # type: ignore[arg-type]
    )
    provider.add_span_processor(BatchSpanProcessor(_exporter()))
    trace.set_tracer_provider(provider)
    _provider = provider
    _sampler = provider.sampler
    _follows_parent = _drops_unsampled_children(provider.sampler)
    _root_rule = _rule_for_roots(provider.sampler)
    _trace, _contexts = trace, context
    # Last: the hooks take a tracer as the sign that all of the above is set.
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


def _rule_for_roots(sampler: Sampler) -> Callable[[int], bool] | None:
    """How `sampler` decides on a root, by its trace id alone, for the samplers the SDK
    configures from OTEL_TRACES_SAMPLER; None for another, which is asked each time."""
    from opentelemetry.sdk.trace import sampling

    root = getattr(sampler, "_root", None) if isinstance(sampler, sampling.ParentBased) else sampler
    if isinstance(root, sampling.TraceIdRatioBased):
        limit, bound = root.TRACE_ID_LIMIT, root.bound
        return lambda trace_id: trace_id & limit < bound
    if root is sampling.ALWAYS_ON or root is sampling.ALWAYS_OFF:
        sampled = root is sampling.ALWAYS_ON
        return lambda trace_id: sampled
    return None


def _drops_unsampled_children(sampler: Sampler) -> bool:
    """Whether `sampler` drops every span whose parent, remote or local, was not sampled."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace.sampling import Decision, ParentBased

    if not isinstance(sampler, ParentBased):
        return False
    for remote in (True, False):
        parent = trace.NonRecordingSpan(trace.SpanContext(1, 1, is_remote=remote))
        context = trace.set_span_in_context(parent)
        decision = sampler.should_sample(context, 1, "unsampled parent").decision
        if decision is not Decision.DROP:
            return False
    return True


class _ChosenTraceIds:
    """The SDK's random ids (`RandomIdGenerator`), except the root trace id `enter` drew and
    had sampled already, so that the span it makes keeps the id the decision was made on."""

    def generate_span_id(self) -> int:
        return random.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return _chosen_trace_id.get() or random.getrandbits(128) or 1

    def is_trace_id_random(self) -> bool:
        return True


def tracer() -> Tracer | None:
    """The mesh's tracer, or None while tracing is off (then add no hooks)."""
    return _tracer


# What the end of a process gives the spans still buffered: within a stopping process's
# deadline (`SHUTDOWN_DEADLINE_SECONDS`), whatever the collector does.
FLUSH_AT_EXIT_MILLIS = 3000


def shutdown_tracing() -> None:
    """Send what is buffered, for a bounded time, then stop: at the end of the process."""
    global _provider, _tracer, _sampler
    provider, _provider, _tracer, _sampler = _provider, None, None, None
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


class Entered(NamedTuple):
    """What `enter` made: the span, None when the trace is not sampled, and the token that
    restores the context `leave` returns to."""

    span: Span | None
    token: object


def enter(
    name: str,
    parent: Context | None = None,
    kind: SpanKind | None = None,
    attributes: Mapping[str, str | int] | None = None,
) -> Entered:
    """Make the current context a child of `parent` (the current context when None): a span
    when the trace is sampled, else only the unsampled context, at the cost of a lookup.

    A root is sampled here, on a trace id drawn first, and a trace its parent dropped is not
    asked about again while the sampler follows parents. End it with `leave`, in a finally.
    """
    if _tracer is None:  # off, or shut down under a hook still running
        return Entered(None, None)
    trace, contexts = _trace, _contexts
    above = trace.get_current_span(parent).get_span_context()
    if above.is_valid:
        if _follows_parent and not above.trace_flags.sampled:
            return Entered(None, None if parent is None else contexts.attach(parent))
        made = _tracer.start_span(name, parent, kind or trace.SpanKind.INTERNAL, attributes)
    else:
        trace_id = random.getrandbits(128) or 1
        kind = kind or trace.SpanKind.INTERNAL
        if not _samples_root(trace_id, parent, name, kind):
            # Not sampled, its trace id random: the flags the SDK gives such a root.
            flags = trace.TraceFlags(trace.TraceFlags.RANDOM_TRACE_ID)
            dropped = trace.SpanContext(trace_id, random.getrandbits(64) or 1, False, flags)
            unsampled = trace.set_span_in_context(trace.NonRecordingSpan(dropped), parent)
            return Entered(None, contexts.attach(unsampled))
        chosen = _chosen_trace_id.set(trace_id)
        try:
            made = _tracer.start_span(name, parent, kind, attributes)
        finally:
            _chosen_trace_id.reset(chosen)
    token = contexts.attach(trace.set_span_in_context(made, parent))
    return Entered(made if made.is_recording() else None, token)


def _samples_root(trace_id: int, parent: Context | None, name: str, kind: SpanKind) -> bool:
    """The sampler's decision on a root: by its rule where the SDK's sampler has a simple one
    (`_root_rule`), asked otherwise."""
    if _root_rule is not None:
        return _root_rule(trace_id)
    assert _sampler is not None
    decision = _sampler.should_sample(parent, trace_id, name, kind).decision
    return bool(decision.is_sampled())  # type: ignore[no-untyped-call]


def leave(entered: Entered) -> None:
    """End what `enter` made and restore the context it replaced."""
    if entered.span is not None:
        entered.span.end()
    if entered.token is not None:
        _contexts.detach(entered.token)


@contextmanager
def span(
    name: str,
    parent: Context | None = None,
    kind: SpanKind | None = None,
    attributes: Mapping[str, str | int] | None = None,
) -> Iterator[Span | None]:
    """`enter` and `leave` around a block: the span, or None when the trace is not sampled."""
    entered = enter(name, parent, kind, attributes)
    try:
        yield entered.span
    except Exception as error:
        if entered.span is not None:
            from opentelemetry.trace import Status, StatusCode

            entered.span.record_exception(error)
            entered.span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        raise
    finally:
        leave(entered)


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
    with span(name, extract(carrier)):
        yield


@contextmanager
def resumed(carrier: Mapping[str, Any]) -> Iterator[None]:
    """The context `carrier` holds (as `trace_headers` stored it) current for the block, with
    no span of its own: work done later on behalf of a span that has ended."""
    if _tracer is None or not carrier:
        yield
        return
    token = _contexts.attach(extract(carrier))
    try:
        yield
    finally:
        _contexts.detach(token)
