"""Database sessions on real PostgreSQL: read sessions refuse writes; a pooled connection
the server closed while it sat idle is replaced before it fails a request; the driver's own
read pool replaces a closed connection too."""

from __future__ import annotations

import time
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import String, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from localmesh.faultproxy import FaultyProxy, Mode
from meshkit.data import Database
from meshkit.data import db as meshkit_db
from tests.conftest import POSTGRES_ADMIN_DSN, DatabaseFactory

pytestmark = pytest.mark.integration


class Base(DeclarativeBase):
    pass


class Note(Base):
    __tablename__ = "notes"
    id: Mapped[str] = mapped_column(String(8), primary_key=True)


@pytest.fixture
async def database(database_on_each_backend: DatabaseFactory) -> Database:
    return await database_on_each_backend(Base.metadata)


async def test_a_read_session_sees_commits_and_refuses_to_write(database: Database) -> None:
    async with database.transaction() as session:
        session.add(Note(id="a"))
    async with database.session() as session:
        assert await session.get(Note, "a") is not None
        session.add(Note(id="b"))
        with pytest.raises(RuntimeError, match="does not write"):
            await session.flush()
    async with database.session() as session:
        assert await session.get(Note, "b") is None


async def _kill_other_backends(url: str) -> int:
    name = url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        rows = await admin.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
    finally:
        await admin.close()
    return len(rows)


async def _select_one(database: Database) -> int:
    async with database.session() as session:
        return int((await session.execute(text("SELECT 1"))).scalar_one())


async def test_an_idle_connection_closed_by_the_server_is_replaced(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = Database(postgres_url, pool_size=1)
    try:
        assert await _select_one(database) == 1
        assert await _kill_other_backends(postgres_url) == 1

        # Checked out at once, a dead connection is not pinged: the request sees the error
        # (and the pool then drops it).
        monkeypatch.setattr(meshkit_db, "IDLE_PING_AFTER_SECONDS", 3600.0)
        with pytest.raises(DBAPIError):
            await _select_one(database)

        assert await _select_one(database) == 1
        assert await _kill_other_backends(postgres_url) == 1
        # Idle long enough: pinged, found dead, replaced; the request never knows.
        monkeypatch.setattr(meshkit_db, "IDLE_PING_AFTER_SECONDS", 0.0)
        assert await _select_one(database) == 1
    finally:
        await database.dispose()


async def _driver_select_one(database: Database) -> int:
    async with database.driver_connection() as connection:
        return int(await connection.fetchval("SELECT 1"))


async def test_the_driver_pool_replaces_a_connection_the_server_closed(postgres_url: str) -> None:
    database = Database(postgres_url, pool_size=2)
    try:
        assert await _driver_select_one(database) == 1
        # The engine's own pool has opened none: the driver pool is a pool of its own.
        assert await _kill_other_backends(postgres_url) == 1

        # At most the read that meets the dead connection fails, as with the engine's pool
        # when it does not ping (with whichever error the close racing the query gives);
        # the pool opens a new one for the next.
        failures = 0
        deadline = time.monotonic() + 5.0
        while True:
            try:
                assert await _driver_select_one(database) == 1
                break
            except (asyncpg.InterfaceError, asyncpg.InternalClientError, asyncpg.PostgresError):
                failures += 1
                assert time.monotonic() < deadline
        assert failures <= 1
    finally:
        await database.dispose()
    assert database._driver_pool is None


async def test_the_driver_pool_is_for_postgresql_only(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/t.db")
    try:
        with pytest.raises(RuntimeError, match="PostgreSQL only"):
            await _driver_select_one(database)
    finally:
        await database.dispose()


async def test_readiness_survives_its_connection_closed_by_the_server(postgres_url: str) -> None:
    # A server or pooler restart kills the kept readiness connection; the database answers
    # again at once, so the next check must not report an outage (every replica at once).
    database = Database(postgres_url, pool_size=1)
    try:
        await database.check_reachable()
        # The client often has not yet seen the close when the next check runs: repeated,
        # so that case comes up.
        for _ in range(10):
            kept = database._readiness_connection
            assert kept is not None
            # The readiness connection (and, the first time, the one the driver's pool opened).
            assert await _kill_other_backends(postgres_url) >= 1
            await database.check_reachable()
            assert database._readiness_connection is not kept
    finally:
        await database.dispose()
    assert database._readiness_connection is None


async def test_a_hanging_connection_attempt_fails_soon_and_the_next_read_retries(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every hot read waits while the driver's pool opens: one connection attempt that hangs
    # (a server that accepts and never answers) must not hold them all for asyncpg's minute.
    monkeypatch.setattr(meshkit_db, "CONNECT_TIMEOUT_SECONDS", 0.5)
    url = make_url(postgres_url)
    async with FaultyProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        proxied = url.set(host="127.0.0.1", port=proxy.port)
        database = Database(proxied.render_as_string(hide_password=False), pool_size=2)
        try:
            proxy.set_mode(Mode.BLACK_HOLE)
            started = time.monotonic()
            with pytest.raises((TimeoutError, OSError)):
                await _driver_select_one(database)
            assert time.monotonic() - started < 5
            with pytest.raises((TimeoutError, OSError)):
                await database.check_reachable()

            proxy.set_mode(Mode.FORWARD)
            assert await _driver_select_one(database) == 1
            await database.check_reachable()
        finally:
            await database.dispose()
