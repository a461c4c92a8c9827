"""The relay publishes what its own process commits at once, from memory, with no claim; rows
nobody handed over (another process's) go by its poll once past the grace. A handed row that
could not be published, or waited too long, stops the hand-over: the poll takes every row in
order until it has caught up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import aio_pika
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Table

from ecommerce.events.v1 import events_pb2
from localmesh.faultproxy import FaultyProxy, Mode
from meshkit.data import Database, UnitOfWork, utcnow
from meshkit.messaging import Outbox, OutboxRelay, Topology
from tests.conftest import AMQP_URL
from tests.support import eventually

pytestmark = pytest.mark.integration

GRACE_SECONDS = 1.5


@pytest.fixture
async def broker(amqp_namespace: str) -> AsyncIterator[tuple[Topology, aio_pika.abc.AbstractQueue]]:
    """The namespace's topology, declared, and the payment service's queue to read."""
    topology = Topology(amqp_namespace)
    connection = await aio_pika.connect_robust(AMQP_URL)
    try:
        await topology.declare_all(connection)
        channel = await connection.channel()
        yield topology, await channel.get_queue(topology.queue("payment_service"))
    finally:
        await connection.close()


async def commit(database: Database, outbox: Outbox, order_id: str) -> None:
    async with UnitOfWork(database, outbox) as uow:
        uow.publish(events_pb2.OrderCreated(order_id=order_id), correlation_id=order_id)
        await uow.commit()


async def delivered(queue: aio_pika.abc.AbstractQueue, timeout: float) -> list[str]:
    """The correlation ids of the messages that reach `queue` within `timeout` seconds."""
    deadline, seen = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        message = await queue.get(no_ack=True, fail=False)
        if message is None:
            await asyncio.sleep(0.05)
        else:
            seen.append(message.correlation_id or "")
    return seen


async def unsent(database: Database) -> int:
    async with database.driver_connection() as connection:
        count: int = await connection.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
    return count


async def all_sent(database: Database) -> bool:
    return await unsent(database) == 0


async def test_its_own_commits_go_at_once_and_anothers_rows_after_the_grace(
    outbox_db: tuple[Database, Table], broker: tuple[Topology, aio_pika.abc.AbstractQueue]
) -> None:
    (database, table), (topology, queue) = outbox_db, broker
    connection = await aio_pika.connect_robust(AMQP_URL)
    outbox = Outbox(table, "order_service")
    relay = OutboxRelay(database, outbox, connection, topology, handoff_grace_seconds=GRACE_SECONDS)
    running = asyncio.create_task(relay.run())
    try:
        began = time.monotonic()
        await commit(database, Outbox(table, "order_service"), "another-process")
        await commit(database, outbox, "this-process")
        # Its own at once; the other's is not claimed while a publisher of it may be alive.
        assert await delivered(queue, GRACE_SECONDS * 0.6) == ["this-process"]
        assert await eventually(lambda: delivered(queue, 0.2), timeout=10) == ["another-process"]
        assert time.monotonic() - began >= GRACE_SECONDS
        assert await eventually(lambda: all_sent(database), message="both marked sent")
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await connection.close()


def publish_failures() -> float:
    sample = REGISTRY.get_sample_value(
        "outbox_publish_failures_total", {"service": "order_service"}
    )
    return sample or 0.0


async def test_after_a_failed_publish_every_row_goes_by_the_poll_in_order_then_handed_again(
    outbox_db: tuple[Database, Table], broker: tuple[Topology, aio_pika.abc.AbstractQueue]
) -> None:
    (database, table), (topology, queue) = outbox_db, broker
    host, port = AMQP_URL.split("@", 1)[1].rstrip("/").split(":")
    async with FaultyProxy(host, int(port)) as proxy:
        connection = await aio_pika.connect_robust(
            f"amqp://guest:guest@{proxy.endpoint}/", reconnect_interval=0.2
        )
        outbox = Outbox(table, "order_service")
        # A second for the poll's publish: the channel the stall broke fails it that soon.
        relay = OutboxRelay(
            database,
            outbox,
            connection,
            topology,
            publish_timeout=1.0,
            handoff_grace_seconds=GRACE_SECONDS,
        )
        await relay._exchange_for_publishing()  # its channel open while the broker answers
        failed_before = publish_failures()
        proxy.set_mode(Mode.STALL)
        await commit(database, outbox, "o-1")
        with pytest.raises(TimeoutError):  # no confirm within a quarter of the grace
            await relay.relay_handed()
        assert publish_failures() == failed_before + 1
        # Stopped: what commits meanwhile waits for the poll, behind what failed.
        assert not outbox.handing_over and not outbox.handed
        await commit(database, outbox, "o-2")
        assert not outbox.handed and await unsent(database) == 2
        proxy.set_mode(Mode.FORWARD)
        running = asyncio.create_task(relay.run())
        try:
            seen = await eventually(lambda: delivered(queue, 0.3), timeout=20)
            while len(seen) < 2:
                seen += await delivered(queue, 0.3)
            # In order, and each once: without the grace, since nothing was handed over.
            assert seen == ["o-1", "o-2"]
            assert await eventually(lambda: all_sent(database), message="marked sent")
            assert outbox.handing_over
            await commit(database, outbox, "o-3")
            assert await delivered(queue, GRACE_SECONDS * 0.6) == ["o-3"]
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            await connection.close()


async def test_a_handed_row_too_old_to_publish_stops_the_hand_over(
    outbox_db: tuple[Database, Table], broker: tuple[Topology, aio_pika.abc.AbstractQueue]
) -> None:
    (database, table), (topology, queue) = outbox_db, broker
    connection = await aio_pika.connect_robust(AMQP_URL)
    try:
        outbox = Outbox(table, "order_service")
        relay = OutboxRelay(
            database, outbox, connection, topology, handoff_grace_seconds=GRACE_SECONDS
        )
        await commit(database, outbox, "o-late")
        (row,) = outbox.handed
        # Handed over long enough ago that its publish could outlast the grace.
        row["created_at"] = utcnow() - timedelta(seconds=GRACE_SECONDS * 0.3)
        assert await relay.relay_handed() == 0
        assert not outbox.handing_over and not outbox.handed
        assert await delivered(queue, 0.3) == [] and await unsent(database) == 1
        # The poll takes it at once, the hand-over stopped.
        assert await relay.relay_batch() == 1
        assert outbox.handing_over
        assert await delivered(queue, 0.3) == ["o-late"]
    finally:
        await connection.close()
