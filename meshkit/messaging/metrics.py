"""Prometheus metrics of the event bus: what each outbox relay published and has yet to, and what
each consumer did with each message.

The label `service` is the outbox's source (the service's name). The label `queue` is the
consumer's name (`payment_service`), not its queue's full name (`payment_service.events`, with
the namespace in front when there is one): a series keeps its name in every namespace, and
dashboards and alerts need not know the deployment's. `event_type` is a routing key of
`EVENT_TYPES`; a consumer counts a message of any other type as `unknown`, so that whatever a
publisher sends cannot make a series per value.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Gauge

from meshkit.messaging.events import EVENT_TYPES

OUTBOX_EVENTS_PUBLISHED = Counter(
    "outbox_events_published_total",
    "Outbox rows the relay published, confirmed by the broker, and committed as sent.",
    ["service", "event_type"],
)
OUTBOX_PUBLISH_FAILURES = Counter(
    "outbox_publish_failures_total",
    "Batches of outbox rows whose publish failed; their rows stay unsent.",
    ["service"],
)
OUTBOX_EVENTS_PENDING = Gauge(
    "outbox_events_pending",
    "Outbox rows not yet sent, as the relay last measured them.",
    ["service"],
)
OUTBOX_OLDEST_PENDING_AGE = Gauge(
    "outbox_oldest_pending_age_seconds",
    "Age of the oldest unsent outbox row when the relay last measured it; 0 when none.",
    ["service"],
)
EVENTS_CONSUMED = Counter(
    "events_consumed_total",
    "Messages a consumer settled, by queue, event type and outcome.",
    ["queue", "event_type", "outcome"],
)

HANDLED: Final = "handled"
DUPLICATE: Final = "duplicate"
RETRIED: Final = "retried"
DEAD_LETTERED: Final = "dead_lettered"
OUTCOMES = (HANDLED, DUPLICATE, RETRIED, DEAD_LETTERED)
UNKNOWN_EVENT_TYPE: Final = "unknown"


def event_type_label(event_type: str) -> str:
    """The `event_type` label of a message of this type: the type if it is one of ours."""
    return event_type if event_type in EVENT_TYPES else UNKNOWN_EVENT_TYPE
