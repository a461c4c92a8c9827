"""The mesh the suite runs against: fresh databases, an AMQP namespace, a Redis database and a
mail sink of its own, every dependency reached through a fault proxy, all removed on exit."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import asyncpg  # type: ignore[import-untyped]
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from redis.asyncio import Redis

from chaos.balancer import Balancer
from chaos.mailbox import Mailbox
from chaos.settings import AMQP_URL, POSTGRES_DSN, REDIS_URL, mesh_env
from localmesh.faultproxy import FaultyProxy, Mode
from localmesh.launcher import DEFAULT_GRPC_PORTS, SERVICES, Mesh, MeshPorts, free_port
from meshkit.messaging import Topology

PROCESSES = (*SERVICES, "gateway")
# The services run as two replicas in the `replicas` fault, behind a balancer all along.
REPLICATED = ("order_service", "payment_service")
# The dependencies, each behind a proxy of its own.
DEPENDENCIES = ("postgres", "rabbitmq", "redis")


def through(url: str, port: int) -> str:
    """`url` with its host and port replaced by the local proxy's."""
    parts = urlsplit(url)
    credentials = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit(parts._replace(netloc=f"{credentials}127.0.0.1:{port}"))


def _host_port(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


def _database_dsn(name: str) -> str:
    return f"{POSTGRES_DSN.rsplit('/', 1)[0]}/{name}"


@dataclass
class Stack:
    mesh: Mesh
    namespace: str
    # Service name to the DSN of its database, reached directly (not through the proxy).
    databases: dict[str, str]
    proxies: dict[str, FaultyProxy]
    balancers: dict[str, Balancer]
    # The gRPC port of each replicated service's second replica.
    replica_ports: dict[str, int]
    mailbox: Mailbox
    workdir: Path
    # Second replicas while they run, by service.
    replicas: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)

    @property
    def gateway_url(self) -> str:
        return self.mesh.gateway_url

    @property
    def topology(self) -> Topology:
        return Topology(self.namespace)

    def pids(self) -> dict[str, int]:
        """The processes of the mesh by name, second replicas as `<service>#2`."""
        found = {name: self.mesh.processes[name].pid for name in PROCESSES}
        found.update({f"{name}#2": process.pid for name, process in self.replicas.items()})
        return found

    async def kill(self, name: str) -> None:
        """SIGKILL: no drain, no goodbye, as when a machine or a container dies."""
        process = self.mesh.processes[name]
        if process.returncode is None:
            process.kill()
        await process.wait()

    def pause(self, name: str, paused: bool) -> None:
        """SIGSTOP or SIGCONT: the process holds everything it has, doing nothing meanwhile."""
        self.mesh.processes[name].send_signal(signal.SIGSTOP if paused else signal.SIGCONT)

    async def restart(self, name: str) -> None:
        """Start `name` again, as it first ran (`Mesh.env_of`), its output to the mesh's log."""
        self.mesh.processes[name] = await self.mesh.spawn_logged(name, self.mesh.env_of(name))

    async def start_replica(self, name: str) -> None:
        """A second process of `name`, on the port its balancer also sends connections to."""
        self.replicas[name] = await self.mesh.spawn_replica(name, self.replica_ports[name])

    async def stop_replica(self, name: str, *, kill: bool = False) -> None:
        process = self.replicas.pop(name)
        if process.returncode is None:
            process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        await process.wait()

    async def wait_ready(self, timeout: float = 60.0) -> float:
        """Until the gateway says every upstream is SERVING; the seconds that took."""
        began = time.monotonic()
        await self.mesh.wait_ready(timeout)
        return time.monotonic() - began

    def restore_dependencies(self) -> None:
        """Every proxy forwarding again (after a fault that ended in an error)."""
        for proxy in self.proxies.values():
            if proxy.mode is not Mode.FORWARD:
                proxy.set_mode(Mode.FORWARD)

    async def stop_replicas(self) -> None:
        for name in list(self.replicas):
            await self.stop_replica(name, kill=True)


async def wait_serving(port: int, timeout: float) -> None:
    """Until the gRPC server on `port` says it is SERVING (its readiness: database and broker
    reached)."""
    deadline = time.monotonic() + timeout
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            with contextlib.suppress(grpc.aio.AioRpcError):
                answer = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"nothing SERVING on port {port} within {timeout:.0f}s")
            await asyncio.sleep(0.2)


async def _flush_redis() -> None:
    client = Redis.from_url(REDIS_URL)
    try:
        await client.flushdb()
    finally:
        await client.aclose()


async def _delete_namespace(namespace: str) -> None:
    connection = await aio_pika.connect(AMQP_URL)
    try:
        await Topology(namespace).delete_all(connection)
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def chaos_stack(*, keep_log: Path | None = None) -> AsyncIterator[Stack]:
    """The mesh on fresh databases behind fault proxies; everything removed on exit, whatever
    happens, the mesh's log copied to `keep_log` first."""
    workdir = Path(tempfile.mkdtemp(prefix="chaos-"))
    namespace = f"chaos-{uuid.uuid4().hex[:8]}"
    databases: dict[str, str] = {}
    mailbox = Mailbox().start()
    admin = await asyncpg.connect(POSTGRES_DSN)
    proxies: dict[str, FaultyProxy] = {}
    balancers: dict[str, Balancer] = {}
    mesh: Mesh | None = None
    stack: Stack | None = None
    try:
        await _flush_redis()  # cache entries and counters of an earlier run
        for dependency, (url, port) in {
            "postgres": (POSTGRES_DSN, 5432),
            "rabbitmq": (AMQP_URL, 5672),
            "redis": (REDIS_URL, 6379),
        }.items():
            proxies[dependency] = await FaultyProxy(*_host_port(url, port)).start()
        for service in DEFAULT_GRPC_PORTS:
            name = f"chaos_{service.split('_')[0]}_{uuid.uuid4().hex[:8]}"
            await admin.execute(f'CREATE DATABASE "{name}"')
            databases[service] = name
        ports = MeshPorts(grpc={s: free_port() for s in DEFAULT_GRPC_PORTS}, gateway=free_port())
        replica_ports = {service: free_port() for service in REPLICATED}
        env = mesh_env(
            amqp_url=through(AMQP_URL, proxies["rabbitmq"].port),
            namespace=namespace,
            redis_url=through(REDIS_URL, proxies["redis"].port),
            smtp_port=mailbox.port,
            workdir=workdir,
        )
        for service in DEFAULT_GRPC_PORTS:
            dsn = through(_database_dsn(databases[service]), proxies["postgres"].port)
            env[f"{service.upper()}_DATABASE_URL"] = dsn.replace(
                "postgresql://", "postgresql+asyncpg://", 1
            )
        for service in REPLICATED:
            balancers[service] = await Balancer(
                [ports.grpc[service], replica_ports[service]]
            ).start()
            env[f"{service.upper()}_ADDR"] = balancers[service].endpoint
        mesh = Mesh(ports=ports, extra_env=env, log_path=workdir / "mesh.log")
        await mesh.start_or_explain(ready_timeout=120)
        stack = Stack(
            mesh=mesh,
            namespace=namespace,
            databases={service: _database_dsn(name) for service, name in databases.items()},
            proxies=proxies,
            balancers=balancers,
            replica_ports=replica_ports,
            mailbox=mailbox,
            workdir=workdir,
        )
        yield stack
    finally:
        if stack is not None:
            stack.restore_dependencies()  # so that the processes can stop cleanly
            await stack.stop_replicas()
        if mesh is not None:
            await mesh.stop()
            if keep_log is not None and mesh.log_path is not None and mesh.log_path.exists():
                keep_log.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(mesh.log_path, keep_log)
        mailbox.stop()
        for balancer in balancers.values():
            await balancer.close()
        for proxy in proxies.values():
            await proxy.close()
        for name in databases.values():
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
        await _delete_namespace(namespace)
        await _flush_redis()
        shutil.rmtree(workdir, ignore_errors=True)
