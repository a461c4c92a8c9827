"""Rows a unit of work holds (`Transaction.hold`), on each backend: written as it commits, with
its events, all or none; on PostgreSQL in one statement, which is the whole transaction when
nothing ran before it."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import (
    Column,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    func,
    select,
)

from ecommerce.events.v1 import events_pb2
from meshkit.data import Database, IntegrityViolation, RowsInsert, Statement, UnitOfWork
from meshkit.data.transactions import DriverTransaction
from meshkit.messaging import Outbox, outbox_table
from tests.conftest import DatabaseFactory

metadata = MetaData()
parents = Table("parents", metadata, Column("id", String(8), primary_key=True))
children = Table(
    "children",
    metadata,
    Column("id", String(8), primary_key=True),
    Column("parent_id", String(8), ForeignKey("parents.id"), nullable=False),
)
outbox = outbox_table(metadata)
PARENTS = RowsInsert(parents, ("id",))
CHILDREN = RowsInsert(children, ("id", "parent_id"))
_PARENT = Statement(select(parents.c.id).where(parents.c.id == bindparam("id")))


@pytest.fixture
async def database(database_on_each_backend: DatabaseFactory) -> Database:
    return await database_on_each_backend(metadata)


def unit(database: Database) -> UnitOfWork:
    return UnitOfWork(database, Outbox(outbox, "family_service"))


def hold_family(uow: UnitOfWork, parent: str, *kids: str) -> None:
    # The children first: they refer to a parent held after them, in the same commit.
    uow.tx.hold(CHILDREN, [{"id": kid, "parent_id": parent} for kid in kids])
    uow.tx.hold(PARENTS, [{"id": parent}])
    uow.publish(events_pb2.OrderShipped(order_id=parent), correlation_id=parent)


async def written(database: Database) -> tuple[list[str], list[str], int]:
    """(parents, children, outbox rows) as committed."""
    async with database.session() as session:
        parent_ids = list(await session.scalars(select(parents.c.id).order_by(parents.c.id)))
        child_ids = list(await session.scalars(select(children.c.id).order_by(children.c.id)))
        events = await session.scalar(select(func.count()).select_from(outbox))
    return parent_ids, child_ids, int(events or 0)


class Recording:
    """An asyncpg connection that notes the statements sent through it."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.sent: list[str] = []

    async def execute(self, sql: str, *args: Any) -> Any:
        self.sent.append(sql)
        return await self.connection.execute(sql, *args)

    async def fetch(self, sql: str, *args: Any) -> Any:
        self.sent.append(sql)
        return await self.connection.fetch(sql, *args)


async def test_held_rows_of_several_tables_land_together_as_the_block_commits(
    database: Database,
) -> None:
    async with unit(database) as uow:
        hold_family(uow, "p1", "c1", "c2")
        hold_family(uow, "p2", "c3")
        uow.tx.hold(CHILDREN, [])
        assert await written(database) == ([], [], 0)
        await uow.commit()
    assert await written(database) == (["p1", "p2"], ["c1", "c2", "c3"], 2)


async def test_on_postgresql_an_only_held_block_commits_as_one_statement(
    database: Database,
) -> None:
    if not database.is_postgresql:
        pytest.skip("SQLite writes held rows one by one in its session's transaction")
    async with unit(database) as uow:
        assert isinstance(uow.tx, DriverTransaction)
        recording = uow.tx.connection = Recording(uow.tx.connection)
        hold_family(uow, "p1", "c1", "c2")
        # Nothing ran yet, not even a BEGIN.
        assert not recording.connection.is_in_transaction()
        await uow.commit()
    assert len(recording.sent) == 1
    assert recording.sent[0].startswith("WITH ")
    assert await written(database) == (["p1"], ["c1", "c2"], 1)


async def test_a_block_that_reads_first_writes_its_held_rows_in_its_transaction(
    database: Database,
) -> None:
    async with unit(database) as uow:
        assert await uow.tx.fetch(_PARENT, {"id": "p1"}) == []
        hold_family(uow, "p1", "c1")
        await uow.commit()
    assert await written(database) == (["p1"], ["c1"], 1)


@pytest.mark.parametrize("read_first", [False, True])
async def test_a_held_row_that_breaks_a_constraint_fails_the_commit_and_writes_nothing(
    database: Database, read_first: bool
) -> None:
    async with unit(database) as uow:
        hold_family(uow, "p1")
        await uow.commit()
    committed: list[str] = []
    async with unit(database) as uow:
        if read_first:
            assert await uow.tx.fetch(_PARENT, {"id": "p2"}) == []
        hold_family(uow, "p2", "c2")
        hold_family(uow, "p1", "c1")
        uow.after_commit(lambda: committed.append("after"))
        with pytest.raises(IntegrityViolation):
            await uow.commit()
    assert committed == []
    assert await written(database) == (["p1"], [], 1)
    # The connection went back to the pool usable, with no transaction left open.
    async with unit(database) as uow:
        if isinstance(uow.tx, DriverTransaction):
            assert not uow.tx.connection.is_in_transaction()
        hold_family(uow, "p3")
        await uow.commit()
    assert await written(database) == (["p1", "p3"], [], 2)


def test_an_insert_must_name_every_column_with_a_default() -> None:
    table = Table(
        "defaults",
        MetaData(),
        Column("id", String(8), primary_key=True),
        Column("n", Integer, default=7),
    )
    with pytest.raises(
        ValueError, match=r"defaults: columns with defaults must be inserted: \['n'\]"
    ):
        RowsInsert(table, ("id",))
    assert RowsInsert(table, ("id", "n")).columns == ("id", "n")


async def test_held_rows_are_dropped_when_the_block_ends_without_a_commit(
    database: Database,
) -> None:
    async with unit(database) as uow:
        hold_family(uow, "p1", "c1")
        uow.tx.hold(PARENTS, [{"id": "p2"}])
    async with unit(database) as uow:
        await uow.commit()
    assert await written(database) == ([], [], 0)
