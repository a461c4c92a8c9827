"""The OpenAPI document lists every route the routers define, under its router's tag."""

from __future__ import annotations

from typing import get_type_hints

from fastapi.routing import APIRoute

from gateway.app import create_app
from gateway.responses import Document, EncodedDocument
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


def test_a_route_answering_with_a_document_shows_the_model_of_its_body() -> None:
    # A returned Response bypasses FastAPI's model: without `response_model=` the document
    # would show no schema for the body.
    app = create_app(load_settings(GatewaySettings, env_file=None))
    routes = [
        route
        for route in app.routes
        if isinstance(route, APIRoute)
        and get_type_hints(route.endpoint).get("return") in (Document, EncodedDocument)
    ]
    assert {(route.path, *(route.methods or ())) for route in routes} >= {
        ("/v1/products/{product_id}", "GET"),
        ("/v1/products", "GET"),
        ("/v1/orders/{order_id}", "GET"),
    }
    for route in routes:
        assert route.response_model is not None, route.path
    content = app.openapi()["paths"]["/v1/products/{product_id}"]["get"]["responses"]["200"]
    assert content["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Product"
    }
