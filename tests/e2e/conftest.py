"""The whole mesh as real processes on PostgreSQL, RabbitMQ and Redis, for end-to-end tests."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aio_pika
import httpx
import pytest
from redis.asyncio import Redis

from demo.accounts import Account
from demo.history import plan
from localmesh.launcher import DEFAULT_GRPC_PORTS, Mesh, MeshPorts
from meshkit.messaging import Topology
from meshkit.settings import PROJECT_ROOT
from tests.conftest import AMQP_URL, PostgresFactory
from tests.smtp import SmtpServer
from tests.support import free_port

ADMIN_EMAIL, ADMIN_PASSWORD = "admin@example.com", "admin password 1"
E2E_REDIS_URL = "redis://127.0.0.1:6379/13"


@dataclass
class RunningMesh:
    mesh: Mesh
    client: httpx.AsyncClient
    smtp: SmtpServer
    databases: dict[str, str]
    # Tokens shared across tests (the admin signs in once: logins per account are limited).
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.mesh.gateway_url

    def grpc_address(self, service: str) -> str:
        return f"127.0.0.1:{self.mesh.ports.grpc[service]}"

    def logs(self) -> str:
        path = self.mesh.log_path
        return path.read_text(errors="replace")[-5000:] if path and path.exists() else ""


@asynccontextmanager
async def running_mesh(
    postgres_databases: PostgresFactory | None,
    workdir: Path,
    extra_env: Mapping[str, str] = {},
    *,
    metrics: bool = False,
    redis_url: str = E2E_REDIS_URL,
) -> AsyncIterator[RunningMesh]:
    """All six processes, each service on its own database (PostgreSQL, or without a factory
    an SQLite file in `workdir`, as `make run` has it), as `make run` starts them; with
    `metrics`, each service serves /metrics on a port of its own. `extra_env` is added to the
    environment every process gets."""
    smtp = SmtpServer().start()
    ports = MeshPorts(
        grpc={name: free_port() for name in DEFAULT_GRPC_PORTS},
        gateway=free_port(),
        metrics={name: free_port() for name in DEFAULT_GRPC_PORTS} if metrics else {},
    )
    env = {
        "AMQP_URL": AMQP_URL,
        "REDIS_URL": redis_url,
        "JWT_KEYS_DIR": str(workdir / "jwt-keys"),
        "BOOTSTRAP_ADMIN_EMAIL": ADMIN_EMAIL,
        "BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "ARGON2_MEMORY_KIB": "1024",
        "ARGON2_TIME_COST": "1",
        # Every test logs in from 127.0.0.1; the per-client limit has its own tests.
        "LOGIN_LIMIT_PER_CLIENT": "10000",
        "WRITE_LIMIT_PER_CLIENT": "100000",
        "LOG_LEVEL": "INFO",
        "AMQP_NAMESPACE": f"e2e-{uuid.uuid4().hex[:8]}",
        "SMTP_PORT": str(smtp.port),
        # Quick retries, so an SMTP outage in a test heals within seconds.
        "MAIL_RETRY_BASE_SECONDS": "0.2",
        "MAIL_RETRY_MAX_SECONDS": "1",
        "MAIL_POLL_SECONDS": "0.2",
        "CONSUMER_RETRY_BASE_SECONDS": "0.05",
        # Five processes here, in-process services elsewhere: stay under max_connections.
        "DB_POOL_SIZE": "4",
        **extra_env,
    }
    databases = {}
    for service in DEFAULT_GRPC_PORTS:
        databases[service] = (
            await postgres_databases()
            if postgres_databases is not None
            else f"sqlite+aiosqlite:///{workdir / service}.db"
        )
        env[f"{service.upper()}_DATABASE_URL"] = databases[service]
    redis = Redis.from_url(redis_url)
    await redis.flushdb()  # rate-limit counters and cache entries of an earlier run
    await redis.aclose()
    running = Mesh(ports=ports, extra_env=env, log_path=workdir / "mesh.log")
    try:
        await running.start(ready_timeout=90)
    except BaseException as exc:
        await running.stop()
        smtp.stop()
        raise AssertionError(
            f"the mesh did not start ({type(exc).__name__}: {exc}):\n"
            f"{(workdir / 'mesh.log').read_text()[-5000:]}"
        ) from None
    try:
        async with httpx.AsyncClient(base_url=running.gateway_url, timeout=10) as client:
            yield RunningMesh(mesh=running, client=client, smtp=smtp, databases=databases)
    finally:
        await running.stop()
        smtp.stop()
        connection = await aio_pika.connect(AMQP_URL)
        await Topology(env["AMQP_NAMESPACE"]).delete_all(connection)
        await connection.close()


@pytest.fixture(scope="package")
async def mesh(
    postgres_databases: PostgresFactory, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningMesh]:
    """All six processes, started once for the end-to-end tests."""
    async with running_mesh(postgres_databases, tmp_path_factory.mktemp("mesh")) as running:
        yield running


async def run_demo(mesh: RunningMesh, **env: str) -> tuple[int, str, str]:
    """`python -m demo` (what `make demo` runs) with the environment the mesh's processes have:
    its exit status, standard output and standard error."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "demo",
        "--gateway-url",
        mesh.url,
        cwd=PROJECT_ROOT,
        env={**mesh.mesh.env_of("demo"), **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def sign_in(client: httpx.AsyncClient, account: Account) -> dict[str, str]:
    """The headers of a request as `account`, signed in through the API."""
    response = await client.post(
        "/v1/auth/login", json={"email": account.email, "password": account.password}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@dataclass(frozen=True)
class DemoShop:
    """The shared mesh with the demo shop seeded into it. The seeder dates its past orders
    back from a moment between `started` and `finished`."""

    mesh: RunningMesh
    started: datetime
    finished: datetime


@pytest.fixture(scope="package")
async def demo_shop(mesh: RunningMesh) -> DemoShop:
    """The demo shop (`make demo`) seeded once into the shared mesh; other tests' users,
    products and orders live beside it."""
    started = datetime.now(UTC)
    status, out, err = await run_demo(mesh)
    assert status == 0, err[-3000:]
    # Written by this run, so dated from this run's clock.
    assert f"past orders: {len(plan())} written" in out, out
    return DemoShop(mesh=mesh, started=started, finished=datetime.now(UTC))
