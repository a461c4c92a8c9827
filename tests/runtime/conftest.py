"""A consumer's surroundings on the real broker and database, for the runtime's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from sqlalchemy import MetaData, Table

from meshkit.data import Database, UnitOfWork
from meshkit.messaging import EventConsumer, Handler, Topology, inbox_table, outbox_table
from meshkit.messaging.events import CONTENT_TYPE
from tests.conftest import AMQP_URL
from tests.support import queue_counts

CONSUMER = "payment_service"  # any consumer of the topology; it takes order.created


@dataclass
class ConsumerRig:
    database: Database
    inbox: Table
    connection: AbstractRobustConnection
    channel: AbstractChannel
    topology: Topology

    @property
    def queue(self) -> str:
        return self.topology.queue(CONSUMER)

    def consumer(
        self, handlers: Mapping[str, Handler[UnitOfWork]], **options: Any
    ) -> EventConsumer[UnitOfWork]:
        return EventConsumer(
            self.database, self.inbox, self.connection, self.topology, CONSUMER, handlers, **options
        )

    async def publish(
        self, message_id: str, *, correlation_id: str | None = None, body: bytes = b""
    ) -> None:
        """An order.created (an empty one unless given its body) to the consumer's queue."""
        exchange = await self.topology.declare_exchange(self.channel)
        await exchange.publish(
            aio_pika.Message(
                body,
                message_id=message_id,
                correlation_id=correlation_id,
                type="order.created",
                content_type=CONTENT_TYPE,
            ),
            routing_key="order.created",
        )

    async def counts(self) -> tuple[int, int] | None:
        """(messages ready, consumers) of the consumer's queue, None while it does not exist."""
        return await queue_counts(self.connection, self.queue)


@pytest.fixture
async def consumer_rig(postgres_url: str, amqp_namespace: str) -> AsyncIterator[ConsumerRig]:
    metadata = MetaData()
    inbox = inbox_table(metadata)
    async with Database(postgres_url) as database:
        async with database.engine.begin() as tables:
            await tables.run_sync(metadata.create_all)
        connection = await aio_pika.connect_robust(AMQP_URL)
        try:
            channel = await connection.channel()
            yield ConsumerRig(database, inbox, connection, channel, Topology(amqp_namespace))
        finally:
            await connection.close()


@pytest.fixture
async def outbox_db(postgres_url: str) -> AsyncIterator[tuple[Database, Table]]:
    """A database with an empty outbox table, and the table."""
    metadata = MetaData()
    table = outbox_table(metadata)
    async with Database(postgres_url) as database:
        async with database.engine.begin() as tables:
            await tables.run_sync(metadata.create_all)
        yield database, table
