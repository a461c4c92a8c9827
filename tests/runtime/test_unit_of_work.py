"""The unit of work, on each backend: nothing lasts unless committed; the events it publishes
are written in its commit, with its other changes or not at all; what runs after commit runs
only then."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, MetaData, String, Table, bindparam, func, insert, select

from ecommerce.events.v1 import events_pb2
from meshkit.data import Database, IntegrityViolation, Statement, Transaction, UnitOfWork
from meshkit.messaging import Outbox, outbox_table
from tests.conftest import DatabaseFactory

metadata = MetaData()
notes = Table("notes", metadata, Column("id", String(8), primary_key=True))
outbox = outbox_table(metadata)
_ADD_NOTE = Statement(insert(notes).values(id=bindparam("id")))


class NoteRepository:
    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    async def add(self, note_id: str) -> None:
        await self.tx.execute(_ADD_NOTE, {"id": note_id})


class NotesUnitOfWork(UnitOfWork):
    notes: NoteRepository

    def attach(self, tx: Transaction) -> None:
        self.notes = NoteRepository(tx)


class Boom(Exception):
    pass


@pytest.fixture
async def database(database_on_each_backend: DatabaseFactory) -> Database:
    return await database_on_each_backend(metadata)


def unit(database: Database) -> NotesUnitOfWork:
    return NotesUnitOfWork(database, Outbox(outbox, "notes_service"))


async def counts(database: Database) -> tuple[int, int]:
    """(notes, outbox rows) as committed."""
    async with database.session() as session:
        note_count = await session.scalar(select(func.count()).select_from(notes))
        event_count = await session.scalar(select(func.count()).select_from(outbox))
    return int(note_count or 0), int(event_count or 0)


def event(order_id: str) -> events_pb2.OrderShipped:
    return events_pb2.OrderShipped(order_id=order_id, carrier="DHL")


async def test_a_commit_writes_the_changes_and_the_events_together(database: Database) -> None:
    committed: list[str] = []
    async with unit(database) as uow:
        await uow.notes.add("n1")
        envelope = uow.publish(event("o1"), correlation_id="o1")
        uow.publish(event("o2"), correlation_id="o2")
        uow.after_commit(lambda: committed.append("after"))
        # Published, not yet written: the outbox row comes with the commit.
        assert await counts(database) == (0, 0)
        assert committed == []
        await uow.commit()
    assert committed == ["after"]
    assert await counts(database) == (1, 2)
    async with database.session() as session:
        rows = (await session.execute(select(outbox).order_by(outbox.c.id))).mappings().all()
    assert [row["event_type"] for row in rows] == ["order.shipped", "order.shipped"]
    assert rows[0]["message_id"] == envelope.message_id
    assert rows[0]["correlation_id"] == "o1"


async def test_leaving_the_block_without_a_commit_keeps_nothing(database: Database) -> None:
    committed: list[str] = []
    async with unit(database) as uow:
        await uow.notes.add("n1")
        uow.publish(event("o1"), correlation_id="o1")
        uow.after_commit(lambda: committed.append("after"))
    assert await counts(database) == (0, 0)
    assert committed == []


async def fail_halfway(database: Database) -> None:
    async with unit(database) as uow:
        await uow.notes.add("n1")
        uow.publish(event("o1"), correlation_id="o1")
        raise Boom


async def test_an_error_in_the_block_rolls_everything_back(database: Database) -> None:
    with pytest.raises(Boom):
        await fail_halfway(database)
    assert await counts(database) == (0, 0)
    # The connection went back to the pool usable: the next unit of work commits.
    async with unit(database) as uow:
        await uow.notes.add("n2")
        await uow.commit()
    assert await counts(database) == (1, 0)


async def test_a_unit_of_work_is_used_once(database: Database) -> None:
    uow = unit(database)
    async with uow:
        await uow.commit()
        with pytest.raises(RuntimeError, match="before commit"):
            await uow.commit()
    with pytest.raises(RuntimeError, match="entered once"):
        async with uow:
            pass


async def test_publishing_needs_an_outbox(database: Database) -> None:
    async with NotesUnitOfWork(database) as uow:
        with pytest.raises(RuntimeError, match="no outbox"):
            uow.publish(event("o1"), correlation_id="o1")


async def test_a_failing_callback_neither_undoes_the_commit_nor_stops_the_others(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[str] = []

    def fail() -> None:
        raise Boom

    async with unit(database) as uow:
        await uow.notes.add("n1")
        uow.after_commit(fail)
        uow.after_commit(lambda: ran.append("second"))
        await uow.commit()
    assert ran == ["second"]
    assert await counts(database) == (1, 0)
    assert "a callback after commit failed" in caplog.text


async def test_nothing_is_published_once_committed_and_a_dropped_event_is_told(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    async with unit(database) as uow:
        await uow.commit()
        with pytest.raises(RuntimeError, match="before commit"):
            uow.publish(event("o1"), correlation_id="o1")
    async with unit(database) as uow:
        uow.publish(event("o2"), correlation_id="o2")
    assert "1 event(s) published in it were dropped" in caplog.text
    assert await counts(database) == (0, 0)


async def test_a_failed_statement_caught_in_the_block_lets_nothing_commit(
    database: Database,
) -> None:
    if not database.is_postgresql:
        pytest.skip("SQLite goes on with a transaction after a failed statement")
    async with unit(database) as uow:
        await uow.notes.add("n1")
        with pytest.raises(IntegrityViolation):
            await uow.notes.add("n1")
        # PostgreSQL would answer this COMMIT with a silent ROLLBACK.
        with pytest.raises(RuntimeError, match="nothing can commit"):
            await uow.commit()
    assert await counts(database) == (0, 0)
