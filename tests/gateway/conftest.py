"""What the gateway's in-process tests share: one stub standing in for every upstream, and the
real gateway app in front of it, every caller taken for an admin."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import grpc
import httpx
import pytest
from fastapi import FastAPI

from gateway.app import create_app
from gateway.settings import GatewaySettings
from meshkit.context import Principal, Role
from meshkit.rpc import start_grpc_server
from meshkit.settings import load_settings

UPSTREAMS = ("user", "product", "order", "payment", "notification")

Failure = Callable[[grpc.aio.ServicerContext[Any, Any]], Awaitable[None]]


# Generic in grpc's type stubs only: the class itself cannot be subscripted.
class StubUpstream(grpc.GenericRpcHandler):  # type: ignore[type-arg]
    """Every upstream at once: records each call (method, request bytes) and answers the empty
    message, every field at its default, unless a test sets `fail`."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []
        self.fail: Failure | None = None
        self.address = ""

    @property
    def methods(self) -> list[str]:
        return [method for method, _ in self.calls]

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[bytes, bytes]:
        method = handler_call_details.method

        async def answer(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
            self.calls.append((method, request))
            if self.fail is not None:
                await self.fail(context)
            return b""

        # No (de)serializers: requests are recorded, and answered, as bytes.
        return grpc.unary_unary_rpc_method_handler(answer)


def abort(code: grpc.StatusCode, details: str) -> Failure:
    async def fail(context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await context.abort(code, details)

    return fail


def abort_with(status: grpc.Status) -> Failure:
    async def fail(context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await context.abort_with_status(status)  # type: ignore[attr-defined]

    return fail


class TrustingVerifier:
    """Takes any bearer token as an admin's: the routes are under test here, not tokens."""

    async def verify(self, token: str) -> Principal:
        return Principal(subject="admin-1", role=Role.ADMIN, token=token)


@pytest.fixture
async def stub() -> AsyncIterator[StubUpstream]:
    upstream = StubUpstream()
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers([upstream])
    upstream.address = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
    await server.start()
    yield upstream
    await server.stop(0)


@asynccontextmanager
async def running_gateway(stub: StubUpstream) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The real gateway app, every upstream the stub, every caller an admin, and a client."""
    app = create_app(
        load_settings(
            GatewaySettings,
            env_file=None,
            redis_url=None,
            **{f"{name}_service_addr": stub.address for name in UPSTREAMS},
        )
    )
    async with app.router.lifespan_context(app):
        app.state.verifier = TrustingVerifier()
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://gateway",
            headers={"Authorization": "Bearer any"},
        ) as http:
            yield app, http


@asynccontextmanager
async def health_only_upstreams(names: Sequence[str]) -> AsyncIterator[dict[str, str]]:
    """Servers with nothing but health, all SERVING, as the named upstreams: their settings."""
    servers = [await start_grpc_server([], host="127.0.0.1", port=0) for _ in names]
    try:
        yield {
            f"{name}_addr": f"127.0.0.1:{server.port}"
            for name, server in zip(names, servers, strict=True)
        }
    finally:
        for server in servers:
            await server.stop(0)
