"""What a consumer does with each message, counted by outcome, on the real broker: handled,
duplicate, retried, and dead-lettered with one error, by the consumer or at the last attempt
the queue's delivery limit allows."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aio_pika.abc import AbstractIncomingMessage
from prometheus_client import REGISTRY

from meshkit.messaging.amqp import DELIVERY_LIMIT
from meshkit.messaging.inbox import MAX_ATTEMPTS
from tests.runtime.conftest import CONSUMER, ConsumerRig
from tests.support import eventually

INBOX_LOGGER = "meshkit.messaging.inbox"
OUTCOMES = ("handled", "duplicate", "retried", "dead_lettered")


def consumed(outcome: str, event_type: str = "order.created") -> float:
    """The consumer's count of messages of `event_type` with `outcome`, so far."""
    labels = {"queue": CONSUMER, "event_type": event_type, "outcome": outcome}
    return REGISTRY.get_sample_value("events_consumed_total", labels) or 0.0


def outcomes() -> dict[str, float]:
    return {outcome: consumed(outcome) for outcome in OUTCOMES}


def counted_since(before: dict[str, float]) -> dict[str, float]:
    """How many messages were counted with each outcome since `before`."""
    return {outcome: value - before[outcome] for outcome, value in outcomes().items()}


async def _consuming(rig: ConsumerRig) -> bool:
    counts = await rig.counts()
    return counts is not None and counts[1] == 1


async def _dead_letter(rig: ConsumerRig) -> AbstractIncomingMessage | None:
    """The first message of the consumer's dead-letter queue, taken off it, or None."""
    queue = await rig.channel.get_queue(rig.topology.dead_letter_queue(CONSUMER), ensure=False)
    return await queue.get(no_ack=True, fail=False)


def dead_letter_errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.name == INBOX_LOGGER and record.getMessage().startswith("dead-lettering")
    ]


async def test_a_message_and_its_duplicate_are_counted_handled_then_duplicate(
    consumer_rig: ConsumerRig,
) -> None:
    handled: list[str] = []

    async def record(uow: object, body: object, envelope: object) -> None:
        handled.append(getattr(envelope, "message_id", ""))

    before = outcomes()
    running = asyncio.create_task(consumer_rig.consumer({"order.created": record}).run())
    try:
        await eventually(lambda: _consuming(consumer_rig), message="consuming")
        await consumer_rig.publish("m-1")
        await consumer_rig.publish("m-1")  # a re-publish: the inbox knows it

        async def both_counted() -> bool:
            return sum(counted_since(before).values()) == 2

        await eventually(both_counted, message="both messages counted")
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert handled == ["m-1"]
    assert counted_since(before) == {"handled": 1, "duplicate": 1, "retried": 0, "dead_lettered": 0}


async def test_a_message_failing_every_attempt_is_dead_lettered_after_the_last_with_one_error(
    consumer_rig: ConsumerRig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=INBOX_LOGGER)
    attempts: list[str] = []

    async def fail(uow: object, body: object, envelope: object) -> None:
        attempts.append(getattr(envelope, "message_id", ""))
        raise RuntimeError("the handler fails every time")

    before = outcomes()
    consumer = consumer_rig.consumer(
        {"order.created": fail}, retry_base_seconds=0.001, retry_max_seconds=0.01
    )
    running = asyncio.create_task(consumer.run())
    try:
        await eventually(lambda: _consuming(consumer_rig), message="consuming")
        await consumer_rig.publish("poison", correlation_id="o-9")
        dead = await eventually(lambda: _dead_letter(consumer_rig), message="a dead letter")
        # The broker dead-lettered it for its delivery limit, not the consumer by a reject.
        assert (dead.message_id, (dead.headers or {}).get("x-first-death-reason")) == (
            "poison",
            "delivery_limit",
        )
        # Nothing left to deliver again.
        assert await consumer_rig.counts() == (0, 1)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)

    # A quorum queue delivers a message once, then again for each of DELIVERY_LIMIT failures.
    assert MAX_ATTEMPTS == DELIVERY_LIMIT + 1
    assert attempts == ["poison"] * MAX_ATTEMPTS
    assert counted_since(before) == {
        "handled": 0,
        "duplicate": 0,
        "retried": MAX_ATTEMPTS - 1,
        "dead_lettered": 1,
    }
    # One error, at the last attempt; the earlier failures are warnings.
    (error,) = [r for r in caplog.records if r.name == INBOX_LOGGER and r.levelno >= logging.ERROR]
    assert error in dead_letter_errors(caplog)
    assert error.getMessage() == (
        f"dead-lettering order.created message poison (correlation o-9) from queue {CONSUMER}: "
        f"attempt {MAX_ATTEMPTS} of {MAX_ATTEMPTS} failed: "
        "RuntimeError: the handler fails every time"
    )
    assert getattr(error, "queue", None) == CONSUMER
    assert getattr(error, "event_type", None) == "order.created"
    assert getattr(error, "message_id", None) == "poison"
    assert getattr(error, "correlation_id", None) == "o-9"
    assert getattr(error, "attempt", None) == MAX_ATTEMPTS
    assert error.exc_info is not None
    retries = [r for r in caplog.records if r.name == INBOX_LOGGER and r.levelno == logging.WARNING]
    assert len(retries) == MAX_ATTEMPTS - 1


async def test_a_message_that_cannot_be_read_is_dead_lettered_at_once_with_one_error(
    consumer_rig: ConsumerRig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger=INBOX_LOGGER)
    handled: list[str] = []

    async def record(uow: object, body: object, envelope: object) -> None:
        handled.append(getattr(envelope, "message_id", ""))

    before = outcomes()
    running = asyncio.create_task(consumer_rig.consumer({"order.created": record}).run())
    try:
        await eventually(lambda: _consuming(consumer_rig), message="consuming")
        # A body that says it holds 5 bytes and holds 2: no order.created can be read from it.
        await consumer_rig.publish("garbled", correlation_id="o-7", body=b"\x0a\x05ab")
        dead = await eventually(lambda: _dead_letter(consumer_rig), message="a dead letter")
        assert (dead.headers or {}).get("x-first-death-reason") == "rejected"
        assert dead.correlation_id == "o-7"
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)

    assert handled == []
    assert counted_since(before) == {"handled": 0, "duplicate": 0, "retried": 0, "dead_lettered": 1}
    (error,) = dead_letter_errors(caplog)
    assert error.levelno == logging.ERROR
    assert error.getMessage().startswith(
        f"dead-lettering order.created message garbled (correlation o-7) from queue {CONSUMER}: "
        "it cannot be read: undecodable order.created body"
    )
    assert (getattr(error, "message_id", None), getattr(error, "correlation_id", None)) == (
        "garbled",
        "o-7",
    )
