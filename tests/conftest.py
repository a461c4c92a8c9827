"""Fixtures shared by every test: real PostgreSQL databases, Redis, free ports."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aio_pika
import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import MetaData

from meshkit.data import Database
from meshkit.messaging import Topology

# The machines this suite runs on have these; `make services` starts them elsewhere.
POSTGRES_ADMIN_DSN = os.environ.get(
    "TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")

PostgresFactory = Callable[[], Awaitable[str]]


def _sqlalchemy_url(dsn: str, database: str) -> str:
    base = dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{database}"


# How long the tasks the tests left running get to end, once cancelled at the session's end.
LEFTOVER_GRACE_SECONDS = float(os.environ.get("TEST_LEFTOVER_GRACE_SECONDS", "10"))


@pytest.fixture(scope="session", autouse=True)
async def tasks_left_running(pytestconfig: pytest.Config) -> AsyncIterator[None]:
    """At the session's end, cancel what the tests left running, and name any task that does
    not end when cancelled.

    The event loop's own close cancels every task and waits for all of them, with no deadline:
    one task that swallows its cancellation would hang the run after its last test. Such a
    task is reported here, with where it waits, and left out of that wait.
    """
    yield
    current = asyncio.current_task()
    left = {task for task in asyncio.all_tasks() if task is not current}
    if not left:
        return
    for task in left:
        task.cancel()
    _, stuck = await asyncio.wait(left, timeout=LEFTOVER_GRACE_SECONDS)
    # To the terminal itself, past the capture: what a fixture prints at its teardown is
    # otherwise shown only for a failed test.
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    for task in stuck:
        report = io.StringIO()
        task.print_stack(file=report)
        message = (
            f"\nA task did not end within {LEFTOVER_GRACE_SECONDS:g} s of its cancellation at "
            f"the end of the session: {task!r}\n{report.getvalue()}"
        )
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            print(message, flush=True)
        # asyncio keeps no public way to let go of a task; the loop's close would wait for it.
        asyncio.tasks._unregister_task(task)


class PostgresDatabases:
    """Creates empty PostgreSQL databases on demand. Each one a test is done with is dropped in
    the background while the session goes on; the rest when it ends.

    Each drop waits on a checkpoint. Left to the session's end, the few hundred databases of a
    run took 14 s after its last test, where the suite mostly waits on processes while it runs.
    """

    def __init__(self, admin: asyncpg.Connection) -> None:
        self._admin = admin
        self._created: list[str] = []
        self._done: asyncio.Queue[str] = asyncio.Queue()
        self._dropping: asyncio.Task[None] | None = None

    async def __call__(self) -> str:
        """A new empty database, as a SQLAlchemy URL."""
        name = f"mesh_test_{uuid.uuid4().hex[:12]}"
        await self._admin.execute(f'CREATE DATABASE "{name}"')
        self._created.append(name)
        return _sqlalchemy_url(POSTGRES_ADMIN_DSN, name)

    def done_with(self, url: str) -> None:
        """Drop the database of `url` soon: its test has ended."""
        self._done.put_nowait(url.rsplit("/", 1)[1])
        if self._dropping is None:
            self._dropping = asyncio.create_task(self._drop_done(), name="test database drops")

    async def _drop_done(self) -> None:
        connection: asyncpg.Connection | None = None
        try:
            while True:
                name = await self._done.get()
                try:
                    connection = connection or await asyncpg.connect(POSTGRES_ADMIN_DSN)
                    # Not forced: a connection a test left open is closed at the session's end
                    # instead, never under a later test.
                    await connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
                except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                    # Still in use, or the connection lost: dropped at the session's end.
                    if connection is not None and connection.is_closed():
                        connection = None
                    continue
                self._created.remove(name)
        finally:
            if connection is not None:
                await connection.close()

    async def close(self) -> None:
        """Drop every database still there; once, at the session's end."""
        if self._dropping is not None:
            self._dropping.cancel()
            await asyncio.gather(self._dropping, return_exceptions=True)
        await self._admin.close()
        await _drop_databases(self._created)


@pytest.fixture(scope="session")
async def postgres_databases() -> AsyncIterator[PostgresDatabases]:
    """Creates empty PostgreSQL databases on demand; drops them all by the session's end."""
    databases = PostgresDatabases(await asyncpg.connect(POSTGRES_ADMIN_DSN))
    try:
        yield databases
    finally:
        await databases.close()


# Drops on several connections share their checkpoints.
DROPPING_CONNECTIONS = 8


async def _drop_databases(names: list[str]) -> None:
    async def drop_share(share: list[str]) -> None:
        connection = await asyncpg.connect(POSTGRES_ADMIN_DSN)
        try:
            for name in share:
                await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()

    shares = [names[start::DROPPING_CONNECTIONS] for start in range(DROPPING_CONNECTIONS)]
    await asyncio.gather(*(drop_share(share) for share in shares if share))


@pytest.fixture
async def amqp_namespace() -> AsyncIterator[str]:
    """A namespace of exchange and queues of its own on the real broker, removed afterwards."""
    namespace = f"test-{uuid.uuid4().hex[:10]}"
    yield namespace
    connection = await aio_pika.connect(AMQP_URL)
    try:
        await Topology(namespace).delete_all(connection)
    finally:
        await connection.close()


@pytest.fixture
async def postgres_url(postgres_databases: PostgresDatabases) -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database for one test (SQLAlchemy URL); dropped after it."""
    url = await postgres_databases()
    yield url
    postgres_databases.done_with(url)


DatabaseFactory = Callable[[MetaData], Awaitable[Database]]


@pytest.fixture(params=["postgresql", "sqlite"])
async def database_on_each_backend(
    request: pytest.FixtureRequest, postgres_url: str, tmp_path: Path
) -> AsyncIterator[DatabaseFactory]:
    """Runs a test once on PostgreSQL and once on SQLite: gives a `Database` with the tables
    of the metadata it is called with; disposed after the test."""
    url = postgres_url if request.param == "postgresql" else f"sqlite+aiosqlite:///{tmp_path}/t.db"
    made: list[Database] = []

    async def make(metadata: MetaData) -> Database:
        database = Database(url, pool_size=2)
        made.append(database)
        async with database.engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
        return database

    yield make
    for database in made:
        await database.dispose()
