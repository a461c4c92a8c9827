"""A task a test leaves running, which swallows its cancellation, neither hangs the end of the
session nor goes unnamed (tests/conftest.py `tasks_left_running`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from meshkit.settings import PROJECT_ROOT

STUBBORN = """
import asyncio


async def _stubborn() -> None:
    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            pass  # the bug: it will not end


async def test_leaves_a_stubborn_task_behind() -> None:
    asyncio.get_running_loop().create_task(_stubborn(), name="stubborn-task")
"""


def test_a_stubborn_task_is_named_and_the_session_ends(tmp_path: Path) -> None:
    test_file = tmp_path / "test_stubborn.py"
    test_file.write_text(STUBBORN)
    done = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
            "-p", "tests.conftest", "--rootdir", str(PROJECT_ROOT),
            "-c", str(PROJECT_ROOT / "pyproject.toml"), str(test_file),
        ],
        cwd=PROJECT_ROOT,
        env={**os.environ, "TEST_LEFTOVER_GRACE_SECONDS": "0.5"},
        capture_output=True,
        text=True,
        timeout=90,  # without the fixture, the run never ends
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "did not end within" in done.stdout and "stubborn-task" in done.stdout, done.stdout
    assert "_stubborn" in done.stdout  # where it waits
