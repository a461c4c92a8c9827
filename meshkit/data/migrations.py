"""Alembic migrations for every service: one env.py body, one way to upgrade.

Alembic (with Mako and Pygments) is imported only when migrations run: a serving process,
which migrates in a child process (`meshkit.service`), never holds their memory. Whether
there is anything to run is answered without it (`is_at_head`).
"""

from __future__ import annotations

import ast
import asyncio
import logging
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import MetaData, make_url, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from meshkit.data.db import UTCDateTime, ensure_sqlite_directory, is_sqlite

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext, MigrationInfo

logger = logging.getLogger(__name__)

# Arbitrary but fixed: replicas starting together on PostgreSQL take turns migrating.
_MIGRATION_LOCK_KEY = 0x65636F6D
# Where `upgrade_to_head` collects the revisions applied, in the Alembic config's attributes.
_APPLIED = "meshkit.applied_revisions"


def alembic_config(script_location: Path, database_url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade_to_head(script_location: Path, database_url: str) -> list[str]:
    """Apply every pending migration and return their revisions, oldest first.
    Synchronous: run it before the loop or in a thread."""
    # Alembic announces each of its plugins at INFO on every run, as `alembic` is imported.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    from alembic import command

    config = alembic_config(script_location, database_url)
    applied: list[str] = []
    config.attributes[_APPLIED] = applied
    command.upgrade(config, "head")
    return applied


# Past it, the database is taken as not answering: the migrating process then says why.
_HEAD_CHECK_TIMEOUT_SECONDS = 5.0
# The files under versions/ that Alembic reads as scripts: neither an editor's lock file
# (`.#0003_x.py`) nor a package's `__init__.py`.
_SCRIPT_NAME = re.compile(r"(?!\.\#|__init__)(.*\.py)$")


def script_heads(script_location: Path) -> frozenset[str] | None:
    """The head revisions of the scripts under `versions/`, read without Alembic: each
    script's `revision` not named as another's `down_revision`. None when a script does not
    state both as plain literals, cannot be read, or there is none: only Alembic can tell."""
    revisions: set[str] = set()
    parents: set[str] = set()
    try:
        scripts = sorted(
            path
            for path in (script_location / "versions").iterdir()
            if _SCRIPT_NAME.match(path.name)
        )
        statements = [_literal_assignments(path, ("revision", "down_revision")) for path in scripts]
    except (OSError, SyntaxError, ValueError):
        return None
    for stated in statements:
        revision, down = stated.get("revision"), stated.get("down_revision", ())
        if not isinstance(revision, str) or "down_revision" not in stated:
            return None
        revisions.add(revision)
        if isinstance(down, str):
            parents.add(down)
        elif isinstance(down, tuple) and all(isinstance(parent, str) for parent in down):
            parents.update(down)  # a merge revision
        elif down is not None:
            return None
    return frozenset(revisions - parents) if revisions else None


def _literal_assignments(path: Path, names: tuple[str, ...]) -> dict[str, object]:
    """The module-level `name = <literal>` (annotated or not) of `names` in a script."""
    stated: dict[str, object] = {}
    # Bytes: the script's own encoding declaration decides, not the locale.
    for node in ast.parse(path.read_bytes(), str(path)).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in names:
            try:
                stated[target.id] = ast.literal_eval(value)
            except ValueError:
                stated[target.id] = value  # not a literal: neither a str nor a tuple
    return stated


async def database_revisions(database_url: str) -> frozenset[str] | None:
    """The revisions the database stands at; None when they cannot be read, for whatever
    reason: no version table yet, no database answering, a URL the async engine refuses. The
    migrating process then says why. An SQLite file that does not exist is not created."""
    try:
        url = make_url(database_url)
        if is_sqlite(url) and not _sqlite_file_exists(url.database):
            return None
        engine = create_async_engine(url, poolclass=pool.NullPool)
    except Exception:
        return None
    try:
        async with asyncio.timeout(_HEAD_CHECK_TIMEOUT_SECONDS), engine.connect() as connection:
            found = await connection.execute(text("SELECT version_num FROM alembic_version"))
            return frozenset(row[0] for row in found)
    except Exception:
        return None
    finally:
        await engine.dispose()


def _sqlite_file_exists(database: str | None) -> bool:
    return bool(database) and Path(database or "").exists()


async def is_at_head(script_location: Path, database_url: str) -> bool:
    """Whether upgrading to head would apply nothing: the database stands at exactly the
    scripts' heads. False whenever either cannot be read plainly."""
    heads = script_heads(script_location)
    if not heads:
        return False
    return await database_revisions(database_url) == heads


async def upgrade_to_head_async(script_location: Path, database_url: str) -> list[str]:
    # Alembic's env.py starts its own event loop, which cannot nest inside ours.
    return await asyncio.to_thread(upgrade_to_head, script_location, database_url)


def run_env(target_metadata: MetaData) -> None:
    """The whole body of a service's migrations/env.py."""
    from alembic import context

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
    ensure_sqlite_directory(url)
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_migrate, target_metadata, is_sqlite(url))
    finally:
        await engine.dispose()


def _render_item(kind: str, value: Any, autogen_context: Any) -> str | Literal[False]:
    """Autogenerated revisions name our column types by their import, not by module path."""
    if kind == "type" and isinstance(value, UTCDateTime):
        autogen_context.imports.add("from meshkit.data.db import UTCDateTime")
        return "UTCDateTime()"
    return False


def _note_applied(
    ctx: MigrationContext, step: MigrationInfo, heads: Collection[Any], run_args: Mapping[str, Any]
) -> None:
    """Alembic's `on_version_apply` hook; it passes these four by name."""
    from alembic import context

    applied = context.config.attributes.get(_APPLIED)
    if applied is not None and step.is_upgrade:
        applied.append(step.up_revision_id)


def _migrate(connection: Connection, target_metadata: MetaData, sqlite: bool) -> None:
    from alembic import context

    if not sqlite:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
        # The lock is the session's; its statement's transaction ends here, so that the
        # migrations run in one of alembic's own: one that fails rolls back alone, and the
        # unlock below still runs, instead of failing in an aborted transaction.
        connection.commit()
    try:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            # SQLite alters tables by copying them; batch mode does that for us.
            render_as_batch=sqlite,
            compare_type=True,
            render_item=_render_item,
            on_version_apply=_note_applied,
        )
        with context.begin_transaction():
            context.run_migrations()
    finally:
        if not sqlite:
            connection.execute(
                text("SELECT pg_advisory_unlock(:key)"), {"key": _MIGRATION_LOCK_KEY}
            )
            connection.commit()
