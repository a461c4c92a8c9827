"""The gateway's composition root: builds the FastAPI app and its long-lived clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from gateway.admin import install_admin
from gateway.answer_cache import Answers, open_caches
from gateway.docs import install_docs
from gateway.metrics import metrics_router
from gateway.middleware import install_middleware
from gateway.openapi import install_openapi
from gateway.problems import install_problem_handlers
from gateway.ratelimit import RateLimits
from gateway.routes import (
    analytics,
    auth,
    carts,
    categories,
    health,
    notifications,
    orders,
    problems,
    products,
    users,
)
from gateway.settings import GatewaySettings
from gateway.upstreams import Upstreams
from meshkit.identity import jwks_verifier
from meshkit.process import GATEWAY_YOUNG_COLLECTION_THRESHOLD, prepare_collector_for_serving

OPENAPI_TAGS = [
    {"name": "auth", "description": "Sign up, sign in, tokens."},
    {"name": "users", "description": "Your profile; user administration."},
    {"name": "categories", "description": "The catalog's categories."},
    {"name": "products", "description": "The catalog: public reads, seller and admin writes."},
    {"name": "cart", "description": "Your cart and its checkout."},
    {"name": "orders", "description": "Orders, their payment and timeline."},
    {"name": "notifications", "description": "Emails sent to you."},
    {"name": "analytics", "description": "Sales figures (admins)."},
    {"name": "operations", "description": "Probes and metrics."},
]


def create_app(settings: GatewaySettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            stack.push_async_callback(app.state.rate_limits.close)
            upstreams = Upstreams.open(settings)
            stack.push_async_callback(upstreams.close)
            app.state.upstreams = upstreams
            app.state.verifier = jwks_verifier(settings, upstreams.channels["user_service"], stack)
            open_caches(app.state.answers, settings, stack)
            prepare_collector_for_serving(GATEWAY_YOUNG_COLLECTION_THRESHOLD)
            yield

    app = FastAPI(
        title="E-commerce mesh API",
        version="1.0.0",
        description=(
            "REST front door of the e-commerce mesh. Every call becomes a gRPC call on the "
            "product, user or order service. Send `Authorization: Bearer <access token>` "
            "from `POST /v1/auth/login`. Errors are `application/problem+json` (RFC 9457) "
            "with a `request_id`; money is `{amount_minor, currency_code}`."
        ),
        openapi_tags=OPENAPI_TAGS,
        lifespan=lifespan,
        # FastAPI's own docs pages load their assets from a CDN: `install_docs` serves them.
        docs_url=None,
        redoc_url=None,
        # The gateway's telemetry is its Prometheus metrics and JSON access log. FastAPI's own
        # OpenTelemetry hooks, even with no provider configured, looked the providers up on
        # every request.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.settings = settings
    app.state.rate_limits = RateLimits.from_settings(settings)
    app.state.metrics_registry = CollectorRegistry()
    app.state.answers = Answers(app.state.metrics_registry)
    install_problem_handlers(app)
    install_middleware(app, settings, app.state.rate_limits, app.state.metrics_registry)
    # Routes are tried in order, and every route passed over costs the request CPU (a route
    # placed last costs clearly more than the same route placed first): the shop's hot paths
    # first.
    routers = (
        products,
        orders,
        carts,
        categories,
        users,
        auth,
        notifications,
        analytics,
        health,
        problems,
    )
    for router in (*(module.router for module in routers), metrics_router):
        # Not include_router: FastAPI keeps an included router as a live view, matched through
        # a wrapper on every request, a noticeable part of the gateway's own cost. These
        # routers are complete and carry no prefix or dependencies of their own.
        if router.prefix or router.dependencies:
            raise ValueError("a router with a prefix or dependencies must be included")
        app.router.routes.extend(router.routes)
    install_openapi(app)
    install_docs(app)
    install_admin(app)
    return app
