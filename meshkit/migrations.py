"""Alembic migrations for every service: one env.py body, one way to upgrade."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from meshkit.db import is_sqlite

logger = logging.getLogger(__name__)

# Arbitrary but fixed: replicas starting together on PostgreSQL take turns migrating.
_MIGRATION_LOCK_KEY = 0x65636F6D


def alembic_config(script_location: Path, database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade_to_head(script_location: Path, database_url: str) -> None:
    """Apply every pending migration. Synchronous: run it before the loop or in a thread."""
    command.upgrade(alembic_config(script_location, database_url), "head")


async def upgrade_to_head_async(script_location: Path, database_url: str) -> None:
    # Alembic's env.py starts its own event loop, which cannot nest inside ours.
    await asyncio.to_thread(upgrade_to_head, script_location, database_url)


def run_env(target_metadata: MetaData) -> None:
    """The whole body of a service's migrations/env.py."""
    url = context.config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("alembic config has no sqlalchemy.url")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    asyncio.run(_run_online(url, target_metadata))


async def _run_online(url: str, target_metadata: MetaData) -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_migrate, target_metadata, is_sqlite(url))
    finally:
        await engine.dispose()


def _migrate(connection: Connection, target_metadata: MetaData, sqlite: bool) -> None:
    if not sqlite:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
    try:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            # SQLite alters tables by copying them; batch mode does that for us.
            render_as_batch=sqlite,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    finally:
        if not sqlite:
            connection.execute(
                text("SELECT pg_advisory_unlock(:key)"), {"key": _MIGRATION_LOCK_KEY}
            )
            connection.commit()
