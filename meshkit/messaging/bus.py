"""A service's link to the event bus: its outbox, the relay that publishes it, its consumer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass

from aio_pika.abc import AbstractRobustConnection
from sqlalchemy import Table

from meshkit.data.db import Database
from meshkit.messaging import amqp
from meshkit.messaging.inbox import EventConsumer, UnitOfWorkT
from meshkit.messaging.outbox import Outbox, OutboxRelay
from meshkit.messaging.subscriptions import SubscriptionMismatch, Subscriptions
from meshkit.settings import ServiceSettings


@dataclass
class Messaging:
    settings: ServiceSettings
    database: Database
    connection: AbstractRobustConnection
    topology: amqp.Topology
    # None for a service that only consumes: it runs no relay.
    outbox: Outbox | None
    inbox: Table

    @classmethod
    async def open(
        cls,
        settings: ServiceSettings,
        stack: AsyncExitStack,
        database: Database,
        *,
        outbox_table: Table | None,
        inbox_table: Table,
    ) -> Messaging:
        """Connect (failing fast without a broker) and declare the topology; closed by `stack`."""
        connection = await amqp.connect(settings.amqp_url, name=settings.service_name)
        stack.push_async_callback(connection.close)
        topology = amqp.Topology(settings.amqp_namespace)
        await topology.declare_all(connection)
        return cls(
            settings=settings,
            database=database,
            connection=connection,
            topology=topology,
            outbox=None if outbox_table is None else Outbox(outbox_table, settings.service_name),
            inbox=inbox_table,
        )

    def jobs(
        self, subscriptions: Subscriptions[UnitOfWorkT]
    ) -> list[Callable[[], Awaitable[None]]]:
        """The outbox relay (for a service that publishes), and the consumer of the service's
        subscriptions.

        Raises SubscriptionMismatch, which ends the process, when the subscriptions disagree
        with the topology or are another service's.
        """
        if subscriptions.consumer != self.settings.service_name:
            raise SubscriptionMismatch(
                self.settings.service_name,
                [f"it was given the subscriptions of {subscriptions.consumer}"],
            )
        subscriptions.check()
        consumer = EventConsumer(
            self.database,
            self.inbox,
            self.connection,
            self.topology,
            subscriptions.consumer,
            subscriptions.handlers,
            unit_of_work=subscriptions.unit_of_work,
            retry_base_seconds=self.settings.consumer_retry_base_seconds,
            retry_max_seconds=self.settings.consumer_retry_max_seconds,
            outage_window_seconds=self.settings.consumer_outage_window_seconds,
            batch_limit=self.settings.consumer_batch_limit,
            batch_budget_seconds=self.settings.consumer_batch_seconds,
        )
        if self.outbox is None:
            return [consumer.run]
        relay = OutboxRelay(self.database, self.outbox, self.connection, self.topology)
        return [relay.run, consumer.run]
