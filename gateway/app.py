"""The gateway's composition root: builds the FastAPI app and its long-lived clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from gateway.problems import install_problem_handlers
from gateway.routes import health
from gateway.settings import GatewaySettings
from gateway.upstreams import Upstreams


def create_app(settings: GatewaySettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.upstreams = Upstreams.open(settings)
        try:
            yield
        finally:
            await app.state.upstreams.close()

    app = FastAPI(
        title="E-commerce mesh API",
        version="1.0.0",
        description=(
            "REST front door of the e-commerce mesh. Every call becomes a gRPC call on the "
            "product, user or order service. Errors are `application/problem+json` (RFC 9457)."
        ),
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_problem_handlers(app)
    app.include_router(health.router)
    return app
