"""Transactional outbox: events are rows written with the state change, then relayed.

The row commits in the business transaction, so an event exists if and only if the change
does. The relay publishes rows with publisher confirms and marks them sent; a crash between
commit and publish only delays the event, and a crash between publish and mark sends it again
(consumers de-duplicate by message id).

The rows a process commits are handed to its own relay in memory as well, which publishes
them at once and then marks them sent by one statement, with no claim transaction around the
publish. It takes a handed row only while it is younger than a quarter of
`handoff_grace_seconds`, and gives its publish another quarter at most; the poll claims the
rows nobody handed over (written before a restart, or by another replica) once they are
`handoff_grace_seconds` old. So the two ways do not publish one row together; when they do (a
replica's clock far ahead, a mark that waited long), the consumers' de-duplication takes the
second copy.

Once a handed row is not published (its publish or mark failed, it waited too long, or the
hand-over was full), the process stops handing rows over: its poll takes every unsent row,
oldest first, without the grace, until it has caught up. Events then keep the order they were
written in, however the broker or the database failed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import json
import logging
import math
import random
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import aio_pika
from aio_pika.abc import AbstractRobustConnection
from google.protobuf.message import Message
from prometheus_client import Counter
from sqlalchemy import (
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Select,
    String,
    Table,
    Text,
    any_,
    bindparam,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from meshkit.context import correlation_id_var, request_id_var
from meshkit.data.db import Database, UTCDateTime, utcnow
from meshkit.data.transactions import RowsInsert, Statement, Transaction, fetch_alone
from meshkit.data.unit_of_work import UnitOfWork
from meshkit.failures import FailureStreak
from meshkit.messaging.amqp import Topology
from meshkit.messaging.events import CONTENT_TYPE, OCCURRED_AT_HEADER, Envelope, event_type_of
from meshkit.messaging.metrics import (
    OUTBOX_EVENTS_PENDING,
    OUTBOX_EVENTS_PUBLISHED,
    OUTBOX_OLDEST_PENDING_AGE,
    OUTBOX_PUBLISH_FAILURES,
)
from meshkit.messaging.tracing import end_publish, start_publish
from meshkit.telemetry import inject, tracer

logger = logging.getLogger(__name__)


def outbox_table(metadata: MetaData) -> Table:
    """The `outbox` table, added to a service's own metadata (and its migrations)."""
    return Table(
        "outbox",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("message_id", String(32), nullable=False, unique=True),
        Column("event_type", String(64), nullable=False),
        Column("correlation_id", String(64), nullable=False, default=""),
        Column("payload", LargeBinary, nullable=False),
        Column("headers", Text, nullable=False, default="{}"),
        Column("created_at", UTCDateTime, nullable=False),
        Column("sent_at", UTCDateTime, nullable=True),
        Column("attempts", Integer, nullable=False, default=0),
        # Only unsent rows are ever looked up: the index stays as small as the backlog.
        Index(
            "ix_outbox_unsent",
            "id",
            postgresql_where=text("sent_at IS NULL"),
            sqlite_where=text("sent_at IS NULL"),
        ),
    )


# The columns an event's row is written with; the others are the relay's.
_WRITTEN = (
    "message_id",
    "event_type",
    "correlation_id",
    "payload",
    "headers",
    "created_at",
    "attempts",
)


# How many committed rows wait in memory for the relay at most; the rest wait for its poll.
HANDED_LIMIT = 1_000


class Outbox:
    """Writes events in the caller's transaction (a unit of work's, at its commit) and, once
    that commits, hands them to the relay and wakes it."""

    def __init__(self, table: Table, source: str) -> None:
        self.table = table
        self.source = source
        self.pending = asyncio.Event()
        # Rows committed and not yet taken by the relay, oldest first.
        self.handed: collections.deque[dict[str, Any]] = collections.deque()
        # False from a row that was not published by hand-over until the poll has caught up
        # (module doc): meanwhile the rows committed wait for the poll, in order.
        self.handing_over = True
        # Built once, run with parameters: cheaper than a statement built per event. The
        # events of a unit of work (a batch of deliveries' above all) go in one statement.
        self._rows = RowsInsert(table, _WRITTEN)

    def envelope(self, body: Message, *, correlation_id: str) -> Envelope:
        """The envelope `body` will be published in, with this request's ids in its headers,
        and its trace context while tracing is on: stored in the row, in the transaction of
        the change, it reaches the relay however late that publishes."""
        headers = {
            key: value
            for key, value in (
                ("x-request-id", request_id_var.get()),
                ("x-correlation-id", correlation_id_var.get() or correlation_id),
            )
            if value
        }
        if tracer() is not None:
            inject(headers)
        return Envelope(
            event_type=event_type_of(body),
            correlation_id=correlation_id,
            source=self.source,
            headers=headers,
        )

    async def write(self, tx: Transaction, published: Sequence[tuple[Envelope, Message]]) -> None:
        """Write the events in the caller's transaction as it commits, with the rows it holds."""
        rows = [
            {
                "message_id": envelope.message_id,
                "event_type": envelope.event_type,
                "correlation_id": envelope.correlation_id,
                "payload": body.SerializeToString(),
                "headers": json.dumps(envelope.headers),
                "created_at": envelope.occurred_at,
                "attempts": 0,
            }
            for envelope, body in published
        ]
        tx.hold(self._rows, rows)
        # After commit: rows that may yet roll back must never be published.
        tx.after_commit(functools.partial(self._committed, rows))

    def _committed(self, rows: list[dict[str, Any]]) -> None:
        if self.handing_over and len(self.handed) + len(rows) <= HANDED_LIMIT:
            self.handed.extend(rows)
        else:
            self.stop_handing_over()
        self.pending.set()

    def stop_handing_over(self) -> None:
        """Leave every unsent row to the poll, in order, until it has caught up."""
        self.handing_over = False
        self.handed.clear()


# How long the backlog's measure may take before the relay goes on publishing without it.
BACKLOG_MEASURE_TIMEOUT_SECONDS = 2.0


class OutboxRelay:
    """Publishes unsent outbox rows with confirms, in the order they were written: a
    process's own commits as it hands them over, the rest by its poll (module doc). Safe with
    several replicas.

    It counts what it publishes and what fails, and keeps the gauges of the backlog fresh
    (`meshkit.messaging.metrics`).
    """

    def __init__(
        self,
        database: Database,
        outbox: Outbox,
        connection: AbstractRobustConnection,
        topology: Topology,
        *,
        batch_size: int = 100,
        poll_interval: float = 0.5,
        max_backoff: float = 5.0,
        publish_timeout: float = 10.0,
        backlog_interval: float = 5.0,
        handoff_grace_seconds: float = 4.0,
    ) -> None:
        self.db = database
        self.outbox = outbox
        self.table = outbox.table
        self.connection = connection
        self.topology = topology
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.max_backoff = max_backoff
        self.publish_timeout = publish_timeout
        # How old an unsent row is before the poll claims it: until then it may be a handed
        # row, taken while younger than a quarter of it and published within another quarter
        # (module doc).
        self.handoff_grace = timedelta(seconds=handoff_grace_seconds)
        self._handed_publish_timeout = min(publish_timeout, handoff_grace_seconds / 4)
        self._polled_at = -math.inf
        # The backlog gauges are measured at most this often, by one query, not per event.
        self.backlog_interval = backlog_interval
        self._backlog_measured_at = -math.inf
        self._channel: aio_pika.abc.AbstractChannel | None = None
        self._exchange: aio_pika.abc.AbstractExchange | None = None
        # Label children bound once: `labels()` validates and locks on every call, and the
        # published counter is incremented per row.
        source = outbox.source
        self._published: dict[str, Counter] = {}
        self._publish_failures = OUTBOX_PUBLISH_FAILURES.labels(source)
        self._pending = OUTBOX_EVENTS_PENDING.labels(source)
        self._oldest_pending_age = OUTBOX_OLDEST_PENDING_AGE.labels(source)

    async def _exchange_for_publishing(self) -> aio_pika.abc.AbstractExchange:
        if self._exchange is None or self._channel is None or self._channel.is_closed:
            self._channel = await self.connection.channel(
                publisher_confirms=True, on_return_raises=True
            )
            self._exchange = await self.topology.declare_exchange(self._channel)
        return self._exchange

    async def run(self) -> None:
        """Relay until cancelled; broker or database failures back off and retry."""
        failures = FailureStreak()
        while True:
            # Cleared before looking: a commit that lands while we look wakes the next wait.
            self.outbox.pending.clear()
            await self._measure_backlog_if_due()
            try:
                sent = await self.relay_handed()
                polled = 0
                # Handed rows keep it busy under load; the poll still comes every interval,
                # and at once while the hand-over is stopped.
                if (
                    not sent
                    or not self.outbox.handing_over
                    or time.monotonic() - self._polled_at >= self.poll_interval
                ):
                    polled = await self.relay_batch()
                if failed := failures.ended():
                    logger.warning("outbox relay publishing again after %d failures", failed)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                level = failures.failed()
                delay = min(self.max_backoff, 0.1 * 2 ** min(failures.count, 10))
                delay *= random.uniform(0.5, 1)
                logger.log(
                    level,
                    "outbox relay failed; retrying in %.2fs: %s",
                    delay,
                    str(exc) or type(exc).__name__,  # a timeout's message is empty
                    extra={"attempt": failures.count},
                )
                if not isinstance(exc, TimeoutError):
                    # A slow broker leaves the channel usable; anything else may not have.
                    await self._forget_channel()
                await asyncio.sleep(delay)
                continue
            if self.outbox.handed or polled == self.batch_size:
                continue  # more may be waiting
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.outbox.pending.wait(), self.poll_interval)

    async def relay_handed(self) -> int:
        """Publish a batch of the rows this process committed, then mark them sent; returns
        how many were published.

        No transaction is held while they are published. When one of them is too old to be
        taken (module doc), or its publish or mark fails (which raises), the hand-over stops
        and the poll takes them all, in order.
        """
        handed = self.outbox.handed
        rows = [handed.popleft() for _ in range(min(len(handed), self.batch_size))]
        if not rows:
            return 0
        if rows[0]["created_at"] < utcnow() - self.handoff_grace / 4:
            self.outbox.stop_handing_over()
            return 0
        try:
            exchange = await self._exchange_for_publishing()
            try:
                await self._publish_all(exchange, rows, self._handed_publish_timeout)
            except Exception:
                self._publish_failures.inc()
                raise
            marked = await fetch_alone(
                self.db,
                self._mark_sent,
                {"message_ids": [row["message_id"] for row in rows], "now": utcnow()},
            )
        except BaseException:
            self.outbox.stop_handing_over()
            raise
        self._count_published(rows)
        if len(marked) < len(rows):
            # Another replica's poll took them too (its clock far ahead): published twice,
            # which the consumers' de-duplication absorbs.
            logger.info("%d handed outbox row(s) were sent already", len(rows) - len(marked))
        return len(rows)

    async def relay_batch(self) -> int:
        """Publish one batch of the rows nobody handed over, oldest first; returns how many
        rows were sent. Only rows past the grace while the hand-over runs; every unsent row
        while it is stopped, and once a batch takes them all, the hand-over starts again.

        The claim marks the rows sent, but the mark only counts if the batch is published: it
        commits after the confirms, in the same transaction. A failed publish raises: the
        transaction rolls back, the rows stay unsent, and the batch counts as a failure.
        """
        self._polled_at = time.monotonic()
        exchange = await self._exchange_for_publishing()
        async with UnitOfWork(self.db) as uow:
            now = utcnow()
            caught_up = not self.outbox.handing_over
            grace = self.handoff_grace if self.outbox.handing_over else timedelta(0)
            claimed = await uow.tx.fetch(self._claim, {"now": now, "written_before": now - grace})
            if caught_up and len(claimed) < self.batch_size:
                # Rows committed from now on are handed over, and published after these.
                self.outbox.handing_over = True
            # RETURNING gives no order: publish oldest first, as the rows were written.
            rows = sorted(claimed, key=lambda row: row["id"])
            if rows:
                try:
                    try:
                        await self._publish_all(exchange, rows, self.publish_timeout)
                    except Exception:
                        self._publish_failures.inc()
                        raise
                    await uow.commit()
                except BaseException:
                    if caught_up:
                        self.outbox.stop_handing_over()  # these go first, when they can
                    raise
                self._count_published(rows)
        return len(rows)

    async def _forget_channel(self) -> None:
        """Drop the publishing channel, closed if it still can be: the next batch opens one."""
        channel, self._channel, self._exchange = self._channel, None, None
        if channel is not None and not channel.is_closed:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await channel.close()

    def _count_published(self, rows: Sequence[Mapping[Any, Any]]) -> None:
        for row in rows:
            event_type = row["event_type"]
            published = self._published.get(event_type)
            if published is None:
                published = self._published[event_type] = OUTBOX_EVENTS_PUBLISHED.labels(
                    self.outbox.source, event_type
                )
            published.inc()

    async def measure_backlog(self) -> None:
        """Set the backlog gauges: how many rows are unsent, and how old the oldest is."""
        async with self.db.session() as session:
            pending, oldest = (await session.execute(self._backlog)).one()
        self._pending.set(pending)
        age = (utcnow() - oldest).total_seconds() if isinstance(oldest, datetime) else 0.0
        # Written by another replica, a row can look a little younger than now.
        self._oldest_pending_age.set(max(0.0, age))

    async def _measure_backlog_if_due(self) -> None:
        now = time.monotonic()
        if now - self._backlog_measured_at < self.backlog_interval:
            return
        # Taken before measuring: a database that fails is not asked again at once.
        self._backlog_measured_at = now
        try:
            # Bounded: with every read connection busy, the wait for one would hold the relay.
            async with asyncio.timeout(BACKLOG_MEASURE_TIMEOUT_SECONDS):
                await self.measure_backlog()
        except Exception as exc:
            logger.warning(
                "could not measure the outbox backlog: %s", str(exc) or type(exc).__name__
            )

    @functools.cached_property
    def _backlog(self) -> Select[int, datetime | None]:
        """The count and the oldest `created_at` of the unsent rows, in one aggregate.

        Its condition is the one of the partial index of unsent rows (`ix_outbox_unsent`),
        which PostgreSQL can use to read the backlog only, however many rows were sent before.
        """
        return select(func.count(), func.min(self.table.c.created_at)).where(
            self.table.c.sent_at.is_(None)
        )

    @functools.cached_property
    def _claim(self) -> Statement:
        """Mark the oldest unsent rows sent and return them, in one statement.

        One UPDATE ... RETURNING instead of a SELECT then an UPDATE: a round trip and a
        statement fewer per batch, and at a trickle of orders every event is a batch of its
        own.
        """
        unsent = (
            select(self.table.c.id)
            .where(
                self.table.c.sent_at.is_(None),
                self.table.c.created_at <= bindparam("written_before"),
            )
            .order_by(self.table.c.id)
            .limit(self.batch_size)
        )
        if not self.db.is_sqlite:
            # Replicas take disjoint batches instead of waiting on each other's rows.
            unsent = unsent.with_for_update(skip_locked=True)
        return Statement(
            update(self.table)
            .where(self.table.c.id.in_(unsent.scalar_subquery()))
            .values(sent_at=bindparam("now"), attempts=self.table.c.attempts + 1)
            .returning(*self.table.c)
        )

    @functools.cached_property
    def _mark_sent(self) -> Statement:
        """Mark the handed rows published, by message id, unless another relay did."""
        message_id = self.table.c.message_id
        return Statement(
            update(self.table)
            .where(
                message_id == any_(bindparam("message_ids", type_=ARRAY(String)))
                if self.db.is_postgresql
                else message_id.in_(bindparam("message_ids", expanding=True)),
                self.table.c.sent_at.is_(None),
            )
            .values(sent_at=bindparam("now"), attempts=self.table.c.attempts + 1)
            .returning(self.table.c.id)
        )

    def _message(self, row: Mapping[Any, Any], traces: Any, spans: list[Any]) -> aio_pika.Message:
        """The AMQP message of an outbox row; with tracing on, its publish span is started
        (into `spans`) and its context put in the headers."""
        headers = {
            **json.loads(row["headers"] or "{}"),
            # AMQP timestamps have whole seconds; timelines need more.
            OCCURRED_AT_HEADER: _iso(row["created_at"]),
        }
        if traces is not None:
            spans.append(start_publish(row["event_type"], row["message_id"], headers))
        return aio_pika.Message(
            body=row["payload"],
            content_type=CONTENT_TYPE,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=row["message_id"],
            type=row["event_type"],
            correlation_id=row["correlation_id"] or None,
            timestamp=_as_datetime(row["created_at"]),
            app_id=self.outbox.source,
            headers=headers,
        )

    async def _publish_all(
        self,
        exchange: aio_pika.abc.AbstractExchange,
        rows: Sequence[Mapping[Any, Any]],
        timeout: float,
    ) -> None:
        # Confirms are awaited together: one round trip per batch, not per message. And for
        # a bounded time: the claim keeps the batch's rows locked, out of other replicas'
        # reach, until it commits or rolls back, and a broker that hangs mid-connection is
        # noticed by heartbeats only after minutes. Rolled back, the batch is retried.
        traces = tracer()
        spans: list[Any] = []
        try:
            messages = [self._message(row, traces, spans) for row in rows]
        except BaseException as error:
            end_publish(spans, error)
            raise
        try:
            async with asyncio.timeout(timeout):
                await asyncio.gather(
                    *(
                        exchange.publish(message, routing_key=row["event_type"], mandatory=True)
                        for message, row in zip(messages, rows, strict=True)
                    )
                )
        except BaseException as error:
            end_publish(spans, error)
            raise
        end_publish(spans, None)


def _as_datetime(value: object) -> datetime | None:
    return value if isinstance(value, datetime) else None


def _iso(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else ""
