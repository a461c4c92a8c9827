"""Event types of the saga: routing keys, protobuf bodies, and the AMQP envelope."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from google.protobuf.message import DecodeError, Message

from ecommerce.events.v1 import events_pb2

CONTENT_TYPE = "application/x-protobuf"
# When the event happened, to the microsecond (RFC 3339).
OCCURRED_AT_HEADER = "x-occurred-at"

# Routing key (also the AMQP `type` property) → body type.
EVENT_TYPES: dict[str, type[Message]] = {
    "order.created": events_pb2.OrderCreated,
    "order.confirmed": events_pb2.OrderConfirmed,
    "order.cancelled": events_pb2.OrderCancelled,
    "order.shipped": events_pb2.OrderShipped,
    "payment.succeeded": events_pb2.PaymentSucceeded,
    "payment.failed": events_pb2.PaymentFailed,
    "payment.refunded": events_pb2.PaymentRefunded,
    "notification.sent": events_pb2.NotificationSent,
}
_TYPE_OF_BODY = {body: name for name, body in EVENT_TYPES.items()}


class UnknownEvent(ValueError):
    """A message whose type or body this service cannot read: it can never succeed."""


def event_type_of(body: Message) -> str:
    try:
        return _TYPE_OF_BODY[type(body)]
    except KeyError:
        raise UnknownEvent(f"{type(body).__name__} is not an event") from None


def decode_event(event_type: str, payload: bytes) -> Message:
    body_type = EVENT_TYPES.get(event_type)
    if body_type is None:
        raise UnknownEvent(f"unknown event type {event_type!r}")
    try:
        return body_type.FromString(payload)
    except DecodeError as exc:
        raise UnknownEvent(f"undecodable {event_type} body: {exc}") from None


@dataclass(frozen=True)
class Envelope:
    """What travels with an event besides its body (AMQP properties and headers)."""

    event_type: str
    message_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    correlation_id: str = ""
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    source: str = ""
    # W3C trace context and the request id of the call that caused the event.
    headers: dict[str, str] = field(default_factory=dict)
