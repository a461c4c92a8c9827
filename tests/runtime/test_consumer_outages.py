"""A dependency down for longer than the delivery limit allows: the message waits in the
consumer's retry queues, on the real broker, without spending its deliveries, and is handled
once the dependency is back; other messages go on meanwhile. Past the outage window it is
treated as any other failure."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest

from meshkit.data.unit_of_work import UnitOfWork
from meshkit.errors import Unavailable
from meshkit.messaging.events import Envelope
from meshkit.messaging.inbox import MAX_ATTEMPTS, OUTAGE_RETRIES_HEADER, EventConsumer, Handler
from tests.runtime.conftest import CONSUMER, ConsumerRig
from tests.runtime.test_consumer_outcomes import (
    INBOX_LOGGER,
    _consuming,
    _dead_letter,
    counted_since,
    outcomes,
)
from tests.support import eventually

# Short waits, so that many of them take a test a second.
QUICK_RETRIES = (0.05, 0.1)


def consumer(
    rig: ConsumerRig, handler: Handler[UnitOfWork], **options: object
) -> EventConsumer[UnitOfWork]:
    topology = replace(rig.topology, retry_delays_seconds=QUICK_RETRIES)
    return EventConsumer(
        rig.database,
        rig.inbox,
        rig.connection,
        topology,
        CONSUMER,
        {"order.created": handler},
        retry_base_seconds=0.001,
        retry_max_seconds=0.01,
        **options,  # type: ignore[arg-type]
    )


async def test_an_outage_longer_than_the_delivery_limit_dead_letters_nothing(
    consumer_rig: ConsumerRig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=INBOX_LOGGER)
    down_for = MAX_ATTEMPTS + 3  # more failures than a poison message is given
    attempts: list[Envelope] = []

    async def release_stock(uow: object, body: object, envelope: Envelope) -> None:
        attempts.append(envelope)
        if len(attempts) <= down_for:
            raise Unavailable("The product service is unavailable right now.")

    before = outcomes()
    running = asyncio.create_task(consumer(consumer_rig, release_stock).run())
    try:
        await eventually(lambda: _consuming(consumer_rig), message="consuming")
        await consumer_rig.publish("m-outage", correlation_id="o-1")

        async def handled() -> bool:
            return counted_since(before)["handled"] == 1

        await eventually(handled, timeout=20, message="handled once the product service is back")
        assert await _dead_letter(consumer_rig) is None
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)

    assert len(attempts) == down_for + 1
    # Every retry went through a retry queue, counted on the message; the delivery limit's
    # count started afresh each time.
    assert attempts[-1].headers[OUTAGE_RETRIES_HEADER] == str(down_for)
    assert {e.message_id for e in attempts} == {"m-outage"}
    assert {e.correlation_id for e in attempts} == {"o-1"}
    assert counted_since(before) == {
        "handled": 1,
        "duplicate": 0,
        "retried": down_for,
        "dead_lettered": 0,
    }
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_other_messages_are_handled_while_one_waits_out_an_outage(
    consumer_rig: ConsumerRig,
) -> None:
    back = asyncio.Event()
    handled: list[str] = []

    async def handler(uow: object, body: object, envelope: Envelope) -> None:
        if envelope.message_id == "m-waits" and not back.is_set():
            raise Unavailable("down")
        handled.append(envelope.message_id)

    running = asyncio.create_task(consumer(consumer_rig, handler, prefetch=1).run())
    try:
        await eventually(lambda: _consuming(consumer_rig), message="consuming")
        await consumer_rig.publish("m-waits")
        await consumer_rig.publish("m-other")

        async def other_handled() -> bool:
            return handled == ["m-other"]

        # With one delivery in flight at a time, the waiting message holds nothing up.
        await eventually(other_handled, message="the other message handled during the outage")
        back.set()

        async def both() -> bool:
            return sorted(handled) == ["m-other", "m-waits"]

        await eventually(both, message="the waiting message handled once it is back")
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def test_past_the_outage_window_a_failure_spends_the_delivery_limit(
    consumer_rig: ConsumerRig,
) -> None:
    attempts: list[Envelope] = []

    async def always_down(uow: object, body: object, envelope: Envelope) -> None:
        attempts.append(envelope)
        raise Unavailable("down for good")

    running = asyncio.create_task(
        consumer(consumer_rig, always_down, outage_window_seconds=0.3).run()
    )
    try:
        await eventually(lambda: _consuming(consumer_rig), message="consuming")
        await consumer_rig.publish("m-forever", correlation_id="o-2")
        dead = await eventually(lambda: _dead_letter(consumer_rig), timeout=20, message="dead")
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    # Dead-lettered from the consumer's queue for its delivery limit (it also "died" in the
    # retry queue it waited in, which is how it came back).
    history: Any = (dead.headers or {}).get("x-death", [])
    deaths = {(str(death["queue"]), str(death["reason"])) for death in history}
    assert dead.message_id == "m-forever"
    assert (consumer_rig.queue, "delivery_limit") in deaths
    # Deferred while the window lasted: each copy delivered once. Then the last copy spent
    # every delivery the queue allows, the first and DELIVERY_LIMIT more.
    copies = Counter(e.headers.get(OUTAGE_RETRIES_HEADER, "0") for e in attempts)
    last = max(copies, key=int)
    assert int(last) >= 1, copies
    assert copies[last] == MAX_ATTEMPTS, copies
    assert all(count == 1 for copy, count in copies.items() if copy != last), copies
