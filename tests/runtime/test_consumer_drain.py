"""A consumer told to stop lets the messages it is handling finish and acks them."""

from __future__ import annotations

import asyncio

import aio_pika
from sqlalchemy import MetaData

from meshkit.amqp import Topology
from meshkit.db import Database
from meshkit.events import CONTENT_TYPE
from meshkit.inbox import EventConsumer, inbox_table
from tests.conftest import AMQP_URL
from tests.support import eventually, queue_counts


async def _consuming(connection: aio_pika.abc.AbstractConnection, queue: str) -> bool:
    counts = await queue_counts(connection, queue)
    return counts is not None and counts[1] == 1


async def _consumer_gone(
    connection: aio_pika.abc.AbstractConnection, queue: str
) -> tuple[int, int] | None:
    counts = await queue_counts(connection, queue)
    return counts if counts is not None and counts[1] == 0 else None


async def _back_in_queue(connection: aio_pika.abc.AbstractConnection, queue: str) -> bool:
    return await queue_counts(connection, queue) == (1, 0)


async def _publish(
    channel: aio_pika.abc.AbstractChannel, topology: Topology, message_id: str
) -> None:
    exchange = await topology.declare_exchange(channel)
    await exchange.publish(
        aio_pika.Message(
            b"", message_id=message_id, type="order.created", content_type=CONTENT_TYPE
        ),
        routing_key="order.created",
    )


async def test_a_message_being_handled_at_shutdown_finishes_and_is_acked(
    postgres_url: str, amqp_namespace: str
) -> None:
    topology = Topology(amqp_namespace)
    metadata = MetaData()
    inbox = inbox_table(metadata)
    started = asyncio.Event()
    finished: list[str] = []

    async def slow(session: object, body: object, envelope: object) -> None:
        started.set()
        await asyncio.sleep(0.5)  # the handler's own work, far longer than closing a channel
        finished.append(getattr(envelope, "message_id", ""))

    async with Database(postgres_url) as database:
        async with database.engine.begin() as tables:
            await tables.run_sync(metadata.create_all)
        connection = await aio_pika.connect_robust(AMQP_URL)
        try:
            consumer = EventConsumer(
                database, inbox, connection, topology, "payment_service", {"order.created": slow}
            )
            running = asyncio.create_task(consumer.run())
            channel = await connection.channel()
            queue = topology.queue("payment_service")
            await eventually(lambda: _consuming(connection, queue), message="consuming")
            await _publish(channel, topology, "m-1")
            await asyncio.wait_for(started.wait(), 10)

            running.cancel()  # shutdown arrives while m-1 is in its handler
            await asyncio.wait_for(asyncio.gather(running, return_exceptions=True), 10)

            assert finished == ["m-1"]
            # Acked before the channel closed: nothing is left to deliver again.
            # Once the broker has seen the consumer go, an unacked m-1 would be ready again.
            counts = await eventually(lambda: _consumer_gone(connection, queue), message="gone")
            assert counts == (0, 0)
        finally:
            await connection.close()


async def test_a_handler_that_outlives_the_drain_is_cancelled_and_redelivered(
    postgres_url: str, amqp_namespace: str
) -> None:
    topology = Topology(amqp_namespace)
    metadata = MetaData()
    inbox = inbox_table(metadata)
    started = asyncio.Event()

    async def stuck(session: object, body: object, envelope: object) -> None:
        started.set()
        await asyncio.Future()

    async with Database(postgres_url) as database:
        async with database.engine.begin() as tables:
            await tables.run_sync(metadata.create_all)
        connection = await aio_pika.connect_robust(AMQP_URL)
        try:
            consumer = EventConsumer(
                database,
                inbox,
                connection,
                topology,
                "payment_service",
                {"order.created": stuck},
                drain_seconds=0.2,
            )
            running = asyncio.create_task(consumer.run())
            channel = await connection.channel()
            queue = topology.queue("payment_service")
            await eventually(lambda: _consuming(connection, queue), message="consuming")
            await _publish(channel, topology, "m-2")
            await asyncio.wait_for(started.wait(), 10)

            running.cancel()
            await asyncio.wait_for(asyncio.gather(running, return_exceptions=True), 10)
            # Never acked: back in the queue for the next consumer; its inbox row rolled back.
            await eventually(
                lambda: _back_in_queue(connection, queue), message="m-2 back in the queue"
            )
        finally:
            await connection.close()
