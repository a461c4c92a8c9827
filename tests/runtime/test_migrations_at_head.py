"""A service starts without a migrating process when its database already stands at head."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from meshkit import service
from meshkit.data import upgrade_to_head_async
from meshkit.data.migrations import (
    alembic_config,
    database_revisions,
    is_at_head,
    script_heads,
)
from meshkit.settings import PROJECT_ROOT, load_settings
from order_service.app import DEFINITION as ORDER_SERVICE
from tests.support import free_port

SERVICES = ("user_service", "product_service", "order_service", "payment_service")
ORDER_MIGRATIONS = PROJECT_ROOT / "order_service" / "migrations"


def _script(directory: Path, name: str, revision: str, down_revision: str) -> None:
    (directory / "versions" / f"{name}.py").write_text(
        textwrap.dedent(
            f'''\
            """{name}"""
            revision: str = {revision}
            down_revision = {down_revision}


            def upgrade() -> None:
                pass
            '''
        )
    )


@pytest.mark.parametrize("name", [*SERVICES, "notification_service"])
def test_the_heads_read_from_the_scripts_are_alembics(name: str) -> None:
    migrations = PROJECT_ROOT / name / "migrations"
    expected = ScriptDirectory.from_config(alembic_config(migrations, "sqlite://")).get_heads()
    assert script_heads(migrations) == frozenset(expected)


def test_branches_and_merges_give_their_heads(tmp_path: Path) -> None:
    (tmp_path / "versions").mkdir()
    _script(tmp_path, "a", '"a"', "None")
    _script(tmp_path, "b", '"b"', '"a"')
    _script(tmp_path, "c", '"c"', '"a"')
    assert script_heads(tmp_path) == frozenset({"b", "c"})
    _script(tmp_path, "d", '"d"', '("b", "c")')
    assert script_heads(tmp_path) == frozenset({"d"})


@pytest.mark.parametrize(
    ("revision", "down_revision"),
    [("make_id()", '"a"'), ('"b"', "PARENT"), ('"b"', '("a", 1)')],
)
def test_a_script_that_is_not_plain_leaves_the_answer_to_alembic(
    tmp_path: Path, revision: str, down_revision: str
) -> None:
    (tmp_path / "versions").mkdir()
    assert script_heads(tmp_path) is None  # no script at all
    _script(tmp_path, "a", '"a"', "None")
    _script(tmp_path, "b", revision, down_revision)
    assert script_heads(tmp_path) is None


@pytest.mark.integration
async def test_a_database_is_at_head_once_migrated_and_no_longer_after_a_new_script(
    postgres_url: str, tmp_path: Path
) -> None:
    assert not await is_at_head(ORDER_MIGRATIONS, postgres_url)  # no version table yet
    await upgrade_to_head_async(ORDER_MIGRATIONS, postgres_url)
    assert await is_at_head(ORDER_MIGRATIONS, postgres_url)

    newer = tmp_path / "migrations"
    shutil.copytree(ORDER_MIGRATIONS, newer)
    heads = script_heads(ORDER_MIGRATIONS)
    assert heads is not None
    (head,) = heads
    _script(newer, "9999_next", '"9999"', f'"{head}"')
    assert not await is_at_head(newer, postgres_url)


async def test_a_missing_sqlite_file_is_not_at_head_and_not_created(tmp_path: Path) -> None:
    database = tmp_path / "absent" / "order_service.db"
    url = f"sqlite+aiosqlite:///{database}"
    assert await database_revisions(url) is None
    assert not await is_at_head(ORDER_MIGRATIONS, url)
    assert not database.parent.exists()

    database.parent.mkdir()
    await upgrade_to_head_async(ORDER_MIGRATIONS, url)
    assert await is_at_head(ORDER_MIGRATIONS, url)


def test_editor_lock_files_and_init_are_not_scripts(tmp_path: Path) -> None:
    (tmp_path / "versions").mkdir()
    _script(tmp_path, "a", '"a"', "None")
    (tmp_path / "versions" / "__init__.py").write_text("")
    # An editor's lock file: a dangling link, which cannot be read.
    (tmp_path / "versions" / ".#a.py").symlink_to(tmp_path / "absent")
    assert script_heads(tmp_path) == frozenset({"a"})


def test_a_script_that_cannot_be_parsed_or_no_versions_leaves_the_answer_to_alembic(
    tmp_path: Path,
) -> None:
    assert script_heads(tmp_path) is None  # no versions/ at all
    (tmp_path / "versions").mkdir()
    _script(tmp_path, "a", '"a"', "None")
    (tmp_path / "versions" / "b.py").write_text("revision = (\n")
    assert script_heads(tmp_path) is None


async def test_a_url_the_async_engine_refuses_is_not_at_head(tmp_path: Path) -> None:
    # A synchronous driver: the service's own start then fails in the migrating process,
    # with its one line of why, not in this check with a traceback.
    database = tmp_path / "order_service.db"
    database.write_bytes(b"")
    assert await database_revisions(f"sqlite:///{database}") is None


async def test_a_database_that_does_not_answer_is_not_at_head() -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/absent"
    assert await database_revisions(url) is None


def test_the_migrating_process_runs_only_when_the_database_is_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    children: list[str] = []
    monkeypatch.setattr(service, "_migrate_in_child", children.append)
    settings = load_settings(
        ORDER_SERVICE.settings_cls,
        env_file=None,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'order_service.db'}",
    )

    service.migrate_before_serving(ORDER_MIGRATIONS, settings)
    assert children == ["order_service"]

    service._migrate(ORDER_SERVICE, settings)
    service.migrate_before_serving(ORDER_MIGRATIONS, settings)
    assert children == ["order_service"]
