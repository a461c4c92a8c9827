"""`make migrate` (`python -m localmesh.migrate`): the five databases to head in one process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from localmesh.launcher import MIGRATION_INTERRUPTED, SERVICES
from meshkit.settings import PROJECT_ROOT

# `python -m localmesh.migrate` as a terminal starts it, Ctrl-C raising KeyboardInterrupt: a
# test run from a background job would pass SIGINT on ignored.
_MIGRATE_AS_IN_A_TERMINAL = (
    "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "runpy.run_module('localmesh.migrate', run_name='__main__')"
)


def _environment(data_dir: Path) -> dict[str, str]:
    inherited = {
        key: value
        for key, value in os.environ.items()
        if key not in ("APP_ENV", "LOG_LEVEL", "LOG_FORMAT", "DATA_DIR", "DATABASE_URL")
        and not key.endswith("_DATABASE_URL")
    }
    return {**inherited, "PYTHONPATH": str(PROJECT_ROOT), "DATA_DIR": str(data_dir)}


def _migrate_all(data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "localmesh.migrate"],
        cwd=data_dir,  # no `.env` of a developer's
        env={**_environment(data_dir), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_every_service_is_migrated_and_says_so_once(tmp_path: Path) -> None:
    first = _migrate_all(tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stderr == ""
    lines = first.stdout.splitlines()
    assert [line.split(":", 1)[0] for line in lines] == list(SERVICES)
    assert all(": database migrated: 0001, " in line for line in lines), lines
    assert all((tmp_path / f"{service}.db").exists() for service in SERVICES)

    again = _migrate_all(tmp_path)
    assert (again.returncode, again.stderr) == (0, "")
    assert again.stdout.splitlines() == [f"{service}: database up to date" for service in SERVICES]


def test_the_first_service_that_cannot_migrate_stops_the_rest_naming_itself(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    done = _migrate_all(
        tmp_path,
        ORDER_SERVICE_DATABASE_URL=f"sqlite+aiosqlite:///{blocker / 'order_service.db'}",
    )
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "order_service cannot migrate its database" in errors[0], errors
    assert "Traceback" not in done.stderr
    said = [line.split(":", 1)[0] for line in done.stdout.splitlines()]
    assert said == ["user_service", "product_service"]
    assert not (tmp_path / "payment_service.db").exists()


def test_ctrl_c_stops_it_quietly_with_the_status_a_shell_gives_sigint(tmp_path: Path) -> None:
    # A port that takes the connection and never answers: the migration waits on it.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        silent.settimeout(60)
        url = f"postgresql+asyncpg://postgres@127.0.0.1:{silent.getsockname()[1]}/x"
        process = subprocess.Popen(
            [sys.executable, "-c", _MIGRATE_AS_IN_A_TERMINAL],
            cwd=tmp_path,
            env={**_environment(tmp_path), "USER_SERVICE_DATABASE_URL": url},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            connection, _ = silent.accept()  # the migration has begun
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=60)
            connection.close()
        finally:
            if process.returncode is None:
                process.kill()
                process.wait()
    assert process.returncode == MIGRATION_INTERRUPTED
    assert "Traceback" not in stderr, stderr
