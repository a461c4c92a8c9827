"""Database engine and sessions: SQLAlchemy 2 async on SQLite (default) or PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Dialect, MetaData, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator

from meshkit.readiness import Dependency
from meshkit.settings import ServiceSettings

logger = logging.getLogger(__name__)

# Stable constraint names, so migrations can refer to (and drop) them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# How long opening a PostgreSQL connection may take before it counts as failed.
CONNECT_TIMEOUT_SECONDS = 5.0


def new_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use datetime.now(UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def in_utc(values: dict[str, Any]) -> dict[str, Any]:
    """The datetimes among a row's values in UTC, as the ORM's `UTCDateTime` gives them."""
    for name, value in values.items():
        if isinstance(value, datetime):
            values[name] = value.astimezone(UTC)
    return values


def is_sqlite(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def ensure_sqlite_directory(url: str | URL) -> None:
    """Create the directory of an SQLite file when missing: SQLite creates the file, not
    the directories above it, and a fresh clone has no `var/`."""
    parsed = make_url(url)
    if is_sqlite(parsed) and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the single writer; busy_timeout waits for the lock
    # instead of failing at once when two transactions meet.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def create_engine(url: str, *, echo: bool = False, pool_size: int = 10) -> AsyncEngine:
    """An engine for `url`; an SQLite file's directory is created when missing."""
    parsed = make_url(url)
    if is_sqlite(parsed):
        ensure_sqlite_directory(parsed)
        engine = create_async_engine(parsed, echo=echo)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    # Bursts of reads open half as many again; the writes have the driver's pool.
    engine = create_async_engine(
        parsed, echo=echo, pool_size=pool_size, max_overflow=max(1, pool_size // 2)
    )
    event.listen(engine.sync_engine.pool, "checkin", _note_checkin)
    event.listen(engine.sync_engine.pool, "checkout", _ping_if_idle)
    return engine


# A pooled connection unused this long is pinged before it is handed out, so one that a
# database restart or a firewall closed meanwhile is replaced instead of failing a request.
# Connections in steady use are not pinged: SQLAlchemy's `pool_pre_ping` pings every
# checkout, a round trip that made up a sizeable part of an order read's time.
IDLE_PING_AFTER_SECONDS = 5.0


def _note_checkin(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    record.info["checked_in_at"] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: Any) -> None:
    checked_in_at = record.info.get("checked_in_at")
    if checked_in_at is None or time.monotonic() - checked_in_at < IDLE_PING_AFTER_SECONDS:
        return
    try:
        dbapi_connection.ping()
    except Exception as error:
        # The pool drops this connection and checks out (or opens) another.
        raise DisconnectionError("the pooled connection is gone") from error


def driver_pool_size(pool_size: int) -> int:
    """The connections of asyncpg's own pool (`Database.driver_connection`): as many as the
    ORM's, for it carries every unit of work (each write) besides the hottest reads."""
    return max(1, pool_size)


class Database:
    """The engine and session factory of one service, created once and disposed on shutdown."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 10) -> None:
        self.url = url
        self.engine = create_engine(url, echo=echo, pool_size=pool_size)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # Reads run each statement on its own, with no BEGIN and ROLLBACK around it: two
        # round trips fewer per read. Their sessions refuse to write (`_ReadSession`).
        self.read_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self.read_sessions = async_sessionmaker(
            self.read_engine,
            expire_on_commit=False,
            sync_session_class=_ReadSession,
        )
        self.driver_pool_size = driver_pool_size(pool_size)
        self._driver_pool: Any = None
        self._driver_pool_opening = asyncio.Lock()
        self._readiness_connection: Any = None

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> Database:
        return cls(settings.database_url, pool_size=settings.db_pool_size)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session whose work commits when the block ends and rolls back if it raises.

        For tests and one-off tools that write ORM objects: the services write through their
        unit of work (`meshkit.data.UnitOfWork`).
        """
        async with self.sessions() as session, session.begin():
            yield session

    @property
    def is_postgresql(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @asynccontextmanager
    async def driver_connection(self) -> AsyncIterator[Any]:
        """A connection of asyncpg's own pool, in autocommit, for the hottest reads and every
        unit of work's transaction (PostgreSQL only).

        SQLAlchemy's execution costs several times what the query does, and even a raw
        connection checked out of its async pool costs more per read than one of asyncpg's
        pool (greenlets, and a task per check-in). This pool holds up to `DB_POOL_SIZE`
        connections, opened when first needed; asyncpg replaces a connection
        the server closed when it is next handed out.
        """
        pool = self._driver_pool or await self._open_driver_pool()
        async with pool.acquire() as connection:
            yield connection

    async def driver_row(self, query: str, *args: object) -> dict[str, Any] | None:
        """One row of `query` through the driver's pool, its datetimes in UTC (PostgreSQL)."""
        async with self.driver_connection() as connection:
            row = await connection.fetchrow(query, *args)
        return in_utc(dict(row)) if row is not None else None

    async def _open_driver_pool(self) -> Any:
        if not self.is_postgresql:
            raise RuntimeError("driver_connection() is for PostgreSQL only")
        async with self._driver_pool_opening:
            if self._driver_pool is None:
                import asyncpg  # type: ignore[import-untyped]  # only PostgreSQL needs it

                url = self.engine.url.set(drivername="postgresql")
                self._driver_pool = await asyncpg.create_pool(
                    url.render_as_string(hide_password=False),
                    min_size=1,
                    max_size=self.driver_pool_size,
                    reset=_keep_session,
                    # Every hot read waits on this lock while the pool opens: a connection
                    # attempt that hangs must fail soon (asyncpg waits a minute by default),
                    # and the next read tries again.
                    timeout=CONNECT_TIMEOUT_SECONDS,
                )
        return self._driver_pool

    @property
    def readiness(self) -> Dependency:
        """The database as a dependency of the service's readiness (`meshkit.readiness`)."""
        return Dependency("database", self.check_reachable)

    async def check_reachable(self) -> None:
        """Returns once the database answers `SELECT 1`; raises when it cannot be reached.

        On PostgreSQL the check has a connection of its own, kept between checks: through the
        pools it would wait behind the requests when every connection is busy, and a service
        that is merely busy would say it is not ready, every replica at once. The caller bounds
        the wait (`ReadinessWatcher` cancels a check past its timeout); a connection that
        failed or was cancelled mid-check is dropped, and the next check opens another.
        """
        if not self.is_postgresql:
            # SQLite is for development: one replica, no fleet to take out of service at once.
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            return
        import asyncpg  # only PostgreSQL needs it

        kept, self._readiness_connection = self._readiness_connection, None
        if kept is not None and not kept.is_closed():
            try:
                await kept.fetchval("SELECT 1")
            except Exception:
                # Only this connection may have died: one the server ended is often not yet
                # seen as closed when the next check uses it. A new one decides, so a stale
                # connection is not reported as an outage.
                kept.terminate()
            except BaseException:
                # Cancelled past the timeout: without a word to a server that may not answer.
                kept.terminate()
                raise
            else:
                self._readiness_connection = kept
                return
        url = self.engine.url.set(drivername="postgresql")
        connection = await asyncpg.connect(
            url.render_as_string(hide_password=False), timeout=CONNECT_TIMEOUT_SECONDS
        )
        try:
            await connection.fetchval("SELECT 1")
        except BaseException:
            connection.terminate()
            raise
        self._readiness_connection = connection
        if self._driver_pool is None:
            # Opened before the service says it is ready, not by its first request: every
            # write runs on this pool, and a first connection can be slow to open (a name
            # lookup on a network just created), slower than a caller's deadline.
            await self._open_driver_pool()

    async def _close_readiness_connection(self) -> None:
        connection, self._readiness_connection = self._readiness_connection, None
        if connection is not None:
            with suppress(Exception):
                # asyncpg drops the connection without a goodbye if the server does not answer.
                await connection.close(timeout=1.0)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session for reads: each statement sees what was committed when it ran."""
        async with self.read_sessions() as session:
            yield session

    async def dispose(self) -> None:
        await self._close_readiness_connection()
        pool, self._driver_pool = self._driver_pool, None
        if pool is not None:
            await pool.close()
        await self.engine.dispose()

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.dispose()


async def _keep_session(connection: Any) -> None:
    """The driver pool's reset on release: nothing beyond asyncpg's own rollback of an open
    transaction. Its default (RESET ALL, UNLISTEN, CLOSE ALL, advisory unlocks) is a round
    trip per read, and these reads change no session state."""


class _ReadSession(Session):
    """The session of `Database.session()`: in autocommit, a write would not be atomic."""


@event.listens_for(_ReadSession, "before_flush")
def _refuse_writes(session: Session, flush_context: Any, instances: Any) -> None:
    raise RuntimeError("a read session does not write: write through a unit of work")


def after_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Run `callback` once the session's transaction commits (never if it rolls back).

    For waking a worker that must not look before the rows it wants are visible.
    """
    event.listen(
        session.sync_session, "after_commit", lambda _session: run_after_commit(callback), once=True
    )


def run_after_commit(callback: Callable[[], None]) -> None:
    """Run what follows a commit: a failure is logged, never raised, for the data is durable
    by then and the callbacks after it (waking the relay, most often) must still run."""
    try:
        callback()
    except Exception:
        logger.exception("a callback after commit failed")
