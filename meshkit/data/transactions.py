"""Prebuilt statements run in a unit of work's transaction: on asyncpg itself on PostgreSQL,
through a SQLAlchemy session elsewhere (SQLite).

Most transactions are a few small statements each (the saga's above all), and SQLAlchemy's
session cost several times what the driver does for them (a Core connection not much less).
Statements are still SQLAlchemy Core, written once: on PostgreSQL each is compiled once per set
of parameters and run as the driver's own prepared statement.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import Insert, String, Table, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeEngine

from meshkit.data.db import Database, after_commit, in_utc, run_after_commit

_POSTGRESQL = asyncpg_dialect()  # type: ignore[no-untyped-call]


class Statement:
    """A Core statement built once, for `Transaction.execute` and `Transaction.fetch`."""

    __slots__ = ("_compiled", "_defaults", "statement")

    def __init__(self, statement: Executable) -> None:
        assert isinstance(statement, ClauseElement)
        self.statement = statement
        self._compiled: dict[frozenset[str], tuple[str, SQLCompiler]] = {}
        # An insert's Python-side column defaults, as SQLAlchemy's own execution adds them for
        # the columns it is not given; None for other statements, which carry their own binds,
        # and for an insert of a select's rows, which names every column it writes.
        self._defaults: tuple[tuple[str, Any], ...] | None = (
            tuple(
                (column.key, column.default)
                for column in statement.table.columns
                if column.default is not None
            )
            if isinstance(statement, Insert) and statement.select is None
            else None
        )

    def on_postgresql(self, params: Mapping[str, Any]) -> tuple[str, list[Any]]:
        """The SQL and positional arguments that run this statement with `params` on asyncpg."""
        if self._defaults is not None:
            params = self._with_defaults(params)
        names = frozenset(params)
        found = self._compiled.get(names)
        if found is None:
            # An insert names the columns it is given.
            keys = sorted(names) if self._defaults is not None else None
            compiled = self.statement.compile(dialect=_POSTGRESQL, column_keys=keys)
            assert isinstance(compiled, SQLCompiler)
            found = self._compiled[names] = (str(compiled), compiled)
        sql, compiled = found
        bound = compiled.construct_params(dict(params)) or {}
        return sql, [bound[name] for name in compiled.positiontup or ()]

    def _with_defaults(self, params: Mapping[str, Any]) -> dict[str, Any]:
        values = dict(params)
        for key, default in self._defaults or ():
            if key in values:
                continue
            if default.is_scalar:
                values[key] = default.arg
            elif default.is_callable:
                values[key] = default.arg(None)
        return values


class RowsInsert:
    """An insert of any number of rows of `columns`, built once: one statement for all of them
    on PostgreSQL (an array per column, unnested), one row at a time elsewhere.

    A unit of work that writes several rows of one table (a batch of events' timeline entries
    or outbox rows) pays one statement instead of one per row. `conflict_keys`: rows whose key
    exists already are skipped, as `ON CONFLICT DO NOTHING`.
    """

    __slots__ = ("columns", "conflict_keys", "many", "one", "table")

    def __init__(
        self, table: Table, columns: Sequence[str], *, conflict_keys: Sequence[str] = ()
    ) -> None:
        unnamed = [c.key for c in table.columns if c.default is not None and c.key not in columns]
        if unnamed:
            # A row of `one` would take their Python-side defaults, and rows of `many` not.
            raise ValueError(f"{table.name}: columns with defaults must be inserted: {unnamed}")
        self.table = table
        self.columns = tuple(columns)
        self.conflict_keys = tuple(conflict_keys)
        # `inline`: nothing is read back (a generated key), so no RETURNING.
        postgresql, sqlite = postgresql_insert(table).inline(), sqlite_insert(table).inline()
        if conflict_keys:
            keys = list(conflict_keys)
            postgresql = postgresql.on_conflict_do_nothing(index_elements=keys)
            sqlite = sqlite.on_conflict_do_nothing(index_elements=keys)
        one: dict[str, Insert] = {"postgresql": postgresql, "sqlite": sqlite}
        # Per dialect, for a single row (and every row elsewhere); and all rows on PostgreSQL.
        self.one = {name: Statement(insert) for name, insert in one.items()}
        self.many = Statement(self.unnested())

    def unnested(self, prefix: str = "") -> Insert:
        """All rows in one PostgreSQL statement, from an array per column, each array a
        parameter named `prefix` and the column."""
        arrays = select(
            *(
                func.unnest(
                    bindparam(prefix + name, type_=ARRAY(_unbounded(self.table.c[name].type)))
                )
                for name in self.columns
            )
        )
        many = postgresql_insert(self.table).from_select(
            list(self.columns), arrays, include_defaults=False
        )
        if self.conflict_keys:
            many = many.on_conflict_do_nothing(index_elements=list(self.conflict_keys))
        return many

    def arrays(self, rows: Sequence[Mapping[str, Any]], prefix: str = "") -> dict[str, list[Any]]:
        """The rows as one array per column, the parameters of `many` (or of `unnested(prefix)`)."""
        return {prefix + name: [row[name] for row in rows] for name in self.columns}


# Statements that insert into several tables at once, by the inserts they join.
_JOINED: dict[tuple[RowsInsert, ...], Statement] = {}


def joined(inserts: tuple[RowsInsert, ...]) -> Statement:
    """One PostgreSQL statement of several inserts: each but the last a data-modifying CTE.

    PostgreSQL runs them against one snapshot and checks foreign keys as the statement ends, so
    a row may refer to a row of another of the inserts, whatever their order. The parameters
    are each insert's arrays, prefixed by its place (`joined_arrays`).
    """
    statement = _JOINED.get(inserts)
    if statement is None:
        *ctes, last = (insert.unnested(_prefix(place)) for place, insert in enumerate(inserts))
        statement = _JOINED[inserts] = Statement(
            last.add_cte(*(cte.cte(f"joined_{place}") for place, cte in enumerate(ctes)))
        )
    return statement


def joined_arrays(held: Sequence[tuple[RowsInsert, Sequence[Mapping[str, Any]]]]) -> dict[str, Any]:
    """The parameters of `joined` for these inserts and their rows."""
    params: dict[str, Any] = {}
    for place, (insert, rows) in enumerate(held):
        params.update(insert.arrays(rows, _prefix(place)))
    return params


def _prefix(place: int) -> str:
    return f"j{place}_"


def _unbounded(type_: TypeEngine[Any]) -> TypeEngine[Any]:
    """A column's type without its length: an explicit cast to `VARCHAR(n)` would cut a longer
    value short silently, where the column refuses it."""
    return type_.__class__() if isinstance(type_, String) else type_


class IntegrityViolation(Exception):
    """A statement broke a constraint (a unique key, most often): the transaction is lost."""


class Transaction(ABC):
    """Statements of one transaction; what it commits, it commits together."""

    dialect: str
    # Whether a transaction is open on the database: held rows are written in it.
    begun = True

    def __init__(self) -> None:
        # Rows to insert as the transaction commits, by insert, in the order first held.
        self._held: dict[RowsInsert, list[Mapping[str, Any]]] = {}

    def hold(self, insert: RowsInsert, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert `rows` as the transaction commits (`write_held`), with every other row held:
        on PostgreSQL, all of them in one statement.

        Nothing can read a held row before then, in this transaction or another, and a
        constraint a held row breaks is raised by the commit. Only a unit of work's commit
        writes them.
        """
        if rows:
            self._held.setdefault(insert, []).extend(rows)

    async def write_held(self) -> None:
        """Insert the rows held so far, insert by insert in the order they were first held."""
        held, self._held = self._held, {}
        for insert, rows in held.items():
            await self.insert_rows(insert, rows)

    @abstractmethod
    async def execute(self, statement: Statement, params: Mapping[str, Any] | None = None) -> int:
        """Runs the statement; returns how many rows it wrote."""

    @abstractmethod
    async def execute_many(self, statement: Statement, rows: Sequence[Mapping[str, Any]]) -> None:
        """Runs the statement once per row of parameters, as one batch."""

    async def insert_rows(self, insert: RowsInsert, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert `rows` (each with every one of `insert.columns`): one row by one statement,
        more by `insert_many`."""
        if len(rows) == 1:
            await self.execute(insert.one[self.dialect], rows[0])
        elif rows:
            await self.insert_many(insert, rows)

    async def insert_many(self, insert: RowsInsert, rows: Sequence[Mapping[str, Any]]) -> None:
        await self.execute_many(insert.one[self.dialect], rows)

    @abstractmethod
    async def fetch(
        self, statement: Statement, params: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """The rows of a query or of a `RETURNING` clause."""

    async def fetchrow(
        self, statement: Statement, params: Mapping[str, Any] | None = None
    ) -> dict[str, Any] | None:
        rows = await self.fetch(statement, params)
        return rows[0] if rows else None

    @abstractmethod
    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once the transaction commits (never if it rolls back)."""


class DriverTransaction(Transaction):
    """On an asyncpg connection (PostgreSQL), inside its transaction once a statement runs.

    `transaction`, asyncpg's, is begun by the first statement: a unit of work that only held
    rows to insert commits them as one statement in autocommit, with no BEGIN and COMMIT round
    trips around it. Without one, each statement is a transaction by itself (`fetch_alone`).
    """

    dialect = "postgresql"

    def __init__(self, connection: Any, transaction: Any = None) -> None:
        super().__init__()
        self.connection = connection
        self._transaction = transaction
        self.begun = False
        # A statement failed: PostgreSQL has aborted the transaction, and would answer its
        # COMMIT with a ROLLBACK, without an error. Whoever commits must be told.
        self.failed = False
        self._after_commit: list[Callable[[], None]] = []

    async def execute(self, statement: Statement, params: Mapping[str, Any] | None = None) -> int:
        sql, args = statement.on_postgresql(params or {})
        with self._running():
            await self._begin()
            status: str = await self.connection.execute(sql, *args)
        count = status.rsplit(" ", 1)[-1]  # "INSERT 0 1", "UPDATE 3"
        return int(count) if count.isdigit() else 0

    async def execute_many(self, statement: Statement, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        compiled = [statement.on_postgresql(row) for row in rows]
        with self._running():
            await self._begin()
            await self.connection.executemany(compiled[0][0], [args for _, args in compiled])

    async def insert_many(self, insert: RowsInsert, rows: Sequence[Mapping[str, Any]]) -> None:
        await self.execute(insert.many, insert.arrays(rows))

    async def fetch(
        self, statement: Statement, params: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        sql, args = statement.on_postgresql(params or {})
        with self._running():
            await self._begin()
            rows = await self.connection.fetch(sql, *args)
        return [in_utc(dict(row)) for row in rows]

    async def write_held(self) -> None:
        """The held rows in one statement, whatever the tables they go to."""
        held, self._held = self._held, {}
        if len(held) == 1:
            [(insert, rows)] = held.items()
            await self.insert_rows(insert, rows)
        elif held:
            await self.execute(joined(tuple(held)), joined_arrays(list(held.items())))

    async def commit(self) -> None:
        """Commit; with no statement run before, the held rows are the whole transaction: one
        statement, which commits by itself."""
        if self.begun:
            await self._transaction.commit()
        else:
            self._transaction = None
            await self.write_held()

    async def rollback(self) -> None:
        self._held = {}
        if self.begun:
            await self._transaction.rollback()

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._after_commit.append(callback)

    def committed(self) -> None:
        for callback in self._after_commit:
            run_after_commit(callback)

    async def _begin(self) -> None:
        if not self.begun and self._transaction is not None:
            await self._transaction.start()
            self.begun = True

    @contextmanager
    def _running(self) -> Iterator[None]:
        try:
            yield
        except asyncpg.IntegrityConstraintViolationError as exc:
            self.failed = True
            raise IntegrityViolation(str(exc)) from exc
        except Exception:
            self.failed = True
            raise


class SessionTransaction(Transaction):
    """Through a SQLAlchemy session inside its transaction (any database)."""

    async def write_held(self) -> None:
        """Insert the held rows one insert after another, foreign keys checked as the
        transaction commits: a row may refer to one held after it, as on PostgreSQL."""
        if self._held and self.dialect == "sqlite":
            await self.session.execute(text("PRAGMA defer_foreign_keys = ON"))
        await super().write_held()

    def __init__(self, session: AsyncSession) -> None:
        super().__init__()
        self.session = session
        self.dialect = session.bind.dialect.name if session.bind else "sqlite"

    async def execute(self, statement: Statement, params: Mapping[str, Any] | None = None) -> int:
        with _integrity_of_session():
            result = await self.session.execute(statement.statement, dict(params or {}))
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def execute_many(self, statement: Statement, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            with _integrity_of_session():
                await self.session.execute(statement.statement, [dict(row) for row in rows])

    async def fetch(
        self, statement: Statement, params: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        with _integrity_of_session():
            result = await self.session.execute(statement.statement, dict(params or {}))
        return [dict(row) for row in result.mappings()]

    def after_commit(self, callback: Callable[[], None]) -> None:
        after_commit(self.session, callback)


@contextmanager
def _integrity_of_session() -> Iterator[None]:
    try:
        yield
    except IntegrityError as exc:
        raise IntegrityViolation(str(exc.orig)) from exc


async def fetch_alone(
    database: Database, statement: Statement, params: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The rows of one statement that is a transaction by itself (an `UPDATE ... RETURNING`).

    On PostgreSQL it runs in autocommit on the driver: no BEGIN and COMMIT round trips around
    it, which cost as much as the statement. Elsewhere, in a session's transaction.
    """
    if database.is_postgresql:
        async with database.driver_connection() as connection:
            return await DriverTransaction(connection).fetch(statement, params)
    async with database.transaction() as session:
        return await SessionTransaction(session).fetch(statement, params)
