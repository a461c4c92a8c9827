"""Server interceptors: the cross-cutting concerns every RPC of every service shares."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

import grpc
from google.protobuf.message import DecodeError

from meshkit.context import (
    AUTHORIZATION_HEADER,
    CORRELATION_ID_HEADER,
    REQUEST_ID_HEADER,
    Principal,
    correlation_id_var,
    deadline_var,
    new_request_id,
    principal_var,
    request_id_var,
)
from meshkit.errors import NUL_MESSAGE, DomainError, InvalidArgument, Unauthenticated
from meshkit.failures import begin_work, commit_attempted, dependency_down, end_work
from meshkit.metrics import GRPC_HANDLED, GRPC_HANDLING_SECONDS, GRPC_STARTED
from meshkit.rpc.statuses import status_for

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("meshkit.access")

if TYPE_CHECKING:  # grpc's classes are generic only in its type stubs
    Handler: TypeAlias = grpc.RpcMethodHandler[Any, Any]
    _ServerInterceptor: TypeAlias = grpc.aio.ServerInterceptor[Any, Any]
else:
    Handler = grpc.RpcMethodHandler
    _ServerInterceptor = grpc.aio.ServerInterceptor
Behavior = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]


class TokenVerifier(Protocol):
    """Turns a bearer token into a Principal, or raises Unauthenticated."""

    async def verify(self, token: str) -> Principal: ...


class UnaryInterceptor(_ServerInterceptor):
    """Base for interceptors that wrap unary-unary calls (every RPC of this mesh).

    Streaming methods (health Watch, reflection) pass through untouched.
    """

    # grpc accepts None from an interceptor (no such method); its stubs do not say so.
    async def intercept_service(  # type: ignore[override]
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        return wrap_handler((self,), handler, handler_call_details.method)

    def intercept_streaming(self, handler: Handler | None, method: str) -> Handler | None:
        return handler

    async def around(
        self,
        method: str,
        request: Any,
        context: grpc.aio.ServicerContext[Any, Any],
        call_next: Behavior,
    ) -> Any:
        raise NotImplementedError


class InterceptorChain(_ServerInterceptor):
    """Unary interceptors run as one: each method's handler is wrapped once, then reused.

    grpc.aio asks every interceptor for a handler on every call; four interceptors meant four
    wrapped handlers built per call. The chain builds each method's composition on its first
    call (the registered handlers never change once the server runs), which cut a good part of
    the mesh's per-call overhead over a bare server.
    """

    def __init__(self, layers: Sequence[UnaryInterceptor]) -> None:
        self.layers = tuple(layers)
        self._handlers: dict[str, Handler | None] = {}

    async def intercept_service(  # type: ignore[override]
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        method: str = handler_call_details.method
        try:
            return self._handlers[method]
        except KeyError:
            pass
        handler = await continuation(handler_call_details)
        wrapped = wrap_handler(self.layers, handler, method)
        if handler is not None:  # unknown names are not kept: a client could send endless ones
            self._handlers[method] = wrapped
        return wrapped


def wrap_handler(
    layers: Sequence[UnaryInterceptor], handler: Handler | None, method: str
) -> Handler | None:
    """`handler` inside `layers`, the first outermost.

    Each layer's `around` is bound to its method and its next behavior with a partial, not
    wrapped in a coroutine of ours: grpc.aio awaits the outermost directly, and each layer
    costs one coroutine per call instead of two.
    """
    if handler is None or handler.request_streaming or handler.response_streaming:
        for layer in reversed(layers):
            handler = layer.intercept_streaming(handler, method)
        return handler
    inner: Any = handler.unary_unary
    # Methods a service has not built yet are the generated synchronous stubs.
    behavior: Behavior = inner if inspect.iscoroutinefunction(inner) else _awaiting(inner)
    for layer in reversed(layers):
        behavior = functools.partial(layer.around, method, call_next=behavior)
    return grpc.unary_unary_rpc_method_handler(
        behavior,
        request_deserializer=_tolerant(handler.request_deserializer),
        response_serializer=handler.response_serializer,
    )


class Undecodable:
    """What a request that does not parse as its message becomes: grpc answers a deserializer
    that raises with UNKNOWN and the exception's class, where the caller sent bad input."""

    __slots__ = ("message_name",)

    def __init__(self, message_name: str) -> None:
        self.message_name = message_name


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None
    descriptor = getattr(getattr(deserializer, "__self__", None), "DESCRIPTOR", None)
    name = getattr(descriptor, "full_name", "request")

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except DecodeError:
            return Undecodable(name)

    return deserialize


def _awaiting(inner: Any) -> Behavior:
    async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        result = inner(request, context)
        return await result if inspect.isawaitable(result) else result

    return call


def failure_code(
    error: BaseException, context: grpc.aio.ServicerContext[Any, Any]
) -> grpc.StatusCode:
    """The code of a call that ended in `error` without a status of its own: a handler
    cancelled because its caller went away, or its deadline passed, is the caller's doing."""
    if isinstance(error, asyncio.CancelledError):
        remaining = context.time_remaining()
        if remaining is not None and remaining <= 0:
            return grpc.StatusCode.DEADLINE_EXCEEDED
        return grpc.StatusCode.CANCELLED
    return grpc.StatusCode.UNKNOWN


def _metadata_value(context: grpc.aio.ServicerContext[Any, Any], key: str) -> str | None:
    """The call's text metadata under `key` (lower case, as gRPC delivers keys), if any."""
    for name, value in context.invocation_metadata() or ():
        if name == key and isinstance(value, str):
            return value
    return None


class RequestContextInterceptor(UnaryInterceptor):
    """Binds request id, correlation id and the call's deadline to the context; a request id
    made up here is sent back in the trailing metadata."""

    async def around(
        self,
        method: str,
        request: Any,
        context: grpc.aio.ServicerContext[Any, Any],
        call_next: Behavior,
    ) -> Any:
        given = correlation_id = None
        for key, value in context.invocation_metadata() or ():
            if key == REQUEST_ID_HEADER and isinstance(value, str):
                given = value
            elif key == CORRELATION_ID_HEADER and isinstance(value, str):
                correlation_id = value
        request_id = given or new_request_id()
        remaining = context.time_remaining()
        tokens = (
            request_id_var.set(request_id),
            correlation_id_var.set(correlation_id),
            deadline_var.set(None if remaining is None else time.monotonic() + remaining),
        )
        if not given:
            # A caller without an id (grpcurl, say) learns the one the logs carry. One that
            # sent it knows it, and the trailer cost each side of a mesh call CPU for nothing.
            context.set_trailing_metadata(((REQUEST_ID_HEADER, request_id),))
        try:
            return await call_next(request, context)
        finally:
            deadline_var.reset(tokens[2])
            correlation_id_var.reset(tokens[1])
            request_id_var.reset(tokens[0])


_HEALTH_METHODS = "/grpc.health.v1.Health/"


class AccessLogInterceptor(UnaryInterceptor):
    """One log line and one latency observation per call: method, status code, duration."""

    def __init__(self) -> None:
        # Each method's series, and each (method, code)'s: `labels()` validates and locks on
        # every call. Bounded: the registered methods (unknown ones never get here) times the
        # codes.
        self._methods: dict[str, tuple[Any, Any]] = {}
        self._handled: dict[tuple[str, grpc.StatusCode | str], Any] = {}

    def _started(self, method: str) -> Any:
        """Count a call started; the method's latency series."""
        series = self._methods.get(method)
        if series is None:
            service, _, name = method.lstrip("/").rpartition("/")
            labels = ("unary", service, name)
            series = self._methods[method] = (
                GRPC_STARTED.labels(*labels),
                GRPC_HANDLING_SECONDS.labels(*labels),
            )
        series[0].inc()
        return series[1]

    def _observe(
        self, method: str, latency: Any, code: grpc.StatusCode | str, seconds: float
    ) -> str:
        """Record one call's outcome and latency; the code's name, for the log line."""
        code_name = code.name if isinstance(code, grpc.StatusCode) else str(code)
        handled = self._handled.get((method, code))
        if handled is None:
            service, _, name = method.lstrip("/").rpartition("/")
            handled = self._handled[(method, code)] = GRPC_HANDLED.labels(
                "unary", service, name, code_name
            )
        handled.inc()
        latency.observe(seconds)
        return code_name

    async def around(
        self,
        method: str,
        request: Any,
        context: grpc.aio.ServicerContext[Any, Any],
        call_next: Behavior,
    ) -> Any:
        latency = self._started(method)
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        try:
            response = await call_next(request, context)
            code = context.code() or grpc.StatusCode.OK
            return response
        except BaseException as error:
            code = context.code() or failure_code(error, context)
            raise
        finally:
            elapsed = time.perf_counter() - started
            code_name = self._observe(method, latency, code, elapsed)
            # Health is probed every few seconds by every orchestrator: those lines would
            # bury the calls people read the log for.
            level = logging.DEBUG if method.startswith(_HEALTH_METHODS) else logging.INFO
            if access_logger.isEnabledFor(level):
                principal = principal_var.get()
                access_logger.log(
                    level,
                    "rpc",
                    extra={
                        "method": method,
                        "code": code_name,
                        "duration_ms": round(elapsed * 1000, 2),
                        "user_id": principal.subject if principal else None,
                    },
                )


# Upstream failures a caller can act on (retry later) keep their code; others are our bug.
_PASSED_THROUGH_UPSTREAM_CODES = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
)


class ErrorMappingInterceptor(UnaryInterceptor):
    """Domain errors become their status; anything else is INTERNAL, never a stack trace."""

    async def around(
        self,
        method: str,
        request: Any,
        context: grpc.aio.ServicerContext[Any, Any],
        call_next: Behavior,
    ) -> Any:
        work = begin_work()
        try:
            if isinstance(request, Undecodable):
                raise InvalidArgument(f"The request is not a valid {request.message_name}.")
            return await call_next(request, context)
        except DomainError as error:
            await context.abort_with_status(status_for(error))  # type: ignore[attr-defined]
        except grpc.aio.AbortError:
            raise
        except NotImplementedError:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{method} is not implemented yet")
        except grpc.aio.AioRpcError as error:
            if error.code() in _PASSED_THROUGH_UPSTREAM_CODES:
                await context.abort(
                    error.code(), f"a service this call needs failed: {error.details()}"
                )
            logger.exception("unexpected upstream status in %s", method)
            await context.abort(grpc.StatusCode.INTERNAL, "internal error")
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if dependency_down(error) and not commit_attempted():
                # The database or a service out of reach (a restart, a failover) before the
                # call committed anything: UNAVAILABLE, which the mesh's channels retry, says
                # the call did not happen. After a commit was asked for, the outcome is not
                # known, and INTERNAL below says so.
                logger.warning("%s: a dependency is unavailable: %r", method, error)
                await context.abort(
                    grpc.StatusCode.UNAVAILABLE,
                    "A service this call needs is unavailable right now; retry later.",
                )
            if _unstorable_text(error):
                # Text the database cannot hold came from the caller (an id with NUL, say):
                # a field-level check missed it, but it is still the caller's input.
                await context.abort_with_status(  # type: ignore[attr-defined]
                    status_for(InvalidArgument(f"Text in this request {NUL_MESSAGE}."))
                )
            logger.exception("unhandled error in %s", method)
            await context.abort(grpc.StatusCode.INTERNAL, "internal error")
        finally:
            end_work(work)


# PostgreSQL's character_not_in_repertoire: text its encoding cannot hold (NUL).
_UNSTORABLE_TEXT_SQLSTATE = "22021"


def _unstorable_text(error: BaseException) -> bool:
    """Whether `error`, or the driver error under it, is PostgreSQL refusing text."""
    seen: BaseException | None = error
    for _ in range(5):  # the driver's error, under SQLAlchemy's, under ours
        if seen is None:
            return False
        if getattr(seen, "sqlstate", None) == _UNSTORABLE_TEXT_SQLSTATE:
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__
    return False


def bearer_token(value: str) -> str | None:
    """The token of an authorization value of the Bearer scheme, if it is one."""
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


# Health, and reflection under every version tools ask for (grpc.reflection.v1, v1alpha).
_PLUMBING_PREFIXES = ("/grpc.health.", "/grpc.reflection.")


class AuthInterceptor(UnaryInterceptor):
    """Verifies the bearer token of every call; only public methods go without one.

    Services verify again what the gateway verified: no call is trusted for where it came from.
    """

    def __init__(self, verifier: TokenVerifier | None, public_methods: Collection[str]) -> None:
        self.verifier = verifier
        self.public_methods = frozenset(public_methods)

    def _is_public(self, method: str) -> bool:
        # Probes and operators' tools must work without a token.
        return method.startswith(_PLUMBING_PREFIXES) or method in self.public_methods

    def intercept_streaming(self, handler: Handler | None, method: str) -> Handler | None:
        # Only the public plumbing (health, reflection) streams; anything else would bypass auth.
        if method.startswith(_PLUMBING_PREFIXES) or method in self.public_methods:
            return handler
        return None  # grpc answers UNIMPLEMENTED

    async def around(
        self,
        method: str,
        request: Any,
        context: grpc.aio.ServicerContext[Any, Any],
        call_next: Behavior,
    ) -> Any:
        token = bearer_token(_metadata_value(context, AUTHORIZATION_HEADER) or "")
        if token is None:
            if self._is_public(method):
                return await call_next(request, context)
            raise Unauthenticated("This call needs a bearer token in the authorization metadata.")
        if self.verifier is None:
            raise Unauthenticated("This service cannot verify tokens.")
        reset = principal_var.set(await self.verifier.verify(token))
        try:
            return await call_next(request, context)
        finally:
            principal_var.reset(reset)
