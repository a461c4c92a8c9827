"""Transactions and statements each service's database ran, from PostgreSQL's own
statistics."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import asyncpg  # type: ignore[import-untyped]

from bench.stack import POSTGRES_DSN


async def transactions(databases: Mapping[str, str]) -> dict[str, int]:
    """Commits plus rollbacks so far, per service (databases: service to DSN)."""
    names = {dsn.rsplit("/", 1)[1]: service for service, dsn in databases.items()}
    connection = await asyncpg.connect(POSTGRES_DSN)
    try:
        rows = await connection.fetch(
            "SELECT datname, xact_commit + xact_rollback AS n FROM pg_stat_database"
            " WHERE datname = ANY($1::text[])",
            list(names),
        )
    finally:
        await connection.close()
    return {names[row["datname"]]: int(row["n"]) for row in rows}


async def statements(databases: Mapping[str, str]) -> dict[str, int] | None:
    """Statements run so far, per service, from pg_stat_statements; None when PostgreSQL runs
    without it (it must be in shared_preload_libraries)."""
    names = {dsn.rsplit("/", 1)[1]: service for service, dsn in databases.items()}
    connection = await asyncpg.connect(POSTGRES_DSN)
    try:
        try:
            await connection.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            # Refused unless the server loaded the module at its start.
            await connection.fetchval("SELECT count(*) FROM pg_stat_statements LIMIT 1")
        except asyncpg.PostgresError:
            return None
        rows = await connection.fetch(
            "SELECT d.datname, sum(s.calls)::bigint AS n FROM pg_stat_statements s"
            " JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = ANY($1::text[])"
            " GROUP BY d.datname",
            list(names),
        )
    finally:
        await connection.close()
    counts = dict.fromkeys(names.values(), 0)
    counts.update({names[row["datname"]]: int(row["n"]) for row in rows})
    return counts


@dataclass
class TransactionMeter:
    """Database transactions per service between `start()` and `stop()`."""

    databases: Mapping[str, str]
    _before: dict[str, int] | None = None

    async def start(self) -> TransactionMeter:
        self._before = await transactions(self.databases)
        return self

    async def stop(self) -> dict[str, int]:
        assert self._before is not None, "start() first"
        after = await transactions(self.databases)
        return {service: after[service] - self._before.get(service, 0) for service in after}
