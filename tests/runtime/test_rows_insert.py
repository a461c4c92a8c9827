"""Rows inserted together, on each backend: every row lands as given, in the order given; a
row whose key exists is skipped when asked; an over-long value is refused, not cut short."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import Column, Integer, LargeBinary, MetaData, String, Table, select

from meshkit.data import Database, RowsInsert, UnitOfWork, UTCDateTime
from tests.conftest import DatabaseFactory

metadata = MetaData()
entries = Table(
    "entries",
    metadata,
    Column("serial", Integer, primary_key=True, autoincrement=True),
    Column("key", String(8), nullable=False, unique=True),
    Column("at", UTCDateTime, nullable=False),
    Column("body", LargeBinary, nullable=False),
)
COLUMNS = ("key", "at", "body")
SKIPPING_KNOWN_KEYS = RowsInsert(entries, COLUMNS, conflict_keys=("key",))
PLAIN = RowsInsert(entries, COLUMNS)
AT = datetime(2026, 12, 7, 16, 0, 0, 123456, tzinfo=UTC)


def entry(key: str) -> dict[str, object]:
    return {"key": key, "at": AT, "body": key.encode()}


async def written(database: Database) -> list[tuple[str, datetime, bytes]]:
    async with database.session() as session:
        rows = await session.execute(select(entries).order_by(entries.c.serial))
    return [(row.key, row.at, row.body) for row in rows]


@pytest.mark.parametrize("count", [1, 3])
async def test_rows_land_as_given_in_the_order_given(
    database_on_each_backend: DatabaseFactory, count: int
) -> None:
    database = await database_on_each_backend(metadata)
    keys = ["c", "a", "b"][:count]
    async with UnitOfWork(database) as uow:
        await uow.tx.insert_rows(PLAIN, [entry(key) for key in keys])
        await uow.tx.insert_rows(PLAIN, [])
        await uow.commit()
    assert await written(database) == [(key, AT, key.encode()) for key in keys]


async def test_a_row_whose_key_exists_is_skipped_the_others_land(
    database_on_each_backend: DatabaseFactory,
) -> None:
    database = await database_on_each_backend(metadata)
    async with UnitOfWork(database) as uow:
        await uow.tx.insert_rows(SKIPPING_KNOWN_KEYS, [entry("a")])
        await uow.commit()
    async with UnitOfWork(database) as uow:
        # One known already, one twice in the same statement.
        await uow.tx.insert_rows(SKIPPING_KNOWN_KEYS, [entry("a"), entry("b"), entry("b")])
        await uow.commit()
    assert [key for key, _, _ in await written(database)] == ["a", "b"]


async def test_an_over_long_value_is_refused_not_cut_short(postgres_url: str) -> None:
    async with Database(postgres_url) as database:
        async with database.engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
        async with UnitOfWork(database) as uow:
            with pytest.raises(asyncpg.StringDataRightTruncationError, match="too long"):
                await uow.tx.insert_rows(PLAIN, [entry("fits"), entry("much too long")])
        assert await written(database) == []
