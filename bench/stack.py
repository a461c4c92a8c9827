"""What a benchmark run stands on: the mesh on fresh databases, and the two baselines."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import aio_pika
import asyncpg  # type: ignore[import-untyped]
import grpc
import httpx

from bench.mailsink import MailSink
from bench.procstat import worker_processes
from localmesh.launcher import DEFAULT_GRPC_PORTS, SERVICES, Mesh, MeshPorts, free_port
from meshkit.messaging import Topology
from meshkit.settings import PROJECT_ROOT

POSTGRES_DSN = os.environ.get("BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
AMQP_URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
ADMIN_EMAIL, ADMIN_PASSWORD = "bench-admin@example.com", "bench admin password"
PROCESSES = (*SERVICES, "gateway")
FLOOR_DATABASE = "floor"


@dataclass
class Baselines:
    """The bare FastAPI app, the bare grpc.aio echo server, and the floors of scenarios 1 and
    3 (a bare FastAPI app calling the echo server, or a bare grpc.aio server that reads
    PostgreSQL), a process each."""

    hello_url: str
    echo_target: str
    floor_url: str
    floor_target: str
    processes: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)

    @classmethod
    def on_free_ports(cls) -> Baselines:
        return cls(
            hello_url=f"http://127.0.0.1:{free_port()}",
            echo_target=f"127.0.0.1:{free_port()}",
            floor_url=f"http://127.0.0.1:{free_port()}",
            floor_target=f"127.0.0.1:{free_port()}",
        )


@dataclass
class Stack:
    mesh: Mesh
    namespace: str
    # Service name to the asyncpg DSN of its database.
    databases: dict[str, str]
    # Where scenario 3's floor reads its copy of the orders.
    floor_dsn: str
    workdir: Path
    baselines: Baselines
    mail: MailSink
    # The settings the mesh was started with.
    env: dict[str, str] = field(default_factory=dict)

    @property
    def gateway_url(self) -> str:
        return self.mesh.gateway_url

    def grpc_target(self, service: str) -> str:
        return f"127.0.0.1:{self.mesh.ports.grpc[service]}"

    @property
    def metrics_urls(self) -> dict[str, str]:
        """Each service's /metrics."""
        return {
            s: f"http://127.0.0.1:{port}/metrics" for s, port in self.mesh.ports.metrics.items()
        }

    @property
    def pids(self) -> dict[str, int]:
        """The six processes of the mesh by name."""
        return {name: self.mesh.processes[name].pid for name in PROCESSES}

    async def restart_mesh(self, extra_env: Mapping[str, str]) -> None:
        """The mesh stopped and started again on the same ports, databases and broker, with
        `extra_env` over the settings it first ran with (`mesh_env`)."""
        await self.mesh.stop()
        self.mesh.processes.clear()
        self.mesh.extra_env = {**self.env, **extra_env}
        await self.mesh.start(ready_timeout=120)

    @property
    def gateway_workers(self) -> int:
        """uvicorn runs the app in the process itself, or in as many children as workers."""
        return max(1, len(worker_processes(self.pids["gateway"])))


def mesh_env(namespace: str, smtp_port: int, keys_dir: Path) -> dict[str, str]:
    """The settings the mesh runs with: the defaults, except what a benchmark must change."""
    return {
        "AMQP_URL": AMQP_URL,
        "AMQP_NAMESPACE": namespace,
        "REDIS_URL": REDIS_URL,
        "JWT_KEYS_DIR": str(keys_dir),
        "BOOTSTRAP_ADMIN_EMAIL": ADMIN_EMAIL,
        "BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD,
        # Sign-ups and sign-ins are set-up here, not what is measured: cheap hashing.
        "ARGON2_MEMORY_KIB": "1024",
        "ARGON2_TIME_COST": "1",
        # Every simulated client comes from 127.0.0.1.
        "LOGIN_LIMIT_PER_CLIENT": "1000000",
        "LOGIN_LIMIT_PER_ACCOUNT": "1000000",
        "WRITE_LIMIT_PER_CLIENT": "1000000",
        # Tokens taken at set-up must outlive a full run.
        "ACCESS_TOKEN_TTL_SECONDS": "3600",
        "LOG_LEVEL": "WARNING",
        "SMTP_PORT": str(smtp_port),
    }


async def _create_databases(admin: asyncpg.Connection, created: dict[str, str]) -> None:
    """A database for each service, and one for scenario 3's floor (its own copy of the
    orders: the order service's database counts only the order service's transactions)."""
    for owner in (*DEFAULT_GRPC_PORTS, FLOOR_DATABASE):
        name = f"bench_{owner.split('_')[0]}_{uuid.uuid4().hex[:8]}"
        await admin.execute(f'CREATE DATABASE "{name}"')
        created[owner] = name


def _dsn(database: str) -> str:
    return f"{POSTGRES_DSN.rsplit('/', 1)[0]}/{database}"


async def start_process(*args: str, output: bool = False) -> asyncio.subprocess.Process:
    """`python -m <args>` in the project; its standard output kept to read when `output`,
    else discarded like its errors."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        *args,
        cwd=PROJECT_ROOT,
        stdout=asyncio.subprocess.PIPE if output else asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def _wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=1) as client:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer within {timeout:.0f}s")
            await asyncio.sleep(0.1)


async def _wait_grpc(target: str, timeout: float = 30) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        await asyncio.wait_for(channel.channel_ready(), timeout)


def _port(address: str) -> str:
    return address.rsplit(":", 1)[1]


async def start_baselines(baselines: Baselines, workers: int, floor_dsn: str) -> None:
    """Start the baselines, the HTTP ones with the gateway's `workers`, the floor's server on
    its database; on failure, what started is in `baselines.processes`."""
    processes = baselines.processes
    processes["hello_app"] = await start_process(
        "bench.baselines.hello_app", "--port", _port(baselines.hello_url),
        "--workers", str(workers),
    )  # fmt: skip
    processes["echo_server"] = await start_process(
        "bench.baselines.echo_server", "--port", _port(baselines.echo_target)
    )
    processes["floor_server"] = await start_process(
        "bench.baselines.floor_server", "--port", _port(baselines.floor_target),
        "--dsn", floor_dsn,
    )  # fmt: skip
    processes["floor_app"] = await start_process(
        "bench.baselines.floor_app", "--port", _port(baselines.floor_url),
        "--target", baselines.floor_target, "--echo-target", baselines.echo_target,
        "--workers", str(workers),
    )  # fmt: skip
    await _wait_http(baselines.hello_url + "/")
    await _wait_grpc(baselines.echo_target)
    await _wait_grpc(baselines.floor_target)
    await _wait_http(baselines.floor_url + "/openapi.json")


async def stop_process(*processes: asyncio.subprocess.Process) -> None:
    """SIGTERM each, SIGKILL one still running 10 s later."""
    for process in processes:
        if process.returncode is None:
            process.terminate()
    for process in processes:
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


async def stop_baselines(baselines: Baselines) -> None:
    await stop_process(*baselines.processes.values())


@contextlib.asynccontextmanager
async def bench_stack(*, keep_logs: Path | None = None) -> AsyncIterator[Stack]:
    """Fresh databases, an AMQP namespace, a mail sink, the mesh and the baselines; all
    removed on exit, whatever happens."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    databases: dict[str, str] = {}
    mail = MailSink().start()
    admin = await asyncpg.connect(POSTGRES_DSN)
    mesh: Mesh | None = None
    baselines = Baselines.on_free_ports()
    try:
        await _create_databases(admin, databases)
        env = mesh_env(namespace, mail.port, workdir / "jwt-keys")
        for service in DEFAULT_GRPC_PORTS:
            env[f"{service.upper()}_DATABASE_URL"] = _dsn(databases[service]).replace(
                "postgresql://", "postgresql+asyncpg://", 1
            )
        ports = MeshPorts(
            grpc={s: free_port() for s in DEFAULT_GRPC_PORTS},
            gateway=free_port(),
            # Read for the saga's table of costs per order (bench.costs).
            metrics={s: free_port() for s in DEFAULT_GRPC_PORTS},
        )
        mesh = Mesh(ports=ports, extra_env=env, log_path=workdir / "mesh.log")
        await mesh.start_or_explain(ready_timeout=120)
        stack = Stack(
            mesh=mesh,
            namespace=namespace,
            databases={service: _dsn(databases[service]) for service in DEFAULT_GRPC_PORTS},
            floor_dsn=_dsn(databases[FLOOR_DATABASE]),
            workdir=workdir,
            baselines=baselines,
            mail=mail,
            env=env,
        )
        await start_baselines(baselines, stack.gateway_workers, stack.floor_dsn)
        yield stack
    finally:
        await stop_baselines(baselines)
        if mesh is not None:
            await mesh.stop()
            if keep_logs is not None and mesh.log_path and mesh.log_path.exists():
                shutil.copy(mesh.log_path, keep_logs)
        mail.stop()
        for name in databases.values():
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
        connection = await aio_pika.connect(AMQP_URL)
        try:
            await Topology(namespace).delete_all(connection)
        finally:
            await connection.close()
        shutil.rmtree(workdir, ignore_errors=True)
