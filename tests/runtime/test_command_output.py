"""One-off commands print their result for a person; their libraries speak only at DEBUG."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from meshkit.logging import PREFIX_WIDTH
from meshkit.settings import PROJECT_ROOT


def _command(
    data_dir: Path, *argv: str, stdin: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    own = (
        "APP_ENV", "LOG_LEVEL", "LOG_FORMAT", "DATA_DIR", "DATABASE_URL", "JWT_KEYS_DIR",
        # Whether a shell asked for colour is not the test's to inherit.
        "FORCE_COLOR", "NO_COLOR",
    )  # fmt: skip
    inherited = {
        key: value
        for key, value in os.environ.items()
        if key not in own and not key.startswith("USER_SERVICE_")
    }
    return subprocess.run(
        [sys.executable, "-m", "user_service", *argv],
        cwd=data_dir,  # no `.env` of a developer's
        env={
            **inherited,
            "PYTHONPATH": str(PROJECT_ROOT),
            "DATA_DIR": str(data_dir),
            "ARGON2_MEMORY_KIB": "1024",
            **env,
        },
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_migrate_prints_what_it_applied_and_nothing_else(tmp_path: Path) -> None:
    first = _command(tmp_path, "migrate")
    assert first.returncode == 0, first.stderr
    assert first.stderr == ""
    [line] = first.stdout.splitlines()
    assert line.startswith("user_service: database migrated: 0001, ")
    again = _command(tmp_path, "migrate")
    assert (again.stdout, again.stderr) == ("user_service: database up to date\n", "")


def test_create_admin_prints_one_line(tmp_path: Path) -> None:
    done = _command(
        tmp_path,
        "create-admin",
        "--email",
        "boss@example.com",
        "--password-stdin",
        stdin="boss password 1\n",
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    [line] = done.stdout.splitlines()
    assert line.startswith("admin boss@example.com is ready (id ")


def test_debug_shows_what_the_libraries_say(tmp_path: Path) -> None:
    done = _command(tmp_path, "migrate", LOG_LEVEL="DEBUG")
    assert done.returncode == 0, done.stderr
    entries = [json.loads(line) for line in done.stderr.splitlines()]
    migration = [e["message"] for e in entries if e["logger"] == "alembic.runtime.migration"]
    assert any(message.startswith("Running upgrade") for message in migration), migration
    assert done.stdout.startswith("user_service: database migrated:")


def test_console_lines_carry_the_prefix_and_no_json(tmp_path: Path) -> None:
    done = _command(tmp_path, "migrate", LOG_LEVEL="DEBUG", LOG_FORMAT="console")
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    prefix = "user_service".ljust(PREFIX_WIDTH) + " | "
    assert lines and all(line.startswith(prefix) for line in lines), lines
    assert any(" DEBUG " in line or " INFO " in line for line in lines)
    assert any("Running upgrade" in line for line in lines)
    for line in lines:
        with pytest.raises(json.JSONDecodeError):
            json.loads(line)
    # Not a terminal, nobody asked for colour.
    assert "\x1b[" not in done.stderr


def test_an_unknown_log_format_stops_the_process_naming_it(tmp_path: Path) -> None:
    done = _command(tmp_path, "migrate", LOG_FORMAT="pretty")
    assert done.returncode == 1
    assert "LOG_FORMAT: must be one of console, json (got 'pretty')" in done.stderr
    assert not (tmp_path / "user_service.db").exists()
