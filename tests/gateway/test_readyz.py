"""The gateway's probes: /healthz always, /readyz only when every upstream is SERVING."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI

from gateway.app import create_app
from gateway.settings import GatewaySettings
from gateway.upstreams import UPSTREAMS
from meshkit.settings import load_settings
from tests.gateway.conftest import health_only_upstreams
from tests.support import free_port


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client


@pytest.fixture
async def upstreams() -> AsyncIterator[dict[str, str]]:
    """Five servers with nothing but health, as upstreams that are up."""
    async with health_only_upstreams(UPSTREAMS) as addresses:
        yield addresses


async def test_ready_when_every_upstream_serves(upstreams: dict[str, str]) -> None:
    app = create_app(load_settings(GatewaySettings, env_file=None, **upstreams))
    async with serve(app) as client:
        response = await client.get("/readyz")
        assert response.status_code == 200
        assert set(response.json()["upstreams"].values()) == {"SERVING"}
        assert (await client.get("/healthz")).status_code == 200


async def test_not_ready_names_the_missing_upstream(upstreams: dict[str, str]) -> None:
    addresses = {**upstreams, "payment_service_addr": f"127.0.0.1:{free_port()}"}
    app = create_app(
        load_settings(GatewaySettings, env_file=None, readiness_timeout_seconds=0.5, **addresses)
    )
    async with serve(app) as client:
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["not_serving"] == ["payment_service"]


async def test_docs_and_openapi_are_served(upstreams: dict[str, str]) -> None:
    app = create_app(load_settings(GatewaySettings, env_file=None, **upstreams))
    async with serve(app) as client:
        assert (await client.get("/docs")).status_code == 200
        assert "/readyz" in (await client.get("/openapi.json")).json()["paths"]


async def test_unknown_route_is_problem_json(upstreams: dict[str, str]) -> None:
    app = create_app(load_settings(GatewaySettings, env_file=None, **upstreams))
    async with serve(app) as client:
        response = await client.get("/v1/nowhere")
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == 404
