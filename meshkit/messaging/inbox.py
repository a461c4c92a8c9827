"""Idempotent event consumers: an inbox row per message id, written with the handler's effects.

A message is acked only after the transaction that holds its effects (and its inbox row)
commits. A duplicate finds its row and is acked without running the handler again. A handler
that fails is retried with backoff until the queue's delivery limit sends it to the
dead-letter queue; a message that can never be read goes there at once, and so does one of an
event type the consumer has no handler for. Every message going there is logged once, at
ERROR, and each message is counted by what became of it (`meshkit.messaging.metrics`).

A handler that fails because a dependency is down (`meshkit.failures`) would
succeed later: such a message is not given back, which would spend the few deliveries meant
for poison, but published to a retry queue that returns it after a wait (1 s, 4 s, 16 s,
then every minute), and acked. That goes on for the outage window (an hour by default) from
its first such failure; after it, the message is treated as any other failure.

Under load, the messages that arrive while one is being handled share its transaction
(`meshkit.messaging.batches`): their inbox rows and effects commit together or not at all.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Generic, TypeVar, cast

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection
from aiormq.exceptions import AMQPError, ChannelInvalidStateError
from google.protobuf.message import Message
from prometheus_client import Counter
from sqlalchemy import Column, MetaData, String, Table
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from meshkit.context import correlation_id_var, request_id_var
from meshkit.data.db import Database, UTCDateTime, utcnow
from meshkit.data.transactions import Statement, Transaction
from meshkit.data.unit_of_work import UnitOfWork
from meshkit.failures import dependency_down
from meshkit.messaging.amqp import DELIVERY_LIMIT, Topology, fresh_copy
from meshkit.messaging.batches import DeliveryBatch, Verdict
from meshkit.messaging.events import OCCURRED_AT_HEADER, Envelope, UnknownEvent, decode_event
from meshkit.messaging.metrics import (
    DEAD_LETTERED,
    DUPLICATE,
    EVENTS_CONSUMED,
    HANDLED,
    OUTCOMES,
    RETRIED,
    event_type_label,
)
from meshkit.messaging.tracing import processing
from meshkit.telemetry import tracer

logger = logging.getLogger(__name__)

# How many times a message is delivered before it is dead-lettered. A quorum queue counts in
# `x-delivery-count` the earlier deliveries that came back (a reject, a lost channel), and
# dead-letters a message that comes back once that count would exceed the delivery limit
# (RabbitMQ 3.10): the first delivery and DELIVERY_LIMIT more. A failed attempt is given
# back with a reject, not a nack: from RabbitMQ 4.3 a nack no longer counts.
MAX_ATTEMPTS = DELIVERY_LIMIT + 1

UnitOfWorkT = TypeVar("UnitOfWorkT", bound=UnitOfWork)

# When a message's handler first found a dependency down (Unix time), and how many times it
# has waited in a retry queue since.
# How long the broker may take to confirm a deferred copy (a broker in a memory alarm holds
# publishers); past it the message is given back the ordinary way.
DEFER_TIMEOUT_SECONDS = 10.0
OUTAGE_SINCE_HEADER = "outage-since"
OUTAGE_RETRIES_HEADER = "outage-retries"

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


def _float_header(value: object, default: float) -> float:
    try:
        return float(value.decode() if isinstance(value, bytes) else value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default


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
        batch_limit: int = 32,
        batch_budget_seconds: float = 0.05,
        retry_base_seconds: float = 0.2,
        retry_max_seconds: float = 5.0,
        drain_seconds: float = 5.0,
        outage_window_seconds: float = 3600.0,
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
        if batch_limit < 1:
            raise ValueError(
                f"batch_limit is at least 1 (a transaction per message), not {batch_limit}"
            )
        # How many messages one transaction takes at most; 1 handles each in its own.
        self.batch_limit = batch_limit
        # How long a batch takes joiners from its first handler's start (`DeliveryBatch`).
        self.batch_budget = batch_budget_seconds
        self._batch: DeliveryBatch[UnitOfWorkT] | None = None
        self.retry_base = retry_base_seconds
        self.retry_max = retry_max_seconds
        self.drain_seconds = drain_seconds
        self.outage_window = outage_window_seconds
        # The channel it consumes on, which also publishes to its retry queues.
        self._channel: AbstractChannel | None = None
        # Built once and run with parameters: building the statement per message (its
        # construction and cache key) cost more CPU than running it, and every message runs
        # this one.
        insert = sqlite_insert if database.is_sqlite else postgresql_insert
        self._record_delivery = Statement(
            insert(inbox).on_conflict_do_nothing(index_elements=["message_id"])
        )
        # The tasks aio-pika runs `handle` in, one per message being handled.
        self._in_flight: set[asyncio.Task[object]] = set()
        # The counter of each event type and outcome, bound once: `labels()` validates and
        # locks on every call, and every message is counted.
        self._consumed: dict[tuple[str, str], Counter] = {}
        for event_type in self.handlers:
            for outcome in OUTCOMES:
                self._counter(event_type, outcome)

    async def run(self) -> None:
        """Consume until cancelled."""
        # A copy the broker cannot route to its retry queue comes back as an error, so that
        # the original is not acked (`_defer`).
        channel = self._channel = await self.connection.channel(on_return_raises=True)
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
            if tracer() is None:
                await self._handle(message, event_type)
            else:
                with processing(
                    event_type,
                    self.consumer,
                    message.message_id or "",
                    dict(message.headers or {}),
                ):
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
            self._dead_lettered(
                message,
                event_type,
                f"{self.consumer} has no handler for it",
                routing_key=message.routing_key,
            )
            await message.reject(requeue=False)
            return
        try:
            if not message.message_id:
                raise UnknownEvent("message without a message_id cannot be de-duplicated")
            body = decode_event(event_type, message.body)
        except UnknownEvent as exc:
            self._dead_lettered(message, event_type, f"it cannot be read: {exc}")
            await message.reject(requeue=False)
            return
        envelope = envelope_of(message, event_type)
        work = functools.partial(self._deliver, handler, body, envelope)
        try:
            verdict, outcome = await self._batch_to_join().run(work)
            while verdict is Verdict.LATE:
                verdict, outcome = await self._batch_to_join().run(work)
            if verdict is Verdict.ALONE:
                # Its batch did not commit (this message or another failed in it): handled
                # alone, as if it had come alone, so that its own error is the one that counts.
                async with self.unit_of_work() as uow:
                    outcome = await work(uow)
                    await uow.commit()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._failed(message, event_type, exc)
            return
        assert outcome is not None
        self._count(event_type, outcome)
        await message.ack()

    def _batch_to_join(self) -> DeliveryBatch[UnitOfWorkT]:
        """The batch being handled, while it takes more; else a new one."""
        if self._batch is None or not self._batch.open:
            self._batch = DeliveryBatch(self.unit_of_work(), self.batch_limit, self.batch_budget)
        return self._batch

    async def _deliver(
        self, handler: Handler[UnitOfWorkT], body: Message, envelope: Envelope, uow: UnitOfWorkT
    ) -> str:
        """Record the message in the inbox and run its handler, in `uow`; a duplicate's
        handler does not run."""
        if not await self._first_delivery(uow.tx, envelope):
            logger.info("duplicate %s %s ignored", envelope.event_type, envelope.message_id)
            return DUPLICATE
        await handler(uow, body, envelope)
        return HANDLED

    async def _failed(
        self, message: AbstractIncomingMessage, event_type: str, error: Exception
    ) -> None:
        """Give a message whose handling failed back to the queue: to be delivered again after
        a delay, or, after its last attempt, for the queue to dead-letter it at once. One
        whose handler found a dependency down waits in a retry queue instead (`_defer`)."""
        if dependency_down(error) and await self._defer(message, event_type, error):
            return
        attempt = self._delivery_count(message) + 1
        if attempt >= MAX_ATTEMPTS:
            # The last return the queue takes: the broker dead-letters the message at once
            # ("delivery_limit") and tells no one, so it is said here.
            self._dead_lettered(
                message,
                event_type,
                f"attempt {attempt} of {MAX_ATTEMPTS} failed: {type(error).__name__}: {error}",
                exc_info=error,
                attempt=attempt,
            )
            await message.reject(requeue=True)
            return
        delay = min(self.retry_max, self.retry_base * 2 ** (attempt - 1)) * random.uniform(0.5, 1)
        # A warning: the message is not lost yet. The error is the dead-lettering, once.
        logger.warning(
            "handling %s failed (attempt %d of %d); retrying in %.2fs",
            event_type,
            attempt,
            MAX_ATTEMPTS,
            delay,
            exc_info=error,
            extra={"message_id": message.message_id},
        )
        self._count(event_type, RETRIED)
        # The delay holds one prefetch slot, not the consumer: other messages go on.
        await asyncio.sleep(delay)
        await message.reject(requeue=True)

    async def _defer(
        self, message: AbstractIncomingMessage, event_type: str, error: Exception
    ) -> bool:
        """Publish the message to the retry queue of its next wait and ack it, while its outage
        window lasts; False, having done nothing, once it is over or when the publish fails."""
        headers = dict(message.headers or {})
        now = time.time()
        since = _float_header(headers.get(OUTAGE_SINCE_HEADER), now)
        if not math.isfinite(since) or since > now:
            since = now  # not a time this replica can trust: the window starts now
        if now - since > self.outage_window or self._channel is None:
            return False
        retries = int(_float_header(headers.get(OUTAGE_RETRIES_HEADER), 0))
        delays = self.topology.retry_delays_seconds
        delay = delays[min(retries, len(delays) - 1)]
        copy = fresh_copy(
            message,
            add={OUTAGE_SINCE_HEADER: repr(since), OUTAGE_RETRIES_HEADER: str(retries + 1)},
        )
        try:
            # Confirmed by the broker before the original is acked: never neither of them.
            await self._channel.default_exchange.publish(
                copy,
                routing_key=self.topology.retry_queue(self.consumer, delay),
                timeout=DEFER_TIMEOUT_SECONDS,
            )
        except Exception as exc:  # the broker going too: give it back the ordinary way
            logger.warning("could not defer %s %s: %s", event_type, message.message_id, exc)
            return False
        logger.warning(
            "handling %s failed: a dependency is down (%s: %s); retrying in %gs "
            "(retry %d, the first %.0fs ago)",
            event_type,
            type(error).__name__,
            error,
            delay,
            retries + 1,
            now - since,
            extra={"message_id": message.message_id},
        )
        self._count(event_type, RETRIED)
        await message.ack()
        return True

    def _dead_lettered(
        self,
        message: AbstractIncomingMessage,
        event_type: str,
        reason: str,
        *,
        exc_info: BaseException | None = None,
        **extra: object,
    ) -> None:
        """Log and count a message on its way to the dead-letter queue: one error, naming the
        queue, the event and where the message is kept."""
        message_id = message.message_id or ""
        correlation_id = message.correlation_id or ""
        logger.error(
            "dead-lettering %s message %s (correlation %s) from queue %s: %s",
            event_type or "(untyped)",
            message_id or "(no id)",
            correlation_id or "(none)",
            self.consumer,
            reason,
            exc_info=exc_info,
            extra={
                "queue": self.consumer,
                "event_type": event_type,
                "message_id": message_id,
                "correlation_id": correlation_id,
                "dead_letter_queue": self.topology.dead_letter_queue(self.consumer),
                **extra,
            },
        )
        self._count(event_type, DEAD_LETTERED)

    def _count(self, event_type: str, outcome: str) -> None:
        counter = self._consumed.get((event_type, outcome))
        if counter is None:
            counter = self._counter(event_type, outcome)
        counter.inc()

    def _counter(self, event_type: str, outcome: str) -> Counter:
        """The counter of the event type's label and the outcome, bound on first use and kept
        by that label: a publisher's stray types cannot grow the map."""
        label = event_type_label(event_type)
        counter = self._consumed.get((label, outcome))
        if counter is None:
            counter = self._consumed[label, outcome] = EVENTS_CONSUMED.labels(
                self.consumer, label, outcome
            )
        return counter

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
