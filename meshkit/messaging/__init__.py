"""Events between services: the mesh's event types and queue bindings, the transactional outbox
and its relay, idempotent consumers, and the subscriptions that tie handlers to queues."""

from __future__ import annotations

from meshkit.messaging.amqp import CONSUMERS, BrokerUnavailable, Topology, check_broker
from meshkit.messaging.bus import Messaging
from meshkit.messaging.events import EVENT_TYPES, Envelope, event_type_of
from meshkit.messaging.inbox import EventConsumer, Handler, inbox_table
from meshkit.messaging.outbox import Outbox, OutboxRelay, outbox_table
from meshkit.messaging.subscriptions import SubscriptionMismatch, Subscriptions

__all__ = [
    "CONSUMERS",
    "EVENT_TYPES",
    "BrokerUnavailable",
    "Envelope",
    "EventConsumer",
    "Handler",
    "Messaging",
    "Outbox",
    "OutboxRelay",
    "SubscriptionMismatch",
    "Subscriptions",
    "Topology",
    "check_broker",
    "event_type_of",
    "inbox_table",
    "outbox_table",
]
