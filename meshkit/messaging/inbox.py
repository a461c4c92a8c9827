"""Idempotent event consumers: an inbox row per message id, written with the handler's effects.

A message is acked only after the transaction that holds its effects (and its inbox row)
commits. A duplicate finds its row and is acked without running the handler again. A handler
that fails is retried with backoff until the queue's delivery limit sends it to the
dead-letter queue; a message that can never be read goes there at once, and so does one of an
event type the consumer has no handler for.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Generic, TypeVar, cast

from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from aiormq.exceptions import AMQPError, ChannelInvalidStateError
from google.protobuf.message import Message
from sqlalchemy import Column, MetaData, String, Table
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from meshkit.context import correlation_id_var, request_id_var
from meshkit.data.db import Database, UTCDateTime, utcnow
from meshkit.data.transactions import Statement, Transaction
from meshkit.data.unit_of_work import UnitOfWork
from meshkit.messaging.amqp import Topology
from meshkit.messaging.events import OCCURRED_AT_HEADER, Envelope, UnknownEvent, decode_event

logger = logging.getLogger(__name__)

UnitOfWorkT = TypeVar("UnitOfWorkT", bound=UnitOfWork)

# Runs in the unit of work that records the message in the inbox, which commits once it
# returns: its writes and the events it publishes commit with the inbox row.
Handler = Callable[[UnitOfWorkT, Message, Envelope], Awaitable[None]]


def inbox_table(metadata: MetaData) -> Table:
    """The `inbox` table, added to a service's own metadata (and its migrations)."""
    return Table(
        "inbox",
        metadata,
        Column("message_id", String(64), primary_key=True),
        Column("event_type", String(64), nullable=False),
        Column("received_at", UTCDateTime, nullable=False),
    )


def _header(message: AbstractIncomingMessage, name: str) -> str | None:
    value = (message.headers or {}).get(name)
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value) if value is not None else None


def _occurred_at(message: AbstractIncomingMessage) -> datetime:
    precise = _header(message, OCCURRED_AT_HEADER)
    if precise:
        try:
            return datetime.fromisoformat(precise).astimezone(UTC)
        except ValueError:
            pass
    timestamp = message.timestamp
    return timestamp.astimezone(UTC) if isinstance(timestamp, datetime) else utcnow()


def envelope_of(message: AbstractIncomingMessage, event_type: str) -> Envelope:
    return Envelope(
        event_type=event_type,
        message_id=message.message_id or "",
        correlation_id=message.correlation_id or "",
        occurred_at=_occurred_at(message),
        source=message.app_id or "",
        headers={
            str(key): str(value.decode() if isinstance(value, bytes) else value)
            for key, value in (message.headers or {}).items()
            if isinstance(value, str | bytes)
        },
    )


class EventConsumer(Generic[UnitOfWorkT]):
    """Consumes the service's queue and runs the handler registered for each event type, each
    in a unit of work of its own (the service's, which attaches its repositories)."""

    def __init__(
        self,
        database: Database,
        inbox: Table,
        connection: AbstractRobustConnection,
        topology: Topology,
        consumer: str,
        handlers: Mapping[str, Handler[UnitOfWorkT]],
        *,
        unit_of_work: Callable[[], UnitOfWorkT] | None = None,
        prefetch: int = 64,
        retry_base_seconds: float = 0.2,
        retry_max_seconds: float = 5.0,
        drain_seconds: float = 5.0,
    ) -> None:
        self.db = database
        self.inbox = inbox
        self.connection = connection
        self.topology = topology
        self.consumer = consumer
        self.handlers = dict(handlers)
        self.unit_of_work: Callable[[], UnitOfWorkT] = unit_of_work or cast(
            Callable[[], UnitOfWorkT], functools.partial(UnitOfWork, database)
        )
        self.prefetch = prefetch
        self.retry_base = retry_base_seconds
        self.retry_max = retry_max_seconds
        self.drain_seconds = drain_seconds
        # Built once and run with parameters: building the statement per message (its
        # construction and cache key) cost more CPU than running it, and every message runs
        # this one.
        insert = sqlite_insert if database.is_sqlite else postgresql_insert
        self._record_delivery = Statement(
            insert(inbox).on_conflict_do_nothing(index_elements=["message_id"])
        )
        # The tasks aio-pika runs `handle` in, one per message being handled.
        self._in_flight: set[asyncio.Task[object]] = set()

    async def run(self) -> None:
        """Consume until cancelled."""
        channel = await self.connection.channel()
        try:
            await channel.set_qos(prefetch_count=self.prefetch)
            # Bound to the event types it has handlers for: its own declaration never adds a
            # binding that would bring it events to dead-letter.
            queue = await self.topology.declare_consumer_queue(
                channel, self.consumer, self.handlers
            )
            tag = await queue.consume(self.handle)
            logger.info("consuming %s", queue.name, extra={"event_types": sorted(self.handlers)})
            try:
                await asyncio.Future()  # until cancelled
            finally:
                if not channel.is_closed:
                    await queue.cancel(tag)
                await self._drain()
        finally:
            if not channel.is_closed:
                await channel.close()

    async def _drain(self) -> None:
        """Let the messages being handled finish, for up to `drain_seconds`: their acks need
        the channel that closes next. What is still running then is cancelled; its
        transaction rolls back and the broker delivers the message again."""
        if not self._in_flight:
            return
        _, unfinished = await asyncio.wait(set(self._in_flight), timeout=self.drain_seconds)
        for task in unfinished:
            task.cancel()
        if unfinished:
            logger.warning(
                "%d message(s) still being handled at shutdown; the broker redelivers them",
                len(unfinished),
            )

    async def handle(self, message: AbstractIncomingMessage) -> None:
        event_type = message.type or message.routing_key or ""
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        tokens = (
            correlation_id_var.set(message.correlation_id or None),
            request_id_var.set(_header(message, "x-request-id")),
        )
        try:
            await self._handle(message, event_type)
        except (AMQPError, ChannelInvalidStateError) as exc:
            # The channel closed under an ack or a nack (a broker restart, say): the message
            # is delivered again, and the inbox makes the repeat a no-op.
            logger.warning(
                "could not settle %s %s: %s; the broker redelivers it",
                event_type,
                message.message_id,
                exc,
            )
        finally:
            request_id_var.reset(tokens[1])
            correlation_id_var.reset(tokens[0])
            if task is not None:
                self._in_flight.discard(task)

    async def _handle(self, message: AbstractIncomingMessage, event_type: str) -> None:
        handler = self.handlers.get(event_type)
        if handler is None:
            # A binding its handlers do not cover (left on the queue by an earlier version,
            # say), or a type that disagrees with its key. Acked, the event would be lost
            # unseen; dead-lettered, it is kept, and this error says where to look.
            logger.error(
                "dead-lettering %s: %s has no handler for it",
                event_type or "a message without a type",
                self.consumer,
                extra={
                    "event_type": event_type,
                    "routing_key": message.routing_key,
                    "message_id": message.message_id,
                },
            )
            await message.reject(requeue=False)
            return
        try:
            if not message.message_id:
                raise UnknownEvent("message without a message_id cannot be de-duplicated")
            body = decode_event(event_type, message.body)
        except UnknownEvent as exc:
            logger.error(
                "dead-lettering unreadable message: %s", exc, extra={"event_type": event_type}
            )
            await message.reject(requeue=False)
            return
        envelope = envelope_of(message, event_type)
        try:
            async with self.unit_of_work() as uow:
                if await self._first_delivery(uow.tx, envelope):
                    await handler(uow, body, envelope)
                    await uow.commit()
                else:
                    logger.info("duplicate %s %s ignored", event_type, envelope.message_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            attempt = self._delivery_count(message) + 1
            delay = min(self.retry_max, self.retry_base * 2 ** (attempt - 1)) * random.uniform(
                0.5, 1
            )
            logger.exception(
                "handling %s failed (attempt %d); retrying in %.2fs",
                event_type,
                attempt,
                delay,
                extra={"message_id": envelope.message_id},
            )
            # The delay holds one prefetch slot, not the consumer: other messages go on.
            await asyncio.sleep(delay)
            await message.nack(requeue=True)
            return
        await message.ack()

    async def _first_delivery(self, tx: Transaction, envelope: Envelope) -> bool:
        written = await tx.execute(
            self._record_delivery,
            {
                "message_id": envelope.message_id,
                "event_type": envelope.event_type,
                "received_at": utcnow(),
            },
        )
        return written > 0

    @staticmethod
    def _delivery_count(message: AbstractIncomingMessage) -> int:
        value = (message.headers or {}).get("x-delivery-count")
        return int(value) if isinstance(value, int) else 0
