"""A consumer binds its queue to the event types it has handlers for, and to no others."""

from __future__ import annotations

import asyncio

import aio_pika
import pytest

from tests.runtime.conftest import ConsumerRig
from tests.support import eventually


async def _consuming(rig: ConsumerRig) -> bool:
    counts = await rig.counts()
    return counts is not None and counts[1] == 1


async def test_the_queue_takes_the_event_types_with_handlers_only(
    consumer_rig: ConsumerRig,
) -> None:
    async def ignore(tx: object, body: object, envelope: object) -> None:
        pass

    # The namespace holds this consumer's queue alone: what it is not bound to goes nowhere.
    running = asyncio.create_task(consumer_rig.consumer({"order.created": ignore}).run())
    channel = await consumer_rig.connection.channel(publisher_confirms=True, on_return_raises=True)
    try:
        await eventually(lambda: _consuming(consumer_rig), message="consuming")
        exchange = await consumer_rig.topology.declare_exchange(channel)
        await exchange.publish(
            aio_pika.Message(b"", message_id="routed", type="order.created"),
            routing_key="order.created",
            mandatory=True,
        )
        # order.cancelled is the topology's for this consumer too, but it has no handler here.
        with pytest.raises(aio_pika.exceptions.DeliveryError):
            await exchange.publish(
                aio_pika.Message(b"", message_id="unrouted", type="order.cancelled"),
                routing_key="order.cancelled",
                mandatory=True,
            )
    finally:
        await channel.close()
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
