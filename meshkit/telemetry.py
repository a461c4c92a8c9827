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
too, and no service samples a fragment of it on its own. Such a trace's context is kept as
the W3C headers themselves, in a context variable of its own (`_unsampled`): carried on
without a single OpenTelemetry object, which is what most requests cost when few are sampled.
"""

from __future__ import annotations

import logging
import os
import random
import re
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import Sampler
    from opentelemetry.trace import Span, SpanKind, Tracer
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    from meshkit.recorded_span import Recorder

logger = logging.getLogger(__name__)

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
_ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
_PROTOCOLS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")

# The instrumentation scope of every span the mesh makes.
_SCOPE = "meshkit"

_provider: TracerProvider | None = None
# What makes the spans `start_span` records, and where they go (`meshkit.recorded_span`).
_recorder: Recorder | None = None
_tracer: Tracer | None = None
_sampler: Sampler | None = None
# Whether the sampler drops every child of an unsampled parent, as the parent-based ones do:
# then a dropped trace's later hops need not ask it.
_follows_parent = False
_root_rule: Callable[[int], bool] | None = None
# OpenTelemetry's API modules, imported once tracing is on: a hot path's imports cost.
_trace: Any = None
_contexts: Any = None
# An empty context: the parent of a request's new trace, whatever else is current.
_root_context: Any = None
# The trace id `enter` drew and had sampled, for the provider to give the root span it makes.
_chosen_trace_id: ContextVar[int] = ContextVar("chosen_trace_id", default=0)
# The current trace when it is not sampled and the sampler follows parents: its `traceparent`
# and `tracestate` headers, as they travel, or the trace and span ids of a root this process
# dropped (`_as_headers`). None otherwise (OpenTelemetry's context says).
_unsampled: ContextVar[tuple[str, str] | tuple[int, int] | None] = ContextVar(
    "unsampled", default=None
)
# A `traceparent` of version 00 as W3C writes it; what `_carried_unsampled` reads.
_TRACEPARENT = re.compile(r"00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}")


def tracing_requested(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment names somewhere to send traces."""
    return any(environ.get(name) for name in _ENDPOINTS) and environ.get(
        "OTEL_SDK_DISABLED", ""
    ).lower() not in {"true", "1"}


def configure_tracing(default_service_name: str) -> bool:
    """Install the SDK's provider and an OTLP exporter when tracing is requested; once per
    process. Returns whether tracing is on."""
    global _provider, _tracer, _sampler, _follows_parent, _root_rule, _trace, _contexts
    global _root_context, _recorder
    if _provider is not None:
        return True
    if not tracing_requested():
        return False
    from opentelemetry import context, trace
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import Tracer as SdkTracer
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    from meshkit.recorded_span import Recorder

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
    tracer = provider.get_tracer(_SCOPE)
    assert isinstance(tracer, SdkTracer)
    # Through the provider's processors, with the tracer's scope, as the SDK's spans go: the
    # exporter then batches both kinds of span under one scope.
    scope = InstrumentationScope(_SCOPE, "")
    _recorder = Recorder(tracer.span_processor, provider.resource, scope)
    _sampler = provider.sampler
    _follows_parent = _follows_parents(provider.sampler)
    _root_rule = _rule_for_roots(provider.sampler)
    _trace, _contexts, _root_context = trace, context, context.Context()
    # Last: the hooks take a tracer as the sign that all of the above is set.
    _tracer = tracer
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


def _follows_parents(sampler: Sampler) -> bool:
    """Whether `sampler` samples exactly the spans whose parent, remote or local, was sampled:
    then a child's decision is its parent's, and need not be asked."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace.sampling import ParentBased

    if not isinstance(sampler, ParentBased):
        return False
    for remote in (True, False):
        for flags in (trace.TraceFlags.DEFAULT, trace.TraceFlags.SAMPLED):
            parent = trace.NonRecordingSpan(
                trace.SpanContext(1, 1, remote, trace.TraceFlags(flags))
            )
            context = trace.set_span_in_context(parent)
            decision = sampler.should_sample(context, 1, "parent").decision
            if decision.is_sampled() != bool(flags):  # type: ignore[no-untyped-call]
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
    global _provider, _tracer, _sampler, _recorder
    provider, _provider, _tracer, _sampler, _recorder = _provider, None, None, None, None
    if provider is not None:
        provider.force_flush(timeout_millis=FLUSH_AT_EXIT_MILLIS)
        provider.shutdown()


def inject(carrier: MutableMapping[str, str], context: Context | None = None) -> None:
    """Write the current (or the given) trace context into `carrier` as W3C headers."""
    if context is None and (unsampled := _unsampled.get()) is not None:
        traceparent, tracestate = _as_headers(unsampled)
        carrier[TRACEPARENT] = traceparent
        if tracestate:
            carrier[TRACESTATE] = tracestate
        return
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
    """What `enter` made: the span, None when the trace is not sampled, and the tokens that
    restore the contexts `leave` returns to."""

    span: Span | None
    token: object
    unsampled: Token[tuple[str, str] | tuple[int, int] | None] | None = None


def enter(
    name: str,
    parent: Context | None = None,
    kind: SpanKind | None = None,
    attributes: Mapping[str, str | int] | None = None,
    *,
    carrier: Mapping[str, Any] | None = None,
) -> Entered:
    """Make the current context a child of `parent`, or of the W3C headers in `carrier`, or
    else of the current context: a span when the trace is sampled, else only the unsampled
    context, at the cost of a lookup.

    A root is sampled here, on a trace id drawn first, and a trace its parent dropped is not
    asked about again while the sampler follows parents. End it with `leave`, in a finally.
    """
    if _tracer is None:  # off, or shut down under a hook still running
        return Entered(None, None)
    if carrier is not None:
        # A request's trace is the one its headers carry, whatever is current: none, a root.
        if not carrier:
            return _enter_root(name, _root_context, kind, attributes)
        carried = _carried_unsampled(carrier)
        if carried is not None:
            return Entered(None, None, _unsampled.set(carried))
        parent = extract(carrier)
    elif parent is None and _unsampled.get() is not None:
        return Entered(None, None)  # a hop of a trace not sampled: nothing changes
    trace = _trace
    above = trace.get_current_span(parent).get_span_context()
    if not above.is_valid:
        return _enter_root(name, parent, kind, attributes)
    if _follows_parent and not above.trace_flags.sampled:
        state = above.trace_state.to_header() if above.trace_state else ""
        header = f"00-{above.trace_id:032x}-{above.span_id:016x}-{above.trace_flags:02x}"
        return Entered(None, None, _unsampled.set((header, state)))
    return _entered(start_span(name, parent, kind, attributes), parent)


def start_span(
    name: str,
    parent: Context | None = None,
    kind: SpanKind | None = None,
    attributes: Mapping[str, str | int] | None = None,
) -> Span:
    """A span, child of `parent` (or of the current OpenTelemetry context: an unsampled trace
    carried as headers is not looked at here, `enter` is), not made current; the caller ends
    it. Tracing must be on.

    A child of a sampled parent, under a sampler that follows parents, is recorded at once
    (`meshkit.recorded_span`): the sampler would only say yes. Anything else is the SDK's,
    asked of the sampler."""
    assert _tracer is not None and _recorder is not None
    trace = _trace
    kind = kind or trace.SpanKind.INTERNAL
    above = trace.get_current_span(parent).get_span_context()
    if not (_follows_parent and above.is_valid and above.trace_flags.sampled):
        return _tracer.start_span(name, parent, kind, attributes)
    return _recorder.child(name, above, kind, attributes, parent)


def _enter_root(
    name: str,
    parent: Context | None,
    kind: SpanKind | None,
    attributes: Mapping[str, str | int] | None,
) -> Entered:
    """A new trace, sampled or not on a trace id drawn first."""
    assert _tracer is not None
    trace_id = _random_bits(128) or 1
    rule = _root_rule
    if rule is not None and _follows_parent and not rule(trace_id):
        # Most requests when few are sampled: the ids alone, made into headers if ever asked.
        return Entered(None, None, _unsampled.set((trace_id, _random_bits(64) or 1)))
    kind = kind or _trace.SpanKind.INTERNAL
    if not _samples_root(trace_id, parent, name, kind):
        return Entered(None, *_dropped_root(trace_id, parent))
    if rule is not None and _recorder is not None:
        # Sampled by the rule the SDK's sampler would apply: recorded at once.
        return _entered(_recorder.root(name, trace_id, kind, attributes, parent), parent)
    chosen = _chosen_trace_id.set(trace_id)
    try:
        made = _tracer.start_span(name, parent, kind, attributes)
    finally:
        _chosen_trace_id.reset(chosen)
    return _entered(made, parent)


def _entered(made: Span, parent: Context | None) -> Entered:
    token = _contexts.attach(_trace.set_span_in_context(made, parent))
    # Under a span the OpenTelemetry context is the current one, whatever was carried before.
    masked = _unsampled.set(None) if _unsampled.get() is not None else None
    return Entered(made if made.is_recording() else None, token, masked)


def _carried_unsampled(carrier: Mapping[str, Any]) -> tuple[str, str] | None:
    """`carrier`'s W3C headers when they carry a trace that is not sampled, and the sampler
    follows parents: then they are all this process needs of it. None otherwise."""
    if not _follows_parent:
        return None
    traceparent = carrier.get(TRACEPARENT)
    if isinstance(traceparent, bytes):
        traceparent = traceparent.decode("latin-1")
    if (
        not isinstance(traceparent, str)
        or not _TRACEPARENT.fullmatch(traceparent)
        or int(traceparent[-2:], 16) & 1
    ):
        return None
    state = carrier.get(TRACESTATE) or ""
    if isinstance(state, bytes):
        state = state.decode("latin-1")
    if state:
        # Checked as OpenTelemetry's propagator checks it: what a client sent goes on into
        # every call's metadata and every event's headers only if it is well formed.
        state = _trace.TraceState.from_header([str(state)]).to_header()
    return traceparent, str(state)


def carries_unsampled(carrier: Mapping[str, Any]) -> bool:
    """Whether `carrier` carries a trace that no process following parents will record."""
    return _carried_unsampled(carrier) is not None


# The flags the SDK gives a root it drops: not sampled, its trace id random (W3C level 2).
_DROPPED_FLAGS = "02"


def _dropped_root(
    trace_id: int, parent: Context | None
) -> tuple[object, Token[tuple[str, str] | tuple[int, int] | None] | None]:
    """The context of a root the sampler dropped: as headers while the sampler follows
    parents, else OpenTelemetry's."""
    span_id = _random_bits(64) or 1
    if _follows_parent:
        return None, _unsampled.set((trace_id, span_id))
    trace = _trace
    flags = trace.TraceFlags(int(_DROPPED_FLAGS, 16))
    dropped = trace.SpanContext(trace_id, span_id, False, flags)
    unsampled = trace.set_span_in_context(trace.NonRecordingSpan(dropped), parent)
    return _contexts.attach(unsampled), None


_random_bits = random.getrandbits


def _as_headers(unsampled: tuple[Any, Any]) -> tuple[str, str]:
    """The `traceparent` and `tracestate` of what `_unsampled` holds: the headers as they
    came, or the ids of a root this process dropped, written out only now."""
    first, second = unsampled
    if isinstance(first, int):
        return f"00-{first:032x}-{second:016x}-{_DROPPED_FLAGS}", ""
    return first, second


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
    if entered.unsampled is not None:
        _unsampled.reset(entered.unsampled)
    if entered.token is not None:
        _contexts.detach(entered.token)


@contextmanager
def span(
    name: str,
    parent: Context | None = None,
    kind: SpanKind | None = None,
    attributes: Mapping[str, str | int] | None = None,
    *,
    carrier: Mapping[str, Any] | None = None,
) -> Iterator[Span | None]:
    """`enter` and `leave` around a block: the span, or None when the trace is not sampled."""
    entered = enter(name, parent, kind, attributes, carrier=carrier)
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
    if (unsampled := _unsampled.get()) is not None:
        traceparent = _as_headers(unsampled)[0]
        return traceparent[3:35], traceparent[36:52]
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
    with span(name, carrier=carrier):
        yield
