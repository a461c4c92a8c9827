"""The OpenAPI document lists every route the routers define, under its router's tag."""

from __future__ import annotations

from fastapi.routing import APIRoute

from gateway.app import create_app
from gateway.routes import (
    analytics,
    auth,
    carts,
    categories,
    health,
    notifications,
    orders,
    products,
    users,
)
from gateway.settings import GatewaySettings
from meshkit.settings import load_settings


def test_every_route_of_every_router_is_in_the_openapi_document_with_its_tag() -> None:
    app = create_app(load_settings(GatewaySettings, env_file=None))
    paths = app.openapi()["paths"]
    modules = (analytics, auth, carts, categories, health, notifications, orders, products, users)
    for module in modules:
        for route in module.router.routes:
            assert isinstance(route, APIRoute)
            if not route.include_in_schema:
                continue
            assert route.methods is not None
            for method in route.methods - {"HEAD"}:
                operation = paths[route.path][method.lower()]
                assert operation["tags"] == module.router.tags, (method, route.path)
