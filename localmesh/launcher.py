"""Runs the whole mesh locally: checks the broker, starts six processes, stops them together."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import httpx
from dotenv import dotenv_values

from meshkit.messaging import BrokerUnavailable, check_broker
from meshkit.process import LAUNCHER_PID_VARIABLE
from meshkit.settings import DOT_ENV, PROJECT_ROOT, CommonSettings, LogFormat, load_settings

# Start order: services others call first, the gateway last.
SERVICES: tuple[str, ...] = (
    "user_service",
    "product_service",
    "order_service",
    "payment_service",
    "notification_service",
)
DEFAULT_GRPC_PORTS: Mapping[str, int] = {
    "product_service": 50051,
    "user_service": 50052,
    "order_service": 50053,
    "payment_service": 50054,
    "notification_service": 50055,
}
DEFAULT_GATEWAY_PORT = 8000
# Services run without docstrings and asserts: the docstrings of what they import (SQLAlchemy's
# above all) are a noticeable part of each idle process's memory. `make install` compiles the
# bytecode for it; the code never relies on an assert. The gateway keeps its docstrings:
# FastAPI publishes them as the API's descriptions.
SERVICE_PYTHON_FLAGS: tuple[str, ...] = ("-OO",)
# Every service's migrations, in one process (run with the services' flags, and their bytecode).
MIGRATE_MODULE = "localmesh.migrate"
# Its exit status when interrupted (Ctrl-C), as a shell reports SIGINT.
MIGRATION_INTERRUPTED = 130


DEFAULT_METRICS_PORTS: Mapping[str, int] = {
    service: 9000 + port - 50000 for service, port in DEFAULT_GRPC_PORTS.items()
}


def _ports_outside_ephemeral_range() -> range:
    """Ports the kernel never hands to an outgoing connection.

    A port taken from the ephemeral range (what binding port 0 returns) can be given to some
    process's outgoing connection between the check and the bind that needs it; the bind then
    fails with EADDRINUSE. Below the ephemeral range that cannot happen.
    """
    low = 32768
    with contextlib.suppress(OSError, ValueError):
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    return range(max(1024, low - 12_000), low)


_candidate_ports: list[int] = []


def free_port() -> int:
    """A port nothing listens on now and no other call in this process returned, for a mesh
    that must not meet another on the default ports."""
    if not _candidate_ports:
        ports = _ports_outside_ephemeral_range()
        _candidate_ports.extend(random.sample(ports, k=min(2_000, len(ports))))
    while _candidate_ports:
        port = _candidate_ports.pop()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port
    # No room below the ephemeral range: the kernel's choice, with the race above.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class MeshPorts:
    grpc: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_GRPC_PORTS))
    gateway: int = DEFAULT_GATEWAY_PORT
    # Each service's /metrics port; empty: no metrics endpoints.
    metrics: dict[str, int] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        """The variables that tell each process where it listens and where the others are."""
        env = {"GATEWAY_PORT": str(self.gateway)}
        for service, port in self.grpc.items():
            prefix = service.upper()
            env[f"{prefix}_GRPC_PORT"] = str(port)
            env[f"{prefix}_ADDR"] = f"127.0.0.1:{port}"
        return env


@dataclass
class Mesh:
    """The six processes of the mesh, started and stopped as one."""

    ports: MeshPorts = field(default_factory=MeshPorts)
    extra_env: Mapping[str, str] = field(default_factory=dict)
    # Where the processes' output goes; None inherits the launcher's terminal.
    log_path: Path | None = None
    # A local SMTP sink on SMTP_PORT, so a laptop sees the emails with no mail server.
    mail_sink: bool = False
    processes: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)
    _migrated: bool = field(default=False, init=False)

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.gateway}"

    def _env(self) -> dict[str, str]:
        # Each process asks to die with this one (`meshkit.process.follow_launcher`).
        launcher = {LAUNCHER_PID_VARIABLE: str(os.getpid())}
        return {**os.environ, **self.ports.env(), **self.extra_env, **launcher}

    def env_of(self, name: str) -> dict[str, str]:
        """The environment process `name` runs with, so that one stopped can be started again
        exactly as it was."""
        own = self._env()
        if name in self.ports.metrics:
            own["METRICS_PORT"] = str(self.ports.metrics[name])
        return own

    async def start(self, ready_timeout: float = 60.0) -> None:
        env = self._env()
        log = self.log_path.open("ab") if self.log_path else None
        try:
            if not self._migrated:
                await self._migrate(env, log, ready_timeout)
            if self.mail_sink:
                port = env.get("SMTP_PORT", "1025")
                self.processes["mail_sink"] = await self.spawn(
                    "notification_service.sink", env, log, "--port", port
                )
            for name in (*SERVICES, "gateway"):
                self.processes[name] = await self.spawn(name, self.env_of(name), log)
        finally:
            if log is not None:
                log.close()  # the children hold their own descriptors
        await self.wait_ready(ready_timeout)

    async def _migrate(self, env: Mapping[str, str], log: BinaryIO | None, timeout: float) -> None:
        """Every service's database to head, in one process, before any service starts.

        Each service then finds its database migrated and starts without a migrating process
        of its own (`meshkit.service`): on fresh databases, one interpreter's imports instead
        of five, beside the six starting. Once per mesh: a restart finds them migrated.
        """
        migrating = await self.spawn(MIGRATE_MODULE, env, log)
        try:
            status = await asyncio.wait_for(migrating.wait(), timeout)
        except BaseException as exc:
            # Past the deadline, or the start cancelled: no migration goes on alone.
            if migrating.returncode is None:
                migrating.kill()
                await migrating.wait()
            if isinstance(exc, TimeoutError):
                raise TimeoutError(
                    f"the databases were not migrated within {timeout:.0f}s"
                ) from None
            raise
        if status == MIGRATION_INTERRUPTED or status < 0:
            raise RuntimeError("the migration of the databases was interrupted")
        if status != 0:
            raise RuntimeError("the databases could not be migrated")
        self._migrated = True

    async def spawn(
        self, module: str, env: Mapping[str, str], log: BinaryIO | None, *args: str
    ) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            *(SERVICE_PYTHON_FLAGS if module in (*SERVICES, MIGRATE_MODULE) else ()),
            "-m",
            module,
            *args,
            env=dict(env),
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=log,
        )

    async def start_or_explain(self, ready_timeout: float = 60.0) -> None:
        """`start`, failing with the end of the mesh's log, which says why."""
        try:
            await self.start(ready_timeout=ready_timeout)
        except (RuntimeError, TimeoutError) as exc:
            tail = self.log_path.read_text(errors="replace")[-4000:] if self.log_path else ""
            raise RuntimeError(f"the mesh did not start: {exc}\n{tail}") from exc

    async def spawn_logged(self, name: str, env: Mapping[str, str]) -> asyncio.subprocess.Process:
        """Process `name` with `env`, its output to the mesh's log."""
        log = self.log_path.open("ab") if self.log_path else None
        try:
            return await self.spawn(name, env, log)
        finally:
            if log is not None:
                log.close()  # the child holds its own descriptor

    async def spawn_replica(
        self, name: str, port: int, overrides: Mapping[str, str] | None = None
    ) -> asyncio.subprocess.Process:
        """Another process `name`, as the mesh's runs (`env_of`, with `overrides`) but
        listening on `port`, and with no metrics endpoint, whose port the first one holds."""
        env = {**self.env_of(name), **(overrides or {})}
        env.pop("METRICS_PORT", None)
        env["GATEWAY_PORT" if name == "gateway" else f"{name.upper()}_GRPC_PORT"] = str(port)
        return await self.spawn_logged(name, env)

    async def wait_ready(self, timeout: float) -> None:
        """Poll the gateway's /readyz (all upstreams SERVING) until 200 or the deadline."""
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        async with httpx.AsyncClient(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if exited := self.exited():
                    raise RuntimeError(f"{', '.join(exited)} exited during start-up")
                try:
                    response = await client.get(f"{self.gateway_url}/readyz")
                    if response.status_code == 200:
                        return
                    last = response.text
                except httpx.HTTPError as exc:
                    last = repr(exc)
                await asyncio.sleep(0.2)
        raise TimeoutError(f"the mesh was not ready within {timeout:.0f}s: {last}")

    def exited(self) -> list[str]:
        return [name for name, proc in self.processes.items() if proc.returncode is not None]

    async def wait_any_exit(self) -> str:
        waits = {asyncio.ensure_future(proc.wait()): name for name, proc in self.processes.items()}
        done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        return waits[next(iter(done))]

    async def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM every process (each drains gracefully), SIGKILL what is left at the deadline."""
        # The gateway first, so no new request reaches a service that is going away.
        for name in ("gateway", *reversed(SERVICES), "mail_sink"):
            proc = self.processes.get(name)
            if proc is not None and proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        waiting = [proc.wait() for proc in self.processes.values()]
        try:
            await asyncio.wait_for(asyncio.gather(*waiting), timeout)
        except TimeoutError:
            for proc in self.processes.values():
                if proc.returncode is None:
                    proc.kill()
            await asyncio.gather(*(proc.wait() for proc in self.processes.values()))


def console_logs_unless_chosen(env_file: Path = DOT_ENV) -> dict[str, str]:
    """LOG_FORMAT=console for the processes, unless the environment or `.env` chose a format.

    A person reads `make run` in a terminal; everywhere else the default stays JSON.
    """
    if "LOG_FORMAT" in os.environ or (
        env_file.is_file() and dotenv_values(env_file).get("LOG_FORMAT") is not None
    ):
        return {}
    return {"LOG_FORMAT": LogFormat.CONSOLE.value}


async def preflight(settings: CommonSettings) -> None:
    """Refuse to start without RabbitMQ: the saga cannot run without it."""
    await check_broker(settings.amqp_url)


async def seed_demo(mesh: Mesh) -> None:
    """Seed the demo shop into the mesh just started (`make run DEMO=1`), as `make demo` would.

    A failure is reported and leaves the mesh running: it serves as well without the demo."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "demo",
        "--gateway-url",
        mesh.gateway_url,
        env=mesh.env_of("demo"),
        cwd=PROJECT_ROOT,
    )
    try:
        status = await process.wait()
    finally:
        if process.returncode is None:  # stopped meanwhile
            process.terminate()
            await process.wait()
    if status != 0:
        print(
            "error: the demo shop was not seeded (see above); the mesh keeps running",
            file=sys.stderr,
            flush=True,
        )


async def main_async(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m localmesh.launcher")
    parser.add_argument(
        "--demo", action="store_true", help="seed the demo shop once the mesh is ready"
    )
    args = parser.parse_args(argv)
    settings = load_settings(CommonSettings)
    try:
        await preflight(settings)
    except BrokerUnavailable as exc:
        print(f"error: {exc.code}", file=sys.stderr)
        return 1
    ports = MeshPorts(
        grpc={
            service: int(os.environ.get(f"{service.upper()}_GRPC_PORT", default))
            for service, default in DEFAULT_GRPC_PORTS.items()
        },
        gateway=int(os.environ.get("GATEWAY_PORT", DEFAULT_GATEWAY_PORT)),
        metrics={
            service: int(os.environ.get(f"{service.upper()}_METRICS_PORT", default))
            for service, default in DEFAULT_METRICS_PORTS.items()
        },
    )
    mesh = Mesh(ports=ports, mail_sink=True, extra_env=console_logs_unless_chosen())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await mesh.start()
    except (RuntimeError, TimeoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        await mesh.stop()
        return 1
    print(
        f"\n  Gateway ready at {mesh.gateway_url}  (API docs: {mesh.gateway_url}/docs)\n"
        "  Press Ctrl-C to stop every process.\n",
        flush=True,
    )
    # Without --demo nothing is seeded: the shop starts empty.
    seeding = asyncio.ensure_future(seed_demo(mesh)) if args.demo else None
    stop_waiter = asyncio.ensure_future(stop.wait())
    exit_waiter = asyncio.ensure_future(mesh.wait_any_exit())
    done, _ = await asyncio.wait({stop_waiter, exit_waiter}, return_when=asyncio.FIRST_COMPLETED)
    status = 0
    if exit_waiter in done:
        print(
            f"error: {exit_waiter.result()} stopped unexpectedly; stopping the rest",
            file=sys.stderr,
        )
        status = 1
    for waiter in (stop_waiter, exit_waiter):
        waiter.cancel()
    if seeding is not None:
        seeding.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await seeding
    await mesh.stop()
    print("All processes stopped.", flush=True)
    return status


def main() -> None:
    raise SystemExit(asyncio.run(main_async(sys.argv[1:])))


if __name__ == "__main__":
    main()
