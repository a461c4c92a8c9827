"""The OpenAPI document, completed with the error answers every route can give.

FastAPI documents a 422 `application/json` validation error on any route with input, while
the gateway answers problem+json: 400 for a body that is not JSON and for a bad parameter,
422 for a body that parses but does not fit its schema (`gateway.problems`). Each route
lists its own domain errors (`problem_responses`); this adds, to every operation, the ones
the edge gives whatever the route: the input errors its inputs allow (413 for a body too
large), 429 for a write (the write limits) and 503 and 504 for an upstream out of reach or
too slow.

Every error answer shows, as its examples, the problem types it comes with: each type whose
statuses include the answer's (`gateway.problem_types`), so a reader sees which `type` values
to expect, and Swagger UI offers them to pick from.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from gateway.problem_types import types_of_status
from gateway.problems import status_title
from gateway.schemas.common import problem_responses

# Answered by any route that calls a service.
_UPSTREAM_FAILURES = (503, 504)
_METHODS = ("get", "put", "post", "patch", "delete")
# What a request id looks like (`meshkit.context`): 32 hex digits.
_REQUEST_ID_EXAMPLE = "4bf92f3577b34da6a3ce929d0e0e4736"
_FIELD_ERRORS_EXAMPLE = {
    400: [{"field": "price.currency_code", "message": "is not an active ISO 4217 code"}],
    422: [{"field": "quantity", "message": "Input should be a valid integer"}],
}


def _problem_content(status: int) -> dict[str, Any]:
    """A problem+json answer with this status: the schema, and an example of each type."""
    examples: dict[str, Any] = {}
    for problem in types_of_status(status):
        value: dict[str, Any] = {
            "type": problem.uri,
            "title": status_title(status),
            "status": status,
            "detail": problem.summary,
            "request_id": _REQUEST_ID_EXAMPLE,
        }
        if problem.reason in ("INVALID_ARGUMENT", "VALIDATION_FAILED"):
            value["errors"] = _FIELD_ERRORS_EXAMPLE[status]
        examples[problem.name] = {"summary": problem.uri, "value": value}
    return {"schema": {"$ref": "#/components/schemas/Problem"}, "examples": examples}


def _problem(status: int) -> dict[str, Any]:
    (entry,) = problem_responses(status).values()
    return {
        "description": entry["description"],
        "content": {"application/problem+json": _problem_content(status)},
    }


def complete_error_responses(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with the edge's error answers on every operation of the API's own paths."""
    for path, operations in schema.get("paths", {}).items():
        # Probes and the problem catalogue call no service.
        calls_services = path.startswith("/v1/")
        for method in _METHODS:
            operation = operations.get(method)
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            has_body = "requestBody" in operation
            has_parameters = bool(operation.get("parameters"))
            if "422" in responses and not has_body:
                del responses["422"]  # a bad parameter is 400, not FastAPI's 422
            wanted = [*_UPSTREAM_FAILURES] if calls_services else []
            if has_body or has_parameters:
                wanted.append(400)
            if has_body:
                wanted += [413, 422]
            if method != "get" and calls_services:
                wanted.append(429)  # the write limits
            for status in wanted:
                responses[str(status)] = _problem(status)
            # Whatever FastAPI put under an error status is sent as problem+json.
            for status, response in responses.items():
                content = response.get("content")
                if status[0] in "45" and content and "application/json" in content:
                    response["content"] = {
                        "application/problem+json": _problem_content(int(status))
                    }
    schema.get("components", {}).get("schemas", {}).pop("HTTPValidationError", None)
    schema.get("components", {}).get("schemas", {}).pop("ValidationError", None)
    return schema


def install_openapi(app: FastAPI) -> None:
    """Serve the completed document, built once, at the app's `openapi_url`."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete_error_responses(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                    tags=app.openapi_tags,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
