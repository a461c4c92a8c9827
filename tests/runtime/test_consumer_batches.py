"""Messages that arrive while one is being handled share its transaction, on the real broker and
database: they commit together, one poison message among them costs the others nothing, and a
crash at any point of a batch redelivers its messages without doubling an effect."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aio_pika import IncomingMessage
from prometheus_client import REGISTRY
from sqlalchemy import Column, MetaData, String, Table, select, text

from meshkit.data import UnitOfWork
from meshkit.data.transactions import Statement
from meshkit.messaging import Envelope, EventConsumer, Handler
from tests.runtime.conftest import CONSUMER, ConsumerRig
from tests.support import eventually

pytestmark = pytest.mark.integration

# Longer than the tests hold a batch's first handler: every member runs in the batch.
BUDGET = 30.0


@dataclass
class Effects:
    """A handler's effect per message, in a table without a unique key: a message handled twice
    shows as two rows."""

    rig: ConsumerRig
    table: Table
    # The transaction each handler ran in, by message id.
    transactions: dict[str, list[int]] = field(default_factory=dict)

    async def write(self, uow: UnitOfWork, envelope: Envelope) -> None:
        await uow.tx.execute(Statement(self.table.insert()), {"message_id": envelope.message_id})
        row = await uow.tx.fetchrow(Statement(select(text("txid_current() AS txid"))))
        assert row is not None
        self.transactions.setdefault(envelope.message_id, []).append(int(row["txid"]))

    async def counts(self) -> dict[str, int]:
        async with self.rig.database.driver_connection() as connection:
            rows = await connection.fetch(
                "SELECT message_id, count(*) AS n FROM batch_effects GROUP BY message_id"
            )
        return {row["message_id"]: row["n"] for row in rows}

    async def inbox(self) -> set[str]:
        async with self.rig.database.driver_connection() as connection:
            rows = await connection.fetch("SELECT message_id FROM inbox")
        return {row["message_id"] for row in rows}


@pytest.fixture
async def effects(consumer_rig: ConsumerRig) -> Effects:
    metadata = MetaData()
    table = Table("batch_effects", metadata, Column("message_id", String(64), nullable=False))
    async with consumer_rig.database.engine.begin() as tables:
        await tables.run_sync(metadata.create_all)
    return Effects(consumer_rig, table)


async def _consuming(rig: ConsumerRig) -> bool:
    counts = await rig.counts()
    return counts is not None and counts[1] == 1


def _counted(outcome: str) -> float:
    labels = {"queue": CONSUMER, "event_type": "order.created", "outcome": outcome}
    return REGISTRY.get_sample_value("events_consumed_total", labels) or 0.0


async def _until_counted(outcome: str, since: float, expected: int) -> None:
    async def reached() -> bool:
        return _counted(outcome) - since >= expected

    await eventually(reached, timeout=20, message=f"{expected} counted {outcome}")


async def _nothing_left(rig: ConsumerRig) -> None:
    """Once the consumer is gone, any message it had not acked would be ready again."""

    async def gone() -> tuple[int, int] | None:
        counts = await rig.counts()
        return counts if counts is not None and counts[1] == 0 else None

    assert await eventually(gone, message="the consumer gone") == (0, 0)


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 10)


@contextlib.asynccontextmanager
async def consuming(rig: ConsumerRig, consumer: EventConsumer[UnitOfWork]) -> AsyncIterator[None]:
    """The consumer running, and on the broker's books as its queue's consumer, for the block;
    stopped after it."""
    running = asyncio.create_task(consumer.run())
    try:
        await eventually(lambda: _consuming(rig), message="consuming")
        yield
    finally:
        await _stop(running)


async def _redelivered(
    rig: ConsumerRig, handler: Handler[UnitOfWork], outcome: str, expected: int
) -> None:
    """A fresh consumer takes what the queue gives it again until `expected` messages are
    counted with `outcome`; once it is gone, nothing is left unacked."""
    before = _counted(outcome)
    async with consuming(rig, rig.consumer({"order.created": handler})):
        await _until_counted(outcome, before, expected)
    await _nothing_left(rig)


class Holder:
    """Keeps the first message's handler running until the others have joined its batch."""

    def __init__(self, ids: list[str]) -> None:
        self.ids = ids
        self.started = asyncio.Event()
        self.held = asyncio.Event()

    async def hold_the_first(self, envelope: Envelope) -> None:
        """In the handler: the first message's waits here until the others have joined."""
        if envelope.message_id == self.ids[0]:
            self.started.set()
            await self.held.wait()

    async def publish(self, rig: ConsumerRig, consumer: EventConsumer[UnitOfWork]) -> None:
        """Publish the first message, then the others while its handler runs; let it go once
        they have all joined its batch."""
        await rig.publish(self.ids[0])
        await asyncio.wait_for(self.started.wait(), 10)
        for message_id in self.ids[1:]:
            await rig.publish(message_id)

        async def all_joined() -> bool:
            batch = consumer._batch
            return batch is not None and batch.joined == len(self.ids)

        await eventually(all_joined, message="every message joined the running batch")
        self.held.set()


async def test_messages_arriving_while_one_is_handled_commit_in_its_transaction(
    consumer_rig: ConsumerRig, effects: Effects
) -> None:
    holder = Holder([f"b-{n}" for n in range(5)])

    async def handler(uow: UnitOfWork, body: object, envelope: Envelope) -> None:
        await effects.write(uow, envelope)
        await holder.hold_the_first(envelope)

    consumer = consumer_rig.consumer({"order.created": handler}, batch_budget_seconds=BUDGET)
    handled = _counted("handled")
    async with consuming(consumer_rig, consumer):
        await holder.publish(consumer_rig, consumer)
        await _until_counted("handled", handled, len(holder.ids))
    await _nothing_left(consumer_rig)
    assert await effects.counts() == dict.fromkeys(holder.ids, 1)
    assert await effects.inbox() == set(holder.ids)
    assert len({txid for (txid,) in effects.transactions.values()}) == 1


async def test_a_poison_message_in_a_batch_costs_the_others_nothing(
    consumer_rig: ConsumerRig, effects: Effects
) -> None:
    holder = Holder([f"p-{n}" for n in range(5)])

    async def handler(uow: UnitOfWork, body: object, envelope: Envelope) -> None:
        await effects.write(uow, envelope)  # written, then rolled back with the poison
        await holder.hold_the_first(envelope)
        if envelope.message_id == "p-2":
            raise ValueError("poison")

    consumer = consumer_rig.consumer(
        {"order.created": handler},
        retry_base_seconds=0.01,
        retry_max_seconds=0.02,
        batch_budget_seconds=BUDGET,
    )
    dead_letters = await consumer_rig.channel.get_queue(
        consumer_rig.topology.dead_letter_queue(CONSUMER), ensure=False
    )

    async def poison_dead_lettered() -> object:
        return await dead_letters.get(no_ack=True, fail=False)

    handled = _counted("handled")
    async with consuming(consumer_rig, consumer):
        await holder.publish(consumer_rig, consumer)
        poisoned = await eventually(poison_dead_lettered, timeout=20, message="dead-lettered")
        await _until_counted("handled", handled, len(holder.ids) - 1)
    await _nothing_left(consumer_rig)
    assert getattr(poisoned, "message_id", None) == "p-2"
    # The others committed once each, alone after their batch failed; the poison never did.
    others = [i for i in holder.ids if i != "p-2"]
    assert await effects.counts() == dict.fromkeys(others, 1)
    assert await effects.inbox() == set(others)
    # Those before it ran twice, in the batch that rolled back and then alone; those after it
    # did not run in the failed batch.
    ran = {i: len(effects.transactions[i]) for i in others}
    assert ran == {"p-0": 2, "p-1": 2, "p-3": 1, "p-4": 1}


async def test_a_crash_mid_batch_redelivers_every_message_without_a_double_effect(
    consumer_rig: ConsumerRig, effects: Effects
) -> None:
    holder = Holder([f"c-{n}" for n in range(5)])
    third_started = asyncio.Event()

    async def dies_in_the_third(uow: UnitOfWork, body: object, envelope: Envelope) -> None:
        await effects.write(uow, envelope)
        await holder.hold_the_first(envelope)
        if envelope.message_id == "c-2":
            third_started.set()
            await asyncio.Future()  # the process dies here, two handlers' effects written

    crashing = consumer_rig.consumer(
        {"order.created": dies_in_the_third}, drain_seconds=0.1, batch_budget_seconds=BUDGET
    )
    async with consuming(consumer_rig, crashing):
        await holder.publish(consumer_rig, crashing)
        await asyncio.wait_for(third_started.wait(), 10)
    assert await effects.counts() == {}  # nothing of the batch committed

    async def handler(uow: UnitOfWork, body: object, envelope: Envelope) -> None:
        await effects.write(uow, envelope)

    await _redelivered(consumer_rig, handler, "handled", len(holder.ids))
    assert await effects.counts() == dict.fromkeys(holder.ids, 1)


async def test_a_crash_between_a_batch_commit_and_its_acks_doubles_no_effect(
    consumer_rig: ConsumerRig, effects: Effects, monkeypatch: pytest.MonkeyPatch
) -> None:
    holder = Holder([f"a-{n}" for n in range(4)])

    async def no_ack(self: IncomingMessage, multiple: bool = False) -> None:
        """The process dies after the commit: no ack reaches the broker."""

    async def handler(uow: UnitOfWork, body: object, envelope: Envelope) -> None:
        await effects.write(uow, envelope)
        await holder.hold_the_first(envelope)

    async def committed() -> bool:
        return len(await effects.counts()) == len(holder.ids)

    with monkeypatch.context() as dying:
        dying.setattr(IncomingMessage, "ack", no_ack)
        consumer = consumer_rig.consumer({"order.created": handler}, batch_budget_seconds=BUDGET)
        async with consuming(consumer_rig, consumer):
            await holder.publish(consumer_rig, consumer)
            await eventually(committed, message="the batch committed")
    assert len({txid for (txid,) in effects.transactions.values()}) == 1

    # Delivered again, each finds its inbox row: acked as a duplicate, its effect not redone.
    await _redelivered(consumer_rig, handler, "duplicate", len(holder.ids))
    assert await effects.counts() == dict.fromkeys(holder.ids, 1)


async def test_messages_behind_a_slow_handler_go_on_in_the_next_batch(
    consumer_rig: ConsumerRig, effects: Effects
) -> None:
    ids = [f"s-{n}" for n in range(4)]
    slow_started, slow_released = asyncio.Event(), asyncio.Event()

    async def handler(uow: UnitOfWork, body: object, envelope: Envelope) -> None:
        await effects.write(uow, envelope)
        if envelope.message_id == "s-0":
            slow_started.set()
            await slow_released.wait()  # a slow handler, far past the budget

    consumer = consumer_rig.consumer({"order.created": handler}, batch_budget_seconds=0.3)
    handled = _counted("handled")
    try:
        async with consuming(consumer_rig, consumer):
            await consumer_rig.publish("s-0")
            await asyncio.wait_for(slow_started.wait(), 10)
            for message_id in ids[1:]:
                await consumer_rig.publish(message_id)
            # Handled and committed while s-0 is still being handled.
            await _until_counted("handled", handled, len(ids) - 1)
            assert not slow_released.is_set()
            slow_released.set()
            await _until_counted("handled", handled, len(ids))
    finally:
        slow_released.set()
    await _nothing_left(consumer_rig)
    assert await effects.counts() == dict.fromkeys(ids, 1)
    # Each ran once; the others in transactions of their own, not the slow one's.
    assert all(len(runs) == 1 for runs in effects.transactions.values())
    slow = effects.transactions["s-0"][0]
    assert slow not in {effects.transactions[i][0] for i in ids[1:]}


async def test_a_statement_failed_and_swallowed_in_a_batch_costs_the_others_nothing(
    consumer_rig: ConsumerRig, effects: Effects, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="meshkit.messaging.inbox")
    holder = Holder([f"w-{n}" for n in range(4)])

    async def handler(uow: UnitOfWork, body: object, envelope: Envelope) -> None:
        await effects.write(uow, envelope)
        await holder.hold_the_first(envelope)
        if envelope.message_id == "w-1":
            # A handler that catches a failed statement and returns as if all went well:
            # the transaction it shares is lost all the same.
            with contextlib.suppress(Exception):
                await uow.tx.execute(Statement(select(text("1/0"))))

    consumer = consumer_rig.consumer(
        {"order.created": handler},
        retry_base_seconds=0.01,
        retry_max_seconds=0.02,
        batch_budget_seconds=BUDGET,
    )
    handled = _counted("handled")
    async with consuming(consumer_rig, consumer):
        await holder.publish(consumer_rig, consumer)
        await _until_counted("handled", handled, len(holder.ids) - 1)
    # w-1's own transactions never commit (its commit refuses a lost transaction); the
    # others commit once each, alone, and none of them is blamed for the lost transaction.
    assert await effects.counts() == {i: 1 for i in holder.ids if i != "w-1"}
    blamed = {getattr(r, "message_id", None) for r in caplog.records if "failed" in r.msg}
    assert blamed == {"w-1"}
