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


def test_every_error_an_operation_can_answer_is_documented_as_problem_json() -> None:
    schema = create_app(load_settings(GatewaySettings, env_file=None)).openapi()
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    for path, operations in schema["paths"].items():
        if path in ("/healthz", "/readyz"):
            continue  # probes: a 503 from /readyz is its own JSON, for orchestrators
        for method, operation in operations.items():
            responses = operation["responses"]
            # Malformed JSON is 400 on every route that takes a body (login, refresh and
            # :cancel documented none); a body that does not fit its schema is 422.
            if "requestBody" in operation:
                assert {"400", "413", "422"} <= set(responses), (method, path)
            elif operation.get("parameters"):
                assert "400" in responses and "422" not in responses, (method, path)
            if path.startswith("/v1/"):
                assert {"503", "504"} <= set(responses), (method, path)
            for status, response in responses.items():
                if status.startswith(("4", "5")):
                    assert list(response["content"]) == ["application/problem+json"], (
                        method,
                        path,
                        status,
                    )
                    assert response["content"]["application/problem+json"]["schema"] == {
                        "$ref": "#/components/schemas/Problem"
                    }
