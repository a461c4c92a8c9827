"""Spans for events: the relay's publish continues the trace stored in the outbox row, and a
consumer's processing continues the trace the message carries; added only while tracing is on.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from meshkit.telemetry import carries_unsampled, extract, inject, span, start_span

if TYPE_CHECKING:
    from opentelemetry.trace import Span


def _attributes(event_type: str, message_id: str) -> dict[str, str]:
    return {
        "messaging.system": "rabbitmq",
        "messaging.destination.name": event_type,
        "messaging.message.id": message_id,
    }


def start_publish(
    event_type: str, message_id: str, headers: MutableMapping[str, Any]
) -> Span | None:
    """A producer span for one outbox row, child of the request or handler that wrote it (the
    context stored in its headers), whose own context then replaces it in `headers`: the
    consumer continues from the publish. The caller ends it once the broker confirmed.

    None for a row whose trace is not sampled: its headers travel on as they are."""
    from opentelemetry.trace import SpanKind, set_span_in_context

    if carries_unsampled(headers):
        return None

    publish = start_span(
        f"publish {event_type}",
        extract(headers),
        SpanKind.PRODUCER,
        _attributes(event_type, message_id),
    )
    inject(headers, context=set_span_in_context(publish))
    return publish


def end_publish(spans: list[Span | None], error: BaseException | None) -> None:
    from opentelemetry.trace import Status, StatusCode

    for publish in spans:
        if publish is None:
            continue
        if error is not None:
            publish.set_status(Status(StatusCode.ERROR, type(error).__name__))
        publish.end()


@contextmanager
def processing(
    event_type: str, queue: str, message_id: str, headers: dict[str, Any]
) -> Iterator[Span | None]:
    """The consumer span of one delivery, current while it is handled (None when its trace is
    not sampled): the events its handler publishes carry its context on."""
    from opentelemetry.trace import SpanKind

    attributes = _attributes(event_type, message_id)
    attributes["messaging.consumer.group.name"] = queue
    with span(
        f"process {event_type}", None, SpanKind.CONSUMER, attributes, carrier=headers
    ) as made:
        yield made
