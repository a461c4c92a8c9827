"""A message no handler takes goes to the dead-letter queue with an error, never acked unseen,
and is counted as dead-lettered."""

from __future__ import annotations

import asyncio
import logging

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage
from prometheus_client import REGISTRY

from meshkit.messaging.events import CONTENT_TYPE
from tests.runtime.conftest import CONSUMER, ConsumerRig
from tests.support import eventually, queue_counts


async def _consuming(rig: ConsumerRig) -> bool:
    counts = await rig.counts()
    return counts is not None and counts[1] == 1


def consumed(event_type: str, outcome: str) -> float:
    """The consumer's count of messages of `event_type` with `outcome`, so far."""
    labels = {"queue": CONSUMER, "event_type": event_type, "outcome": outcome}
    return REGISTRY.get_sample_value("events_consumed_total", labels) or 0.0


async def _dead_letter(rig: ConsumerRig) -> AbstractIncomingMessage | None:
    """The first message of the consumer's dead-letter queue, taken off it, or None."""
    queue = await rig.channel.get_queue(rig.topology.dead_letter_queue(CONSUMER), ensure=False)
    return await queue.get(no_ack=True, fail=False)


@pytest.mark.parametrize(
    ("routing_key", "event_type"),
    [
        # A binding of the queue that its consumer has no handler for, as an earlier version
        # that handled order.cancelled would have left it.
        ("order.cancelled", "order.cancelled"),
        # A message whose type is not the key it came by: its type has no handler.
        ("order.created", "order.shipped"),
    ],
)
async def test_a_message_without_a_handler_is_dead_lettered_and_logged(
    consumer_rig: ConsumerRig,
    caplog: pytest.LogCaptureFixture,
    routing_key: str,
    event_type: str,
) -> None:
    caplog.set_level(logging.ERROR, logger="meshkit.messaging.inbox")
    handled: list[str] = []

    async def record(tx: object, body: object, envelope: object) -> None:
        handled.append(getattr(envelope, "message_id", ""))

    dead_lettered = consumed(event_type, "dead_lettered")
    handled_before = consumed("order.created", "handled")
    running = asyncio.create_task(consumer_rig.consumer({"order.created": record}).run())
    try:
        await eventually(lambda: _consuming(consumer_rig), message="consuming")
        exchange = await consumer_rig.topology.declare_exchange(consumer_rig.channel)
        queue = await consumer_rig.channel.get_queue(consumer_rig.queue, ensure=False)
        await queue.bind(exchange, routing_key="order.cancelled")
        await exchange.publish(
            aio_pika.Message(
                b"",
                message_id="unhandled",
                correlation_id="o-1",
                type=event_type,
                content_type=CONTENT_TYPE,
            ),
            routing_key=routing_key,
        )
        await consumer_rig.publish("handled")  # the consumer goes on with the next message

        dead = await eventually(lambda: _dead_letter(consumer_rig), message="a dead letter")
        assert dead.message_id == "unhandled"
        assert dead.type == event_type
        # Rejected by the consumer (not expired, nor over the delivery limit).
        assert (dead.headers or {}).get("x-first-death-reason") == "rejected"
        await eventually(lambda: _has(handled, "handled"), message="the next message handled")
        assert handled == ["handled"]
        # Nothing left in the queue to be delivered again, and nothing else dead-lettered.
        assert await consumer_rig.counts() == (0, 1)
        dead_queue = consumer_rig.topology.dead_letter_queue(CONSUMER)
        assert await queue_counts(consumer_rig.connection, dead_queue) == (0, 0)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)

    (record_,) = [r for r in caplog.records if r.name == "meshkit.messaging.inbox"]
    assert record_.levelno == logging.ERROR
    assert record_.getMessage() == (
        f"dead-lettering {event_type} message unhandled (correlation o-1) from queue {CONSUMER}:"
        f" {CONSUMER} has no handler for it"
    )
    assert getattr(record_, "queue", None) == CONSUMER
    assert getattr(record_, "event_type", None) == event_type
    assert getattr(record_, "routing_key", None) == routing_key
    assert getattr(record_, "message_id", None) == "unhandled"
    assert getattr(record_, "correlation_id", None) == "o-1"
    assert consumed(event_type, "dead_lettered") == dead_lettered + 1
    assert consumed("order.created", "handled") == handled_before + 1


async def _has(handled: list[str], message_id: str) -> bool:
    return message_id in handled
