"""A sampled span kept as a plain object and handed to the batch processor when it ends.

Imported only once tracing is on (`meshkit.telemetry`). The SDK's own span guards itself with
a lock, bounds its attributes, events and links in objects of their own, asks the sampler
again, and copies itself into a `ReadableSpan` when it ends: a third of what a sampled request
cost the gateway. A span of the mesh's is made once its trace was sampled
(`meshkit.telemetry.enter`) and is changed and ended by the one task that handles its
request, so none of that is needed, and the span is itself the `ReadableSpan` the exporter
reads once it has ended.

What it leaves out of the SDK's: span limits (`OTEL_SPAN_*_LIMIT`; the mesh's spans carry a
handful of attributes and an event only for an exception), the warnings for a change to an
ended span (it is ignored, as the SDK ignores it), and the SDK's own metrics of its spans.
"""

from __future__ import annotations

import random
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from time import time_ns
from types import TracebackType

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.util import types

_UNSET = Status(StatusCode.UNSET)
# The flags the SDK gives a span it samples: its trace id is random where the mesh drew it
# (a root), and where its parent says so (a child).
_ROOT_FLAGS = TraceFlags(TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID)
_CHILD_FLAGS = (TraceFlags(TraceFlags.SAMPLED), _ROOT_FLAGS)


@dataclass(frozen=True)
class Recorder:
    """Where spans go when they start and end (the provider's processors), and what each
    carries of its process."""

    processor: SpanProcessor
    resource: Resource
    scope: InstrumentationScope

    def root(
        self,
        name: str,
        trace_id: int,
        kind: SpanKind,
        attributes: Mapping[str, types.AnyValue] | None,
        parent_context: Context | None,
    ) -> RecordedSpan:
        """The first span of trace `trace_id`, sampled."""
        context = SpanContext(trace_id, _span_id(), False, _ROOT_FLAGS)
        return RecordedSpan(name, context, None, kind, attributes, self, parent_context)

    def child(
        self,
        name: str,
        above: SpanContext,
        kind: SpanKind,
        attributes: Mapping[str, types.AnyValue] | None,
        parent_context: Context | None,
    ) -> RecordedSpan:
        """A span under the sampled span `above`, in its trace and with its trace state."""
        flags = _CHILD_FLAGS[above.trace_flags.random_trace_id]
        context = SpanContext(above.trace_id, _span_id(), False, flags, above.trace_state)
        return RecordedSpan(name, context, above, kind, attributes, self, parent_context)


def _span_id() -> int:
    return random.getrandbits(64) or 1


class RecordedSpan(trace.Span, ReadableSpan):
    """A span that is recorded: its changes kept until it ends, then handed on whole."""

    def __init__(
        self,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: Mapping[str, types.AnyValue] | None,
        recorder: Recorder,
        parent_context: Context | None = None,
    ) -> None:
        # ReadableSpan's fields, set here rather than by its constructor, which would make a
        # resource of its own for each span.
        self._name = name
        self._context: SpanContext = context
        self._parent = parent
        self._kind = kind
        self._attributes: dict[str, types.AnyValue] = dict(attributes) if attributes else {}
        self._events: list[Event] = []
        self._links: tuple[Link, ...] = ()
        self._status = _UNSET
        self._resource = recorder.resource
        self._instrumentation_scope = recorder.scope
        self._instrumentation_info = None
        self._processor = recorder.processor
        self._start_time: int | None = time_ns()
        self._end_time: int | None = None
        # Processors take any span with a span's methods, though typed for the SDK's.
        self._processor.on_start(self, parent_context)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f'{type(self).__name__}(name="{self._name}", context={self._context})'

    def get_span_context(self) -> SpanContext:
        return self._context

    def is_recording(self) -> bool:
        return self._end_time is None

    def set_attributes(self, attributes: Mapping[str, types.AnyValue]) -> None:
        if self._end_time is None:
            self._attributes.update(attributes)

    def set_attribute(self, key: str, value: types.AnyValue) -> None:
        if self._end_time is None:
            self._attributes[key] = value

    def add_event(
        self,
        name: str,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
    ) -> None:
        if self._end_time is None:
            self._events.append(Event(name, attributes, timestamp))

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        # What the SDK keeps: a link to a valid context, or one that says something.
        if self._end_time is None and (context.is_valid or attributes or context.trace_state):
            self._links = (*self._links, Link(context, attributes))

    def update_name(self, name: str) -> None:
        if self._end_time is None:
            self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        # As the SDK's: OK is final, and UNSET changes nothing.
        if self._end_time is not None or self._status.status_code is StatusCode.OK:
            return
        if isinstance(status, StatusCode):
            status = Status(status, description)
        if status.status_code is not StatusCode.UNSET:
            self._status = status

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        kind = type(exception)
        module = kind.__module__
        recorded: dict[str, types.AnyValue] = {
            "exception.type": (
                f"{module}.{kind.__qualname__}"
                if module and module != "builtins"
                else kind.__qualname__
            ),
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
        }
        recorded.update(attributes or {})
        self.add_event("exception", recorded, timestamp)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        """Ends it, as the SDK's span does, with the exception that left the block recorded."""
        if exc_val is not None and self.is_recording():
            self.record_exception(exc_val, escaped=True)
            self.set_status(Status(StatusCode.ERROR, f"{type(exc_val).__name__}: {exc_val}"))
        self.end()

    def end(self, end_time: int | None = None) -> None:
        if self._end_time is not None:
            return
        self._end_time = end_time if end_time is not None else time_ns()
        # From here on the export thread reads it, and nothing changes it.
        self._processor.on_end(self)
