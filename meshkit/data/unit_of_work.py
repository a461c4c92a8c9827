"""A unit of work: one business transaction, the repositories that work in it, and the events
it publishes, committed together or not at all.

The block opens the transaction. Nothing in it is durable until `commit()`, which writes the
events published so far to the outbox, in the same transaction, and commits. Leaving the block
without committing, by an exception or not, rolls everything back. A service subclasses it to
attach its repositories (`attach`), so its domain code reaches the database only through them.

On PostgreSQL the transaction is one of asyncpg's own connections, so the repositories' hot
statements run on the driver, and it begins with its first statement: a block that only
inserts (an order, its timeline entry and its event) commits as one statement. Elsewhere
(SQLite) it is a SQLAlchemy session's.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, Self

from google.protobuf.message import Message

from meshkit.data.db import Database
from meshkit.data.transactions import DriverTransaction, SessionTransaction, Transaction
from meshkit.failures import mark_commit_attempted

logger = logging.getLogger(__name__)


class Published(Protocol):
    """An event as published: what a change records beside itself (the message's envelope)."""

    @property
    def message_id(self) -> str: ...
    @property
    def event_type(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...


class EventOutbox(Protocol):
    """Where a unit of work writes its events (`meshkit.messaging.Outbox`); data does not
    depend on messaging, messaging on data."""

    def envelope(self, body: Message, *, correlation_id: str) -> Any: ...

    async def write(self, tx: Transaction, published: Sequence[tuple[Any, Message]]) -> None: ...


class UnitOfWork:
    """One transaction: `async with uow: ...; await uow.commit()`."""

    tx: Transaction

    def __init__(self, database: Database, outbox: EventOutbox | None = None) -> None:
        self.database = database
        self.outbox = outbox
        self._published: list[tuple[Published, Message]] = []
        self._stack: AsyncExitStack | None = None
        self._commit: Callable[[], Awaitable[None]] | None = None
        self._rollback: Callable[[], Awaitable[None]] | None = None
        self._committed: Callable[[], None] = _nothing

    def attach(self, tx: Transaction) -> None:
        """Attach the service's repositories to the transaction; a subclass's hook."""

    async def __aenter__(self) -> Self:
        if self._stack is not None:
            raise RuntimeError("a unit of work is entered once")
        stack = self._stack = AsyncExitStack()
        try:
            if self.database.is_postgresql:
                connection = await stack.enter_async_context(self.database.driver_connection())
                driver = DriverTransaction(connection, connection.transaction())
                self.tx = driver
                self._commit, self._rollback = driver.commit, driver.rollback
                # A session's own event runs the callbacks of a SessionTransaction.
                self._committed = driver.committed
            else:
                session = await stack.enter_async_context(self.database.sessions())
                begun = await session.begin()
                self.tx = SessionTransaction(session)
                self._commit, self._rollback = begun.commit, begun.rollback
            self.attach(self.tx)
        except BaseException:
            await stack.aclose()
            raise
        return self

    def publish(self, body: Message, *, correlation_id: str) -> Published:
        """Publish the event if, and when, this unit of work commits.

        The envelope is made now, so its message id can be recorded beside the change (the
        order's timeline does); the outbox row is written by `commit()`.
        """
        self._check_open("publish()")
        if self.outbox is None:
            raise RuntimeError("this unit of work was given no outbox to publish through")
        envelope: Published = self.outbox.envelope(body, correlation_id=correlation_id)
        self._published.append((envelope, body))
        return envelope

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once the transaction commits (never if it rolls back); a failure of
        it is logged, and does not undo the commit."""
        self._check_open("after_commit()")
        self.tx.after_commit(callback)

    async def commit(self) -> None:
        """Write the published events and commit them with every other change of the block."""
        self._check_open("commit()")
        if isinstance(self.tx, DriverTransaction) and self.tx.failed:
            # PostgreSQL would answer COMMIT with a ROLLBACK and no error: a statement failed
            # (its error caught in the block), and the transaction is lost.
            raise RuntimeError("a statement of this unit of work failed: nothing can commit")
        if self._published:
            assert self.outbox is not None
            await self.outbox.write(self.tx, self._published)
            self._published = []
        if self.tx.begun:
            # In the transaction, which a failure here rolls back as the block ends. Else the
            # held rows are all there is to commit (`DriverTransaction.commit`).
            await self.tx.write_held()
        assert self._commit is not None
        commit, self._commit, self._rollback = self._commit, None, None
        mark_commit_attempted()
        await commit()
        self._committed()

    def _check_open(self, what: str) -> None:
        if self._commit is None:
            raise RuntimeError(f"{what} belongs inside the `async with` block, before commit()")

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._stack is not None
        try:
            if self._rollback is not None:
                if exc is None and self._published:
                    # Published events went nowhere: most likely a forgotten commit().
                    logger.warning(
                        "a unit of work ended without commit(); %d event(s) published in it "
                        "were dropped",
                        len(self._published),
                    )
                self._commit = None
                try:
                    await self._rollback()
                except Exception:
                    if exc is None:
                        raise
                    # The error that ended the block says more than why the rollback failed
                    # (a lost connection, most often: its transaction is gone with it).
                    logger.debug("rollback after %r failed", exc, exc_info=True)
        finally:
            await self._stack.aclose()


def _nothing() -> None:
    pass
