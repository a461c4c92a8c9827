"""The client channel against a scripted servicer served by pytest-grpc.

Retries happen on UNAVAILABLE (and, for the methods safe to repeat, CANCELLED: see
test_graceful_drain); every call has a deadline; context travels as metadata.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from meshkit.context import request_id_var
from meshkit.rpc import create_channel
from tests.support import free_port


# grpc_health's stubs leave health_pb2_grpc untyped (Any).
class ScriptedHealth(health_pb2_grpc.HealthServicer):  # type: ignore[misc]
    """Answers each call with the next scripted outcome: a status code, or a delay."""

    def __init__(self) -> None:
        self.script: list[grpc.StatusCode | float] = []
        self.calls = 0
        self.metadata: list[dict[str, str | bytes]] = []
        self.lock = threading.Lock()

    def Check(self, request: Any, context: grpc.ServicerContext) -> Any:
        with self.lock:
            self.calls += 1
            self.metadata.append(dict(context.invocation_metadata()))
            step = self.script.pop(0) if self.script else grpc.StatusCode.OK
        if isinstance(step, float):
            time.sleep(step)
        elif step is not grpc.StatusCode.OK:
            context.abort(step, f"scripted {step.name}")
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


@pytest.fixture(scope="module")
def grpc_addr() -> str:
    # pytest-grpc's own fixture leaves its probe socket open.
    return f"localhost:{free_port()}"


@pytest.fixture(scope="module")
def grpc_add_to_server() -> Any:
    return health_pb2_grpc.add_HealthServicer_to_server


@pytest.fixture(scope="module")
def grpc_servicer() -> ScriptedHealth:
    return ScriptedHealth()


@pytest.fixture(scope="module")
def grpc_stub_cls() -> Any:
    return health_pb2_grpc.HealthStub


@pytest.fixture
def scripted(grpc_server: Any, grpc_servicer: ScriptedHealth) -> ScriptedHealth:
    grpc_servicer.script.clear()
    grpc_servicer.calls = 0
    grpc_servicer.metadata.clear()
    return grpc_servicer


async def check(address: str, **channel_options: Any) -> Any:
    channel = create_channel(address, **channel_options)
    try:
        return await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    finally:
        await channel.close(None)


def test_sync_stub_sees_the_scripted_servicer(scripted: ScriptedHealth, grpc_stub: Any) -> None:
    response = grpc_stub.Check(health_pb2.HealthCheckRequest())
    assert response.status == health_pb2.HealthCheckResponse.SERVING
    assert scripted.calls == 1


async def test_unavailable_is_retried(scripted: ScriptedHealth, grpc_addr: str) -> None:
    scripted.script[:] = [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAVAILABLE]
    response = await check(grpc_addr)
    assert response.status == health_pb2.HealthCheckResponse.SERVING
    assert scripted.calls == 3


async def test_retries_are_bounded(scripted: ScriptedHealth, grpc_addr: str) -> None:
    scripted.script[:] = [grpc.StatusCode.UNAVAILABLE] * 10
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await check(grpc_addr, max_attempts=3)
    assert raised.value.code() is grpc.StatusCode.UNAVAILABLE
    assert scripted.calls == 3


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    ],
)
async def test_other_codes_are_not_retried(
    scripted: ScriptedHealth, grpc_addr: str, code: grpc.StatusCode
) -> None:
    scripted.script[:] = [code, code]
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await check(grpc_addr)
    assert raised.value.code() is code
    assert scripted.calls == 1


async def test_every_call_gets_the_default_deadline(
    scripted: ScriptedHealth, grpc_addr: str
) -> None:
    scripted.script[:] = [1.0]
    started = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await check(grpc_addr, timeout_seconds=0.2)
    assert raised.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 0.9


async def test_request_id_travels_as_metadata(scripted: ScriptedHealth, grpc_addr: str) -> None:
    token = request_id_var.set("req-7")
    try:
        await check(grpc_addr)
    finally:
        request_id_var.reset(token)
    assert scripted.metadata[0]["x-request-id"] == "req-7"


async def test_call_deadline_longer_than_the_channel_default_works(
    scripted: ScriptedHealth, grpc_addr: str
) -> None:
    """A service-config timeout shorter than the call's deadline failed every call at once."""
    channel = create_channel(grpc_addr, timeout_seconds=0.5)
    try:
        response = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=3
        )
    finally:
        await channel.close(None)
    assert response.status == health_pb2.HealthCheckResponse.SERVING
