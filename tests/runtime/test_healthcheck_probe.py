"""The containers' health probe: `python -m meshkit.healthcheck` against real servers."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from meshkit.rpc import GrpcServer, start_grpc_server
from tests.support import free_port


async def probe(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """The probe's exit status and what it printed, run as the image runs it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "meshkit.healthcheck",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, output.decode()


@pytest.fixture
async def grpc_server() -> AsyncIterator[GrpcServer]:
    server = await start_grpc_server([], host="127.0.0.1", port=0)
    try:
        yield server
    finally:
        await server.server.stop(0)


async def test_grpc_probe_follows_the_servers_health(grpc_server: GrpcServer) -> None:
    port = str(grpc_server.port)
    assert await probe("grpc", "--port", port) == (0, "SERVING\n")

    await grpc_server.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    status, said = await probe("grpc", "--port", port)
    assert (status, said) == (1, "NOT_SERVING\n")


async def test_grpc_probe_reads_the_port_from_grpc_port(grpc_server: GrpcServer) -> None:
    # Images set GRPC_PORT, so their HEALTHCHECK needs no port of its own.
    env = {**os.environ, "GRPC_PORT": str(grpc_server.port)}
    assert await probe("grpc", env=env) == (0, "SERVING\n")


async def test_grpc_probe_fails_on_a_closed_port_and_an_unknown_service(
    grpc_server: GrpcServer,
) -> None:
    status, said = await probe("grpc", "--port", str(free_port()), "--timeout", "1")
    assert status == 1
    assert "UNAVAILABLE" in said or "DEADLINE_EXCEEDED" in said
    status, said = await probe("grpc", "--port", str(grpc_server.port), "--service", "nope")
    assert status == 1 and "NOT_FOUND" in said


class _Answers(BaseHTTPRequestHandler):
    statuses: ClassVar[dict[str, int]] = {"/readyz": 200, "/healthz": 200}

    def do_GET(self) -> None:
        status = self.statuses.get(self.path, 404)
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b'{"status": "not ready"}' if status != 200 else b"{}")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


async def test_http_probe_asks_readiness_by_default(
    http_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await probe("http", "--port", str(http_port)))[0] == 0
    monkeypatch.setitem(_Answers.statuses, "/readyz", 503)
    status, said = await probe("http", "--port", str(http_port))
    assert status == 1 and "HTTP 503" in said and "not ready" in said
    assert (await probe("http", "--port", str(http_port), "--path", "/healthz"))[0] == 0


async def test_tcp_probe_needs_a_listener(http_port: int) -> None:
    assert (await probe("tcp", "--port", str(http_port)))[0] == 0
    assert (await probe("tcp", "--port", str(free_port())))[0] == 1


async def test_health_checks_are_logged_below_info(
    grpc_server: GrpcServer, caplog: pytest.LogCaptureFixture
) -> None:
    # Orchestrators probe every few seconds; at INFO those lines would bury the real calls.
    caplog.set_level(logging.DEBUG, logger="meshkit.access")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_server.port}") as channel:
        await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    (record,) = [r for r in caplog.records if r.name == "meshkit.access"]
    assert record.levelno == logging.DEBUG
    assert record.__dict__["method"] == "/grpc.health.v1.Health/Check"
