"""`make run` smoke test: the mesh starts, is ready, and Ctrl-C leaves no process behind."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from pathlib import Path

import httpx
import pytest

from bench.procstat import children
from localmesh.launcher import DEFAULT_GRPC_PORTS, MIGRATE_MODULE, Mesh, MeshPorts
from meshkit.logging import PREFIX_WIDTH
from meshkit.settings import PROJECT_ROOT
from tests.support import eventually, free_port

pytestmark = pytest.mark.e2e


def processes_in_session(session_id: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the parenthesised command name: state ppid pgrp session ...
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == session_id and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def not_info(log: Path) -> str:
    """The log without its INFO lines: why a start failed, not every access line before it."""
    lines = log.read_text().splitlines()
    # `make run` logs console lines (`name | 07:48:01 INFO  ...`); JSON when LOG_FORMAT says so.
    said = [line for line in lines if '"level": "INFO"' not in line and " INFO  " not in line]
    return "\n".join(said)[-6000:]


async def test_make_run_starts_ready_and_stops_cleanly(tmp_path: Path) -> None:
    ports = MeshPorts(grpc={name: free_port() for name in DEFAULT_GRPC_PORTS}, gateway=free_port())
    env = {**os.environ, **ports.env(), "SMTP_PORT": str(free_port())}
    env.pop("LOG_FORMAT", None)
    metrics = {service: free_port() for service in DEFAULT_GRPC_PORTS}
    for service in DEFAULT_GRPC_PORTS:
        env[f"{service.upper()}_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / service}.db"
        env[f"{service.upper()}_METRICS_PORT"] = str(metrics[service])
    log = tmp_path / "make-run.log"
    process = await asyncio.create_subprocess_exec(
        "make",
        "--no-print-directory",
        "run",
        cwd=PROJECT_ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=log.open("wb"),
        start_new_session=True,
    )
    assert process.stdout is not None
    output: list[str] = []
    try:

        async def announced() -> bool:
            line = await asyncio.wait_for(process.stdout.readline(), 90)  # type: ignore[union-attr]
            output.append(line.decode())
            return b"Gateway ready at" in line or not line

        await eventually(announced, timeout=120, interval=0, message="gateway announced")
        assert any("Gateway ready at" in line for line in output), not_info(log)
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{ports.gateway}/readyz")
            assert response.status_code == 200, response.text
            scraped = await client.get(f"http://127.0.0.1:{metrics['user_service']}/metrics")
            assert "grpc_server_handled_total" in scraped.text

        # Every process writes console lines under its own prefix, none JSON.
        lines = log.read_text().splitlines()
        for name in ("gateway", "user_service", "notification_service", "mail_sink"):
            assert any(line.startswith(f"{name:<{PREFIX_WIDTH}} | ") for line in lines), name
        assert not [line for line in lines if line.lstrip().startswith("{")], not_info(log)
        # The launcher migrated every database before the services started: none ran its own
        # migrating process.
        for service in DEFAULT_GRPC_PORTS:
            assert any(
                line.startswith(f"{service:<{PREFIX_WIDTH}} | ") and "nothing to migrate" in line
                for line in lines
            ), service

        # Ctrl-C in a terminal signals the whole foreground process group.
        os.killpg(process.pid, signal.SIGINT)
        await asyncio.wait_for(process.wait(), 60)

        async def nothing_left() -> bool:
            return not processes_in_session(process.pid)

        await eventually(nothing_left, timeout=10, message="every process of make run exited")
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()


async def test_make_run_without_rabbitmq_stops_at_once_naming_the_fix(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "AMQP_URL": f"amqp://guest:guest@127.0.0.1:{free_port()}/",
        **{
            f"{service.upper()}_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / service}.db"
            for service in DEFAULT_GRPC_PORTS
        },
    }
    process = await asyncio.create_subprocess_exec(
        "make",
        "--no-print-directory",
        "run",
        cwd=PROJECT_ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode != 0
    errors = [line for line in stderr.decode().splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr.decode()
    assert "RabbitMQ is not reachable" in errors[0]
    assert "rabbitmq-server" in errors[0]
    assert "Gateway ready" not in stdout.decode()
    assert not processes_in_session(process.pid)


def _mesh_on_sqlite(tmp_path: Path, **databases: str) -> Mesh:
    """The mesh on SQLite files in `tmp_path`, but for the databases named, not started."""
    return Mesh(
        ports=MeshPorts(grpc={name: free_port() for name in DEFAULT_GRPC_PORTS}),
        extra_env={
            **{
                f"{service.upper()}_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / service}.db"
                for service in DEFAULT_GRPC_PORTS
            },
            **databases,
        },
        log_path=tmp_path / "mesh.log",
    )


async def test_a_database_that_cannot_be_migrated_stops_the_launch_before_any_service(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    mesh = _mesh_on_sqlite(
        tmp_path, ORDER_SERVICE_DATABASE_URL=f"sqlite+aiosqlite:///{blocker / 'order.db'}"
    )
    with pytest.raises(RuntimeError, match="could not be migrated"):
        await mesh.start(ready_timeout=30)
    assert mesh.processes == {}
    assert "order_service cannot migrate its database" in (tmp_path / "mesh.log").read_text()


async def test_a_migration_that_hangs_is_stopped_at_the_start_deadline(tmp_path: Path) -> None:
    # A port that takes connections and never answers: the driver waits on it.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    port = silent.getsockname()[1]
    mesh = _mesh_on_sqlite(
        tmp_path, USER_SERVICE_DATABASE_URL=f"postgresql+asyncpg://postgres@127.0.0.1:{port}/x"
    )
    try:
        with pytest.raises(TimeoutError, match="not migrated within 2s"):
            await mesh.start(ready_timeout=2)
    finally:
        silent.close()
    assert mesh.processes == {}
    # Among this process's children: the session may keep a mesh of its own running.
    assert not [pid for pid in children(os.getpid()) if MIGRATE_MODULE in _command_line(pid)]


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""  # it has exited meanwhile
