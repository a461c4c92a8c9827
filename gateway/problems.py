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

from gateway.problem_types import type_uri
from meshkit.context import current_request_id
from meshkit.errors import DomainError, InvalidArgument, ResourceExhausted
from meshkit.rpc import domain_reason, rich_status

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
MALFORMED_BODY = "MALFORMED_BODY"

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


def status_title(status: int) -> str:
    """The `title` of a problem with this status."""
    # gRPC's CANCELLED maps to 499, which no standard names.
    return HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"


def problem(
    status: int,
    detail: str,
    *,
    reason: str | None = None,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    request_id: str | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": type_uri(status, reason),
        "title": status_title(status),
        "status": status,
        "detail": detail,
        "request_id": request_id or current_request_id(),
    }
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def field_violations(status: status_pb2.Status | None) -> list[dict[str, str]]:
    """Field errors from a rich status (google.rpc.BadRequest)."""
    violations: list[dict[str, str]] = []
    for detail in status.details if status else ():
        bad_request = error_details_pb2.BadRequest()
        if detail.Unpack(bad_request):
            violations.extend(
                {"field": v.field, "message": v.description} for v in bad_request.field_violations
            )
    return violations


def problem_from_rpc_error(error: grpc.aio.AioRpcError) -> JSONResponse:
    status = GRPC_TO_HTTP.get(error.code(), 500)
    rich = rich_status(error)
    reason = domain_reason(rich)
    # Only a service of ours writes a reason, and its message for the caller.
    written_for_clients = reason is not None
    reason = reason or error.code().name
    if status == 429 and not written_for_clients:
        # gRPC itself answers RESOURCE_EXHAUSTED when a message or its metadata outgrows a
        # limit, or a process runs short of memory: a fault of ours, not the client's pace,
        # so not a 429 (slow down). Only a service's own ErrorInfo makes it one.
        status = 500
    if status >= 500 or not written_for_clients:
        # Text no service of ours wrote is gRPC's own, naming internal hosts, ports and
        # limits: logged, never sent.
        logger.warning("upstream %s: %s", error.code().name, error.details())
    if status >= 500:
        if status != 500 and written_for_clients:
            return problem(status, error.details() or _SERVER_FAULT_DETAIL[status], reason=reason)
        return problem(
            status,
            _SERVER_FAULT_DETAIL.get(status, "This operation is not available yet."),
            reason=reason,
        )
    detail = (error.details() if written_for_clients else "") or status_title(status)
    return problem(status, detail, reason=reason, errors=field_violations(rich))


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
            # A path may hold text that is not Unicode, which no response can encode: such
            # characters are quoted as escapes (\ud800).
            path = request.url.path.encode("utf-8", "backslashreplace").decode()
            detail = f"No route matches {request.method} {path}."
        return problem(exc.status_code, detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(error.get("type") == "json_invalid" for error in errors):
            return problem(400, "The request body is not valid JSON.", reason=MALFORMED_BODY)
        # Where each error is: "path", "query", "header" or "body".
        sources = {str((error.get("loc") or ("body",))[0]) for error in errors}
        if "path" in sources:
            # Every path parameter is an opaque id, and one refused here (longer than any the
            # mesh issues) names no resource: 404, as a service answers for any unknown id.
            return problem(404, "No resource has this id.")
        if "body" in sources and isinstance(exc.body, bytes):
            # FastAPI parses a body as JSON only when its Content-Type says JSON
            # (application/json or application/*+json); any other body reaches validation
            # as raw bytes, which no schema takes. Whatever those bytes hold, the body was
            # not sent as JSON: 400, never accepted, so a form or text/plain post (which a
            # browser sends cross-origin without asking) cannot pass for JSON.
            return problem(
                400,
                "The request body must be JSON, sent with Content-Type: application/json.",
                reason=MALFORMED_BODY,
            )
        # A bad query parameter or header is a bad request; 422 is for bodies that parse as
        # JSON but do not match the schema.
        in_body = "body" in sources
        return problem(
            422 if in_body else 400,
            "The request has invalid fields.",
            errors=[
                {"field": _validation_field(tuple(e.get("loc", ()))), "message": str(e.get("msg"))}
                for e in errors
            ],
        )

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> JSONResponse:
        status = GRPC_TO_HTTP.get(exc.code, 500)
        errors = (
            [{"field": v.field, "message": v.message} for v in exc.violations]
            if isinstance(exc, InvalidArgument)
            else None
        )
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if isinstance(exc, ResourceExhausted) and exc.retry_after is not None:
            headers = {"Retry-After": str(max(1, round(exc.retry_after)))}
        return problem(status, exc.message, reason=exc.reason, errors=errors, headers=headers)

    @app.exception_handler(grpc.aio.AioRpcError)
    async def rpc_error(request: Request, exc: grpc.aio.AioRpcError) -> JSONResponse:
        return problem_from_rpc_error(exc)

    @app.exception_handler(UnicodeEncodeError)
    async def text_not_unicode(request: Request, exc: UnicodeEncodeError) -> JSONResponse:
        # Text that is not valid Unicode (a lone surrogate) fails only when something encodes
        # it, such as building a protobuf message: the schemas refuse it in bodies, and this
        # answers for text that reached a route by any other way. The client's text, not a
        # fault of ours: 400, never 500.
        # ascii(): the path may hold the very text, which a log line could not write either.
        logger.warning(
            "text not valid Unicode: %s %s", request.method, ascii(request.scope["path"])
        )
        return problem(400, "The request holds text that is not valid Unicode.")

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, _SERVER_FAULT_DETAIL[500])
