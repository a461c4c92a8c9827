"""`python -m <service> migrate` runs with the database alone, as a migration Job has it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from meshkit.settings import PROJECT_ROOT


def test_migrate_in_production_needs_no_serving_secret(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.endswith(("_SECRET", "_CLIENTS"))},
        "APP_ENV": "production",
        "USER_SERVICE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'users.db'}",
    }
    done = subprocess.run(
        [sys.executable, "-m", "user_service", "migrate"],
        cwd=tmp_path,  # no `.env` of a developer's
        env={**env, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "users.db").exists()

    serving = subprocess.run(
        [sys.executable, "-m", "user_service", "rotate-key"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(PROJECT_ROOT), "JWT_KEYS_DIR": str(tmp_path / "keys")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Every other command still refuses development secrets outside development.
    assert serving.returncode != 0 and "development" in serving.stderr
