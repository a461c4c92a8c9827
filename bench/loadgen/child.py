"""Run a load generator as a child process and measure the CPU it used."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO

from meshkit.settings import PROJECT_ROOT


@dataclass(frozen=True)
class ChildRun:
    stdout: str
    stderr: str
    returncode: int
    wall_s: float
    # User plus system CPU of the child and of the children it waited for.
    cpu_s: float

    def check(self, what: str) -> ChildRun:
        if self.returncode != 0:
            raise RuntimeError(f"{what} exited with {self.returncode}: {self.stderr[-3000:]}")
        return self


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """The load generator gets SIGKILL if the benchmark dies, so none is left running."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _drain(pipe: IO[str], into: list[str]) -> None:
    into.append(pipe.read())
    pipe.close()


def _run(argv: Sequence[str], timeout: float) -> ChildRun:
    started = time.monotonic()
    process = subprocess.Popen(
        list(argv),
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_die_with_parent,
    )
    assert process.stdout is not None and process.stderr is not None
    out: list[str] = []
    err: list[str] = []
    readers = [
        threading.Thread(target=_drain, args=(process.stdout, out), daemon=True),
        threading.Thread(target=_drain, args=(process.stderr, err), daemon=True),
    ]
    for reader in readers:
        reader.start()
    killer = threading.Timer(timeout, process.send_signal, args=(signal.SIGKILL,))
    killer.start()
    try:
        # wait4 reaps the child and reports its CPU time (Popen.wait would not).
        _, status, usage = os.wait4(process.pid, 0)
    finally:
        killer.cancel()
    process.returncode = os.waitstatus_to_exitcode(status)
    for reader in readers:
        reader.join()
    return ChildRun(
        stdout="".join(out),
        stderr="".join(err),
        returncode=process.returncode,
        wall_s=time.monotonic() - started,
        cpu_s=usage.ru_utime + usage.ru_stime,
    )


async def run_child(argv: Sequence[str], timeout: float) -> ChildRun:
    """Run `argv` to its end in a thread, so the event loop (and the mesh) carry on."""
    return await asyncio.to_thread(_run, argv, timeout)
