"""Fixtures shared by every test: real PostgreSQL databases, Redis, free ports."""

from __future__ import annotations

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


@pytest.fixture(scope="session")
async def postgres_databases() -> AsyncIterator[PostgresFactory]:
    """Creates empty PostgreSQL databases on demand; drops them all when the session ends."""
    created: list[str] = []
    admin = await asyncpg.connect(POSTGRES_ADMIN_DSN)

    async def create() -> str:
        name = f"mesh_test_{uuid.uuid4().hex[:12]}"
        await admin.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        return _sqlalchemy_url(POSTGRES_ADMIN_DSN, name)

    try:
        yield create
    finally:
        for name in created:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


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
async def postgres_url(postgres_databases: PostgresFactory) -> str:
    """A fresh, empty PostgreSQL database for one test (SQLAlchemy URL)."""
    return await postgres_databases()


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
