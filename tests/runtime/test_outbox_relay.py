"""The outbox relay on the real broker and database: a broker that hangs does not hold the
batch it claimed away from the other replicas."""

from __future__ import annotations

import asyncio

import aio_pika
import pytest
from sqlalchemy import Table

from ecommerce.events.v1 import events_pb2
from localmesh.faultproxy import FaultyProxy, Mode
from meshkit.data import Database, UnitOfWork
from meshkit.messaging import Outbox, OutboxRelay, Topology
from tests.conftest import AMQP_URL
from tests.support import eventually

pytestmark = pytest.mark.integration


async def _locked_unsent(database: Database) -> bool:
    """Whether an unsent row exists that another relay's claim would skip (it is locked)."""
    async with database.driver_connection() as connection, connection.transaction():
        unsent = await connection.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        free = await connection.fetchval(
            "SELECT count(*) FROM (SELECT id FROM outbox WHERE sent_at IS NULL"
            " FOR UPDATE SKIP LOCKED) AS claimable"
        )
    return bool(unsent) and not free


async def test_a_batch_whose_broker_hangs_is_released_to_another_replica(
    outbox_db: tuple[Database, Table], amqp_namespace: str
) -> None:
    database, table = outbox_db
    topology = Topology(amqp_namespace)
    direct = await aio_pika.connect_robust(AMQP_URL)
    host, port = AMQP_URL.split("@", 1)[1].rstrip("/").split(":")
    proxy = await FaultyProxy(host, int(port)).start()
    hung = await aio_pika.connect_robust(f"amqp://guest:guest@{proxy.endpoint}/")
    # Written by a third process, and no grace: neither relay has the row handed over, and
    # both claim it at once (`meshkit.messaging.outbox`).
    writer = Outbox(table, "order_service")
    stuck = OutboxRelay(
        database,
        Outbox(table, "order_service"),
        hung,
        topology,
        publish_timeout=0.5,
        handoff_grace_seconds=0,
    )
    healthy = OutboxRelay(
        database,
        Outbox(table, "order_service"),
        direct,
        topology,
        poll_interval=0.05,
        handoff_grace_seconds=0,
    )
    tasks: list[asyncio.Task[None]] = []
    try:
        await topology.declare_all(direct)
        assert await stuck.relay_batch() == 0  # opens its channel while the broker answers
        tasks.append(asyncio.create_task(stuck.run()))
        proxy.set_mode(Mode.STALL)
        async with UnitOfWork(database, writer) as uow:
            uow.publish(events_pb2.OrderCreated(order_id="o-1"), correlation_id="o-1")
            await uow.commit()
        # The stuck relay claimed the row and waits for a confirm that never comes.
        await eventually(lambda: _locked_unsent(database), message="the row claimed")
        tasks.append(asyncio.create_task(healthy.run()))

        channel = await direct.channel()
        queue = await channel.get_queue(topology.queue("payment_service"))

        async def delivered() -> aio_pika.abc.AbstractIncomingMessage | None:
            return await queue.get(no_ack=True, fail=False)

        message = await eventually(delivered, timeout=15, message="the event published")
        assert message.correlation_id == "o-1"
        assert message.app_id == "order_service"

        async def all_sent() -> bool:
            # The relay marks the row sent once the broker confirms, which can be after the
            # message was already taken off the queue here.
            async with database.driver_connection() as connection:
                unsent = "SELECT count(*) FROM outbox WHERE sent_at IS NULL"
                return bool(await connection.fetchval(unsent) == 0)

        await eventually(all_sent, timeout=5, message="the row marked sent")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await proxy.close()
        await hung.close()
        await direct.close()
