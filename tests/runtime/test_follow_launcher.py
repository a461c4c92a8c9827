"""A process the launcher started dies with the launcher, asked by the process itself (no
code between fork and exec in the launcher, which may be running gRPC's threads)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from meshkit.process import LAUNCHER_PID_VARIABLE
from tests.support import eventually

PROJECT_ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import time
    from meshkit.process import follow_launcher
    follow_launcher()
    print("following", flush=True)
    time.sleep(60)
    """
)

LAUNCHER = textwrap.dedent(
    f"""
    import os, subprocess, sys
    env = {{**os.environ, {LAUNCHER_PID_VARIABLE!r}: str(os.getpid())}}
    child = subprocess.Popen(
        [sys.executable, "-c", {CHILD!r}], env=env, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdout.readline() == "following\\n"
    print(child.pid, flush=True)
    os._exit(0)  # killed, say: nothing of its own cleans up
    """
)


def gone(pid: int) -> bool:
    """Exited (reaped, or a zombie waiting to be)."""
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in state


async def test_a_process_dies_with_the_launcher_that_started_it() -> None:
    launcher = subprocess.run(  # noqa: ASYNC221 (a second at most; the test waits on it)
        [sys.executable, "-c", LAUNCHER],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    child = int(launcher.stdout.strip())

    async def child_gone() -> bool:
        return gone(child)

    await eventually(child_gone, timeout=10, message="the child exits with its launcher")


def test_a_process_whose_launcher_is_already_gone_exits_at_once() -> None:
    env = {**os.environ, LAUNCHER_PID_VARIABLE: "1"}  # not its parent: its launcher died
    child = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=PROJECT_ROOT, env=env, capture_output=True, timeout=30
    )
    assert child.returncode == -15  # SIGTERM
    assert child.stdout == b""
