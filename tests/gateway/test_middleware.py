"""The HTTP edge: request ids, security headers, body size, CORS, access log, metrics."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from prometheus_client import CollectorRegistry

from gateway.metrics import metrics_router
from gateway.middleware import install_middleware
from gateway.problems import install_problem_handlers
from gateway.ratelimit import RateLimits
from gateway.settings import GatewaySettings
from meshkit.context import Principal, Role, current_request_id
from meshkit.settings import load_settings

ALLOWED_ORIGIN = "https://shop.example"
MAX_BODY_BYTES = 64


def build_app(received: list[Any] | None = None) -> FastAPI:
    """A gateway with the real edge and a few routes of its own: no upstream needed."""
    settings = load_settings(
        GatewaySettings,
        env_file=None,
        redis_url=None,
        cors_origins=ALLOWED_ORIGIN,
        max_body_bytes=MAX_BODY_BYTES,
    )
    app = FastAPI()
    install_problem_handlers(app)
    app.state.rate_limits = RateLimits.from_settings(settings)
    app.state.metrics_registry = CollectorRegistry()
    install_middleware(app, settings, app.state.rate_limits, app.state.metrics_registry)
    app.include_router(metrics_router)

    @app.get("/v1/items/{item_id}")
    async def get_item(item_id: str, request: Request) -> dict[str, Any]:
        return {
            "id": item_id,
            "state_request_id": request.state.request_id,
            "context_request_id": current_request_id(),
        }

    @app.post("/v1/items", status_code=201)
    async def create_item(body: dict[str, Any]) -> dict[str, Any]:
        if received is not None:
            received.append(body)
        return body

    @app.get("/v1/me")
    async def me(request: Request) -> dict[str, str]:
        request.state.principal = Principal(subject="user-42", role=Role.CUSTOMER, token="t")
        return {"id": "user-42"}

    @app.get("/v1/cached")
    async def cached(response: Response) -> dict[str, str]:
        response.headers["Cache-Control"] = "max-age=60"
        return {}

    @app.get("/v1/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    return app


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client
    finally:
        await app.state.rate_limits.close()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with serve(build_app()) as client:
        yield client


async def test_client_request_id_is_echoed_and_used(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/items/a", headers={"X-Request-ID": "trace-me.123_x"})
    assert response.headers["x-request-id"] == "trace-me.123_x"
    body = response.json()
    assert body["state_request_id"] == body["context_request_id"] == "trace-me.123_x"


async def test_request_id_is_generated_when_absent(client: httpx.AsyncClient) -> None:
    first = (await client.get("/v1/items/a")).headers["x-request-id"]
    second = (await client.get("/v1/items/a")).headers["x-request-id"]
    assert len(first) >= 16
    assert first != second


@pytest.mark.parametrize("bad", ["has space", "a;b=c", "x" * 129, "ünïcode", ""])
async def test_insane_request_id_is_replaced(client: httpx.AsyncClient, bad: str) -> None:
    response = await client.get("/v1/items/a", headers=[(b"X-Request-ID", bad.encode("utf-8"))])
    echoed = response.headers["x-request-id"]
    assert echoed != bad
    assert response.json()["state_request_id"] == echoed


async def test_error_answers_carry_the_request_id(client: httpx.AsyncClient) -> None:
    missing = await client.get("/v1/nowhere", headers={"X-Request-ID": "lost-1"})
    assert missing.status_code == 404
    assert missing.headers["x-request-id"] == "lost-1"
    assert missing.json()["request_id"] == "lost-1"

    crashed = await client.get("/v1/boom", headers={"X-Request-ID": "crash-1"})
    assert crashed.status_code == 500
    assert crashed.headers["content-type"] == "application/problem+json"
    assert crashed.headers["x-request-id"] == "crash-1"
    assert crashed.json()["request_id"] == "crash-1"
    assert "a bug" not in crashed.text
    assert crashed.headers["x-content-type-options"] == "nosniff"


async def test_security_headers(client: httpx.AsyncClient) -> None:
    api = await client.get("/v1/items/a")
    assert api.headers["x-content-type-options"] == "nosniff"
    assert api.headers["x-frame-options"] == "DENY"
    assert api.headers["referrer-policy"] == "no-referrer"
    assert api.headers["strict-transport-security"] == "max-age=63072000; includeSubDomains"
    assert api.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert api.headers["cache-control"] == "no-store"

    assert (await client.get("/v1/cached")).headers["cache-control"] == "max-age=60"

    schema = await client.get("/openapi.json")
    assert "content-security-policy" in schema.headers
    assert "cache-control" not in schema.headers

    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert docs.headers["x-frame-options"] == "DENY"
    assert docs.headers["content-security-policy"] == "default-src 'self'; frame-ancestors 'none'"


async def test_body_over_content_length_limit_is_413() -> None:
    received: list[Any] = []
    async with serve(build_app(received)) as client:
        response = await client.post("/v1/items", json={"name": "x" * MAX_BODY_BYTES})
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["request_id"] == response.headers["x-request-id"]
    assert received == []


async def test_streamed_body_over_limit_is_413_and_never_reaches_the_route() -> None:
    received: list[Any] = []

    async def chunks(count: int) -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(count):
            yield b"x" * 16
        yield b'"}'

    async with serve(build_app(received)) as client:
        small = await client.post(
            "/v1/items", content=chunks(2), headers={"Content-Type": "application/json"}
        )
        assert "content-length" not in small.request.headers
        assert small.status_code == 201
        assert received == [{"name": "x" * 32}]

        large = await client.post(
            "/v1/items", content=chunks(8), headers={"Content-Type": "application/json"}
        )
    assert large.status_code == 413
    assert large.headers["content-type"] == "application/problem+json"
    assert large.json()["status"] == 413
    assert "x-request-id" in large.headers
    assert len(received) == 1


async def test_cors_preflight_from_allowed_origin(client: httpx.AsyncClient) -> None:
    response = await client.options(
        "/v1/items",
        headers={
            "Origin": ALLOWED_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Idempotency-Key",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "access-control-allow-credentials" not in response.headers

    simple = await client.get("/v1/items/a", headers={"Origin": ALLOWED_ORIGIN})
    assert simple.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    exposed = simple.headers["access-control-expose-headers"].lower()
    assert {"x-request-id", "location", "retry-after"} <= set(exposed.replace(" ", "").split(","))


async def test_cors_preflight_from_other_origin(client: httpx.AsyncClient) -> None:
    response = await client.options(
        "/v1/items",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in response.headers
    simple = await client.get("/v1/items/a", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in simple.headers


def access_lines(caplog: pytest.LogCaptureFixture) -> dict[str, dict[str, Any]]:
    """The access log's records by request id, as the fields the JSON line would carry."""
    return {
        vars(record)["request_id"]: vars(record)
        for record in caplog.records
        if record.name == "gateway.access"
    }


async def test_access_log_line(client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gateway.access")
    await client.get("/v1/me", headers={"X-Request-ID": "log-me-1"})
    await client.get("/v1/items/a", headers={"X-Request-ID": "log-me-2"})

    lines = access_lines(caplog)
    me = lines["log-me-1"]
    assert me["levelno"] == logging.INFO
    assert (me["method"], me["path"], me["status"]) == ("GET", "/v1/me", 200)
    assert me["user_id"] == "user-42"
    assert me["client"] == "127.0.0.1"
    assert isinstance(me["duration_ms"], float) and me["duration_ms"] >= 0
    assert lines["log-me-2"]["user_id"] is None


async def test_access_log_records_413_and_500(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.access")
    await client.post("/v1/items", json={"name": "x" * 100}, headers={"X-Request-ID": "big"})
    await client.get("/v1/boom", headers={"X-Request-ID": "boom"})
    statuses = {request_id: line["status"] for request_id, line in access_lines(caplog).items()}
    assert statuses == {"big": 413, "boom": 500}


async def test_no_access_log_below_info(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.access")
    await client.get("/v1/items/a")
    assert access_lines(caplog) == {}


async def test_metrics_count_by_route_template(client: httpx.AsyncClient) -> None:
    await client.get("/v1/items/a")
    await client.get("/v1/items/b")
    await client.get("/v1/nowhere/at/all")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'http_requests_total{method="GET",route="/v1/items/{item_id}",status="200"} 2.0' in text
    assert 'http_requests_total{method="GET",route="unmatched",status="404"} 1.0' in text
    assert "/v1/items/a" not in text
    assert 'http_request_duration_seconds_count{method="GET",route="/v1/items/{item_id}"} 2.0' in (
        text
    )
    assert "/metrics" not in (await client.get("/openapi.json")).json()["paths"]


async def test_each_app_has_its_own_registry() -> None:
    async with serve(build_app()) as first, serve(build_app()) as second:
        await first.get("/v1/items/a")
        text = (await second.get("/metrics")).text
    assert 'route="/v1/items/{item_id}"' not in text
