"""The outbox relay's metrics on the real broker, on each backend: the rows it published, the
batches it could not publish, and the backlog it measures while it runs."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta

import aio_pika
import pytest
from aio_pika.abc import AbstractRobustConnection
from google.protobuf.message import Message
from prometheus_client import REGISTRY
from sqlalchemy import MetaData, Table, func, select

from ecommerce.events.v1 import events_pb2
from meshkit.data import Database, UnitOfWork, utcnow
from meshkit.messaging import Outbox, OutboxRelay, Topology, outbox_table
from tests.conftest import AMQP_URL, DatabaseFactory
from tests.support import eventually

pytestmark = pytest.mark.integration


@dataclass
class Rig:
    database: Database
    table: Table
    outbox: Outbox
    connection: AbstractRobustConnection
    topology: Topology

    @property
    def service(self) -> str:
        return self.outbox.source

    def relay(self) -> OutboxRelay:
        # Measuring on every pass, and retrying soon after a failure: the tests wait for both.
        return OutboxRelay(
            self.database,
            self.outbox,
            self.connection,
            self.topology,
            poll_interval=0.05,
            backlog_interval=0.0,
            max_backoff=0.2,
        )

    async def write(self, body: Message, *, age_seconds: float = 0.0) -> None:
        """An event in the outbox, written `age_seconds` ago."""
        async with UnitOfWork(self.database) as uow:
            envelope = self.outbox.envelope(body, correlation_id="o-1")
            envelope = replace(envelope, occurred_at=utcnow() - timedelta(seconds=age_seconds))
            await self.outbox.write(uow.tx, [(envelope, body)])
            await uow.commit()

    def published(self, event_type: str) -> float:
        labels = {"service": self.service, "event_type": event_type}
        return REGISTRY.get_sample_value("outbox_events_published_total", labels) or 0.0

    def gauge(self, name: str) -> float | None:
        return REGISTRY.get_sample_value(name, {"service": self.service})

    @property
    def failures(self) -> float:
        labels = {"service": self.service}
        return REGISTRY.get_sample_value("outbox_publish_failures_total", labels) or 0.0

    async def unsent(self) -> int:
        async with self.database.session() as session:
            count = await session.scalar(
                select(func.count()).select_from(self.table).where(self.table.c.sent_at.is_(None))
            )
        return int(count or 0)


@pytest.fixture
async def rig(database_on_each_backend: DatabaseFactory, amqp_namespace: str) -> AsyncIterator[Rig]:
    metadata = MetaData()
    table = outbox_table(metadata)
    database = await database_on_each_backend(metadata)
    connection = await aio_pika.connect_robust(AMQP_URL)
    try:
        # A service of its own: the gauges of the other tests' relays are not this one's.
        outbox = Outbox(table, f"service_{uuid.uuid4().hex[:8]}")
        yield Rig(database, table, outbox, connection, Topology(amqp_namespace))
    finally:
        await connection.close()


async def running(relay: OutboxRelay, until: Callable[[], Awaitable[object]], what: str) -> None:
    """Run the relay until `until` holds."""
    task = asyncio.create_task(relay.run())
    try:
        await eventually(until, timeout=15, message=what)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_the_relay_counts_what_it_publishes_and_measures_the_backlog(rig: Rig) -> None:
    await rig.topology.declare_all(rig.connection)
    await rig.write(events_pb2.OrderCreated(order_id="o-1"), age_seconds=60)
    await rig.write(events_pb2.OrderCreated(order_id="o-2"))
    await rig.write(events_pb2.OrderCancelled(order_id="o-1"))
    relay = rig.relay()

    await relay.measure_backlog()
    assert rig.gauge("outbox_events_pending") == 3
    age = rig.gauge("outbox_oldest_pending_age_seconds")
    assert age is not None and 60 <= age < 120

    async def all_sent_and_measured() -> bool:
        return (
            await rig.unsent() == 0
            and rig.gauge("outbox_events_pending") == 0
            and rig.gauge("outbox_oldest_pending_age_seconds") == 0
        )

    await running(relay, all_sent_and_measured, "the backlog sent and measured empty")
    assert (rig.published("order.created"), rig.published("order.cancelled")) == (2, 1)
    assert rig.failures == 0


async def test_a_batch_that_cannot_be_published_counts_as_a_failure_and_stays_pending(
    rig: Rig,
) -> None:
    # No queue is bound yet: the broker returns the mandatory message, and the publish fails.
    await rig.write(events_pb2.OrderCreated(order_id="o-1"))
    relay = rig.relay()

    async def failed() -> bool:
        return rig.failures >= 1 and rig.gauge("outbox_events_pending") == 1

    await running(relay, failed, "a failed batch counted, its row pending")
    assert await rig.unsent() == 1
    assert rig.published("order.created") == 0

    await rig.topology.declare_all(rig.connection)

    async def published() -> bool:
        return rig.published("order.created") == 1 and rig.gauge("outbox_events_pending") == 0

    await running(relay, published, "the row published once a queue is bound")
    assert await rig.unsent() == 0
