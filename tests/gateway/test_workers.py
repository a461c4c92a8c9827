"""`python -m gateway` with GATEWAY_WORKERS: that many serving processes on one port, which
stop with their supervisor."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import httpx
import pytest

from bench.procstat import worker_processes
from meshkit.settings import PROJECT_ROOT
from tests.support import eventually, free_port

pytestmark = pytest.mark.timeout(60)


def _running(pid: int) -> bool:
    """Alive: its /proc entry exists and is not a zombie's (an orphan's exit is reaped by
    whatever init the machine has, maybe never)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


async def _answers(url: str) -> bool:
    async with httpx.AsyncClient(timeout=1) as client:
        try:
            return (await client.get(url)).status_code == 200
        except httpx.HTTPError:
            return False


def _gateway_env(workers: int, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "GATEWAY_WORKERS": str(workers),
        "GATEWAY_PORT": str(port),
        "GATEWAY_HOST": "127.0.0.1",
        "REDIS_URL": "",
        "LOG_LEVEL": "WARNING",
    }


async def _serving_gateway(workers: int, port: int) -> asyncio.subprocess.Process:
    """`python -m gateway` with `workers`, once it answers /healthz; its errors piped."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", env=_gateway_env(workers, port), cwd=PROJECT_ROOT,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    await eventually(
        lambda: _answers(f"http://127.0.0.1:{port}/healthz"),
        timeout=30,
        message="the gateway answering /healthz",
    )
    return process


@pytest.mark.parametrize("workers", [1, 2])
async def test_the_gateway_serves_from_as_many_processes_as_workers(workers: int) -> None:
    port = free_port()
    process = await _serving_gateway(workers, port)
    try:
        # One process serves; with workers, a supervisor starts that many children.
        served = worker_processes(process.pid)
        assert len(served) == (workers if workers > 1 else 0)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        _, errors = await asyncio.wait_for(process.communicate(), 30)
    # Stopped cleanly: uvicorn re-raises the signal it shut down for once it is done.
    assert process.returncode in (0, -signal.SIGTERM), errors.decode()[-2000:]
    assert b"Traceback" not in errors, errors.decode()[-2000:]
    # Its workers stopped with it.
    assert not [pid for pid in served if _running(pid)]


async def test_workers_go_when_their_supervisor_is_killed_outright() -> None:
    port = free_port()
    process = await _serving_gateway(2, port)
    try:
        served = worker_processes(process.pid)
        assert len(served) == 2
    finally:
        process.kill()  # no chance to stop its workers itself
        await process.wait()

    async def gone() -> bool:
        return not [pid for pid in served if _running(pid)]

    await eventually(gone, timeout=20, message="the workers gone with their supervisor")
    assert not await _answers(f"http://127.0.0.1:{port}/healthz")
