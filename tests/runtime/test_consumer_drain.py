"""A consumer told to stop lets the messages it is handling finish and acks them."""

from __future__ import annotations

import asyncio

from tests.runtime.conftest import ConsumerRig
from tests.support import eventually


async def _consuming(rig: ConsumerRig) -> bool:
    counts = await rig.counts()
    return counts is not None and counts[1] == 1


async def _consumer_gone(rig: ConsumerRig) -> tuple[int, int] | None:
    counts = await rig.counts()
    return counts if counts is not None and counts[1] == 0 else None


async def test_a_message_being_handled_at_shutdown_finishes_and_is_acked(
    consumer_rig: ConsumerRig,
) -> None:
    started = asyncio.Event()
    finished: list[str] = []

    async def slow(session: object, body: object, envelope: object) -> None:
        started.set()
        await asyncio.sleep(0.5)  # the handler's own work, far longer than closing a channel
        finished.append(getattr(envelope, "message_id", ""))

    running = asyncio.create_task(consumer_rig.consumer({"order.created": slow}).run())
    await eventually(lambda: _consuming(consumer_rig), message="consuming")
    await consumer_rig.publish("m-1")
    await asyncio.wait_for(started.wait(), 10)

    running.cancel()  # shutdown arrives while m-1 is in its handler
    await asyncio.wait_for(asyncio.gather(running, return_exceptions=True), 10)

    assert finished == ["m-1"]
    # Once the broker has seen the consumer go, an unacked m-1 would be ready again.
    assert await eventually(lambda: _consumer_gone(consumer_rig), message="gone") == (0, 0)


async def test_a_handler_that_outlives_the_drain_is_cancelled_and_redelivered(
    consumer_rig: ConsumerRig,
) -> None:
    started = asyncio.Event()

    async def stuck(session: object, body: object, envelope: object) -> None:
        started.set()
        await asyncio.Future()

    consumer = consumer_rig.consumer({"order.created": stuck}, drain_seconds=0.2)
    running = asyncio.create_task(consumer.run())
    await eventually(lambda: _consuming(consumer_rig), message="consuming")
    await consumer_rig.publish("m-2")
    await asyncio.wait_for(started.wait(), 10)

    running.cancel()
    await asyncio.wait_for(asyncio.gather(running, return_exceptions=True), 10)
    # Never acked: back in the queue for the next consumer; its inbox row rolled back.
    assert await eventually(lambda: _consumer_gone(consumer_rig), message="gone") == (1, 0)
