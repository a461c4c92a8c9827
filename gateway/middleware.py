"""The gateway's HTTP edge: request ids, access log, metrics, security headers, body size,
CORS."""

from __future__ import annotations

import inspect
import logging
import re
import time
from collections.abc import Collection, Mapping
from typing import Any, cast

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.types import ASGIApp, HTTPExceptionHandler, Message, Receive, Scope, Send

from gateway.admin import ADMIN_PATHS
from gateway.docs import DOCS_CSP, DOCS_PATHS
from gateway.metrics import HttpMetrics
from gateway.problems import problem
from gateway.ratelimit import RateLimits, WriteRateLimitMiddleware
from gateway.settings import GatewaySettings
from meshkit.context import REQUEST_ID_HEADER, new_request_id, request_id_var
from meshkit.telemetry import enter, leave, tracer

access_logger = logging.getLogger("gateway.access")

# Pure ASGI classes, not BaseHTTPMiddleware: that one runs the app in another task, which costs
# throughput and hides contextvars set inside the app from the middleware.

_REQUEST_ID_HEADER = REQUEST_ID_HEADER.encode("latin-1")
# A client's id ends up in logs and upstream metadata: anything else could forge log lines.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")

_SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"strict-transport-security", b"max-age=63072000; includeSubDomains"),
)
_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
_DOCS_CSP = (b"content-security-policy", DOCS_CSP.encode("ascii"))
_NO_STORE = (b"cache-control", b"no-store")

CORS_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
CORS_ALLOW_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID")
CORS_EXPOSE_HEADERS = ("X-Request-ID", "Location", "Retry-After")


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return cast(bytes, value)
    return None


class EdgeMiddleware:
    """What every answer gets, in one layer: a request id, security headers, a metrics sample
    and an access log line.

    The request id is the client's when sane, else a new one; it is echoed on every answer,
    bound for logs and upstream metadata, and logged. Hardening headers are added unless a
    route set its own value. One layer instead of four: one wrapped `send` and one copy of
    the response headers per answer.
    """

    def __init__(
        self,
        app: ASGIApp,
        metrics: HttpMetrics,
        docs_paths: Collection[str] = DOCS_PATHS,
    ) -> None:
        self.app = app
        self.metrics = metrics
        # The docs pages run scripts, which the API's CSP forbids: theirs allows the gateway's.
        self.docs_paths = tuple(docs_paths)
        self._docs_headers = (*_SECURITY_HEADERS, _DOCS_CSP)
        self._api_headers = (*_SECURITY_HEADERS, _CSP, _NO_STORE)
        self._other_headers = (*_SECURITY_HEADERS, _CSP)

    def _headers_for(self, path: str) -> tuple[tuple[bytes, bytes], ...]:
        if path.startswith("/v1/"):
            return self._api_headers
        if any(path == docs or path.startswith(docs + "/") for docs in self.docs_paths):
            return self._docs_headers
        return self._other_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = _header(scope, _REQUEST_ID_HEADER)
        candidate = given.decode("latin-1") if given is not None else ""
        request_id = candidate if _SANE_REQUEST_ID.fullmatch(candidate) else new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        id_header = (_REQUEST_ID_HEADER, request_id.encode("ascii"))
        extra = self._headers_for(scope["path"])
        # What the client gets when the app raises before answering.
        status = 500

        async def send_with_edge_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [
                    (key, value)
                    for key, value in message.get("headers", ())
                    if key.lower() != _REQUEST_ID_HEADER
                ]
                present = {key.lower() for key, _ in headers}
                headers.extend(header for header in extra if header[0] not in present)
                headers.append(id_header)
                message = {**message, "headers": headers}
            await send(message)

        # Logs and the upstream gRPC channels read the id from here.
        token = request_id_var.set(request_id)
        try:
            await self.app(scope, receive, send_with_edge_headers)
        finally:
            elapsed = time.perf_counter() - started
            self.metrics.observe(scope, status, elapsed)
            if access_logger.isEnabledFor(logging.INFO):
                _log_access(scope, status, elapsed, request_id)
            request_id_var.reset(token)


def _log_access(scope: Scope, status: int, elapsed: float, request_id: str) -> None:
    state: Mapping[str, Any] = scope.get("state") or {}
    principal = state.get("principal")
    client = scope.get("client")
    access_logger.info(
        "%s %s %d",
        scope["method"],
        scope["path"],
        status,
        extra={
            "method": scope["method"],
            "path": scope["path"],
            "status": status,
            "duration_ms": round(elapsed * 1000, 2),
            "user_id": getattr(principal, "subject", None),
            "request_id": request_id,
            "client": client[0] if client else None,
        },
    )


class RequestBodyTooLarge(HTTPException):
    """Raised from receive(): FastAPI passes HTTPExceptions met while reading a body on."""

    def __init__(self, detail: str) -> None:
        super().__init__(413, detail)


class BodySizeLimitMiddleware:
    """413 for a body over `max_bytes`: up front by Content-Length, else as it streams in."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.detail = f"The request body is larger than {max_bytes} bytes."

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(413, self.detail)
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        if _header(scope, b"transfer-encoding") is None and (
            declared is None or declared.isdigit()
        ):
            # No body, or one the server reads to its declared length and no further: nothing
            # to count, so most requests (GETs) skip the wrapped receive and send below.
            await self.app(scope, receive, send)
            return

        received = 0
        too_large = False
        response_started = False
        answered = False

        async def receive_within_limit() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    raise RequestBodyTooLarge(self.detail)
            return message

        async def send_unless_too_large(message: Message) -> None:
            nonlocal response_started, answered
            if answered:
                return
            if message["type"] == "http.response.start":
                response_started = True
                # An app that swallowed the error must not answer as if the body were fine.
                if too_large and message["status"] != 413:
                    answered = True
                    await self._too_large(scope, receive, send)
                    return
            await send(message)

        try:
            await self.app(scope, receive_within_limit, send_unless_too_large)
        except RequestBodyTooLarge:
            if response_started:
                raise
            await self._too_large(scope, receive, send)


class UnhandledErrorMiddleware:
    """Answers an exception no handler took with the app's 500 handler, inside our middlewares.

    Starlette runs that handler outermost, where the response would miss the request id, the
    security headers, the access log and the metrics.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response_started = False

        async def send_and_track(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive, send_and_track)
        except Exception as exc:
            handler = _server_error_handler(scope)
            if response_started or handler is None:
                raise
            response = handler(Request(scope, receive), exc)
            if inspect.isawaitable(response):
                response = await response
            await response(scope, receive, send)


def _server_error_handler(scope: Scope) -> HTTPExceptionHandler | None:
    handlers: Mapping[Any, Any] = getattr(scope.get("app"), "exception_handlers", {})
    return cast("HTTPExceptionHandler | None", handlers.get(Exception) or handlers.get(500))


def add_cors(app: FastAPI, settings: GatewaySettings) -> None:
    """CORS for the configured origins; with none configured, no cross-origin access at all."""
    origins = settings.cors_origin_list
    if not origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        # Bearer tokens travel in a header, never in cookies.
        allow_credentials=False,
        allow_methods=CORS_METHODS,
        allow_headers=CORS_ALLOW_HEADERS,
        expose_headers=CORS_EXPOSE_HEADERS,
    )


# W3C recommends propagating at least 512 characters of tracestate; the mesh keeps no more.
_TRACESTATE_MAX = 512


class TracingMiddleware:
    """A server span per HTTP request, continuing the client's W3C `traceparent`; added only
    while tracing is on. The upstream calls the request makes are its children.

    Here most traces start, and are sampled (`meshkit.telemetry.enter`): a request the sampler
    drops costs a lookup and carries its unsampled context on, and nothing else."""

    # Scraped and probed all day: a span each would bury the traces people look for.
    _UNTRACED = frozenset({"/metrics", "/healthz", "/readyz"})

    def __init__(self, app: ASGIApp) -> None:
        from opentelemetry.trace import SpanKind

        self.app = app
        self._kind = SpanKind.SERVER

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._UNTRACED:
            await self.app(scope, receive, send)
            return
        carrier = {
            key.decode("latin-1"): value.decode("latin-1")
            for key, value in scope["headers"]
            # A client's tracestate travels with every span and event of the request: one
            # longer than W3C's advice for it is dropped, not carried through the mesh.
            if key == b"traceparent" or (key == b"tracestate" and len(value) <= _TRACESTATE_MAX)
        }
        method: str = scope["method"]
        entered = enter(
            method,
            None,
            self._kind,
            {"http.request.method": method, "url.path": scope["path"]},
            carrier=carrier,
        )
        span = entered.span
        if span is None:
            try:
                await self.app(scope, receive, send)
            finally:
                leave(entered)
            return
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            template = getattr(scope.get("route"), "path", None)
            if template:
                span.update_name(f"{method} {template}")
                span.set_attributes({"http.route": template, "http.response.status_code": status})
            else:
                span.set_attribute("http.response.status_code", status)
            if status >= 500:
                from opentelemetry.trace import Status, StatusCode

                span.set_status(Status(StatusCode.ERROR))
            leave(entered)


def install_middleware(
    app: FastAPI,
    settings: GatewaySettings,
    limiter: RateLimits,
    registry: CollectorRegistry,
) -> None:
    """Add every edge middleware to `app`; the last one added runs outermost."""
    app.add_middleware(UnhandledErrorMiddleware)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(WriteRateLimitMiddleware, limits=limiter)
    # Outside the limiters, so a browser may read their 413 and 429 answers.
    add_cors(app, settings)
    # Outermost: every answer, even a 413 or 429 from a layer inside, carries the id and the
    # security headers, and is counted and logged.
    app.add_middleware(
        EdgeMiddleware,
        metrics=HttpMetrics(registry),
        # The dashboard, like the docs, runs the gateway's own scripts and nothing else.
        docs_paths=(*DOCS_PATHS, *ADMIN_PATHS),
    )
    if tracer() is not None:
        # Outermost of all: the span covers everything the gateway does for the request.
        app.add_middleware(TracingMiddleware)
