"""Errors as `application/problem+json` (RFC 9457), and gRPC status → HTTP status."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import grpc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from google.rpc import error_details_pb2, status_pb2
from starlette.exceptions import HTTPException as StarletteHTTPException

from meshkit.context import current_request_id

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

GRPC_TO_HTTP: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}

# What the client is told when the server is at fault: never the internal detail.
_SERVER_FAULT_DETAIL = {
    500: "The server failed to handle this request. Quote the request id when reporting it.",
    503: "A service this request needs is unavailable. Retry later.",
    504: "A service this request needs did not answer in time. Retry later.",
}


def problem(
    status: int,
    detail: str,
    *,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    request_id: str | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error",
        "status": status,
        "detail": detail,
        "request_id": request_id or current_request_id(),
    }
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def field_violations(error: grpc.aio.AioRpcError) -> list[dict[str, str]]:
    """Field errors from a rich status (google.rpc.BadRequest in grpc-status-details-bin)."""
    entries: list[tuple[str, str | bytes]] = list(error.trailing_metadata() or ())  # type: ignore[arg-type]
    for key, value in entries:
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            status = status_pb2.Status.FromString(value)
            violations: list[dict[str, str]] = []
            for detail in status.details:
                bad_request = error_details_pb2.BadRequest()
                if detail.Unpack(bad_request):
                    violations.extend(
                        {"field": v.field, "message": v.description}
                        for v in bad_request.field_violations
                    )
            return violations
    return []


def problem_from_rpc_error(error: grpc.aio.AioRpcError) -> JSONResponse:
    status = GRPC_TO_HTTP.get(error.code(), 500)
    if status >= 500:
        if status == 500 or status == 501:
            logger.error("upstream failed: %s %s", error.code().name, error.details())
        detail = _SERVER_FAULT_DETAIL.get(status, "This operation is not available yet.")
        if status == 503 and error.details():
            detail = f"{detail} ({error.details()})"
        return problem(status, detail)
    return problem(
        status, error.details() or HTTPStatus(status).phrase, errors=field_violations(error)
    )


def _validation_field(loc: tuple[Any, ...]) -> str:
    parts = [str(part) for part in loc]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:]
    return ".".join(parts) or "body"


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"No route matches {request.method} {request.url.path}."
        return problem(exc.status_code, detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(error.get("type") == "json_invalid" for error in errors):
            return problem(400, "The request body is not valid JSON.")
        return problem(
            422,
            "The request has invalid fields.",
            errors=[
                {"field": _validation_field(tuple(e.get("loc", ()))), "message": str(e.get("msg"))}
                for e in errors
            ],
        )

    @app.exception_handler(grpc.aio.AioRpcError)
    async def rpc_error(request: Request, exc: grpc.aio.AioRpcError) -> JSONResponse:
        return problem_from_rpc_error(exc)

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, _SERVER_FAULT_DETAIL[500])
