"""A tiny raw-bytes gRPC service that exercises the runtime's interceptors."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from google.protobuf import wrappers_pb2
from sqlalchemy.exc import OperationalError

from meshkit.context import Principal, Role, current_principal, current_request_id, remaining_time
from meshkit.errors import FieldViolation, InvalidArgument, NotFound, Unauthenticated
from meshkit.failures import mark_commit_attempted
from meshkit.rpc import ServiceRegistration, create_channel

SERVICE = "test.v1.Probe"
PUBLIC_METHODS = frozenset(
    {f"/{SERVICE}/{name}" for name in ("Echo", "Fail", "Greet", "Remaining", "Slow")}
)


class StaticVerifier:
    """Accepts exactly one token: enough to test the interceptor, not token logic."""

    async def verify(self, token: str) -> Principal:
        if token != "good-token":
            raise Unauthenticated("The token is not valid.")
        return Principal(subject="user-1", role=Role.CUSTOMER, token=token)


class Probe:
    def __init__(self, downstream: str | None = None) -> None:
        self.downstream = create_channel(downstream) if downstream else None
        self.slow_started = asyncio.Event()

    async def slow(self, request: bytes, context: Any) -> bytes:
        self.slow_started.set()
        await asyncio.sleep(float(request))
        return b"done"

    async def echo(self, request: bytes, context: Any) -> bytes:
        return request

    async def fail(self, request: bytes, context: Any) -> bytes:
        if request == b"invalid":
            raise InvalidArgument(
                "The request has invalid fields.",
                [FieldViolation("email", "must be an email address")],
            )
        if request == b"missing":
            raise NotFound("No such thing.")
        if request == b"unimplemented":
            raise NotImplementedError
        if request == b"database lost":
            # What SQLAlchemy raises when PostgreSQL restarts under a transaction.
            lost = OperationalError("SELECT 1", {}, ConnectionResetError("connection reset"))
            lost.connection_invalidated = True
            raise lost
        if request == b"lost after commit":
            mark_commit_attempted()  # as a unit of work does before COMMIT
            raise ConnectionResetError("the commit's answer was lost")
        if request == b"database refused":
            raise RuntimeError("the work failed") from ConnectionRefusedError(111, "refused")
        raise RuntimeError("secret internal detail")

    async def whoami(self, request: bytes, context: Any) -> bytes:
        principal = current_principal()
        assert principal is not None
        return principal.subject.encode()

    async def remaining(self, request: bytes, context: Any) -> bytes:
        left = remaining_time()
        return b"none" if left is None else f"{left:.3f}".encode()

    async def greet(
        self, request: wrappers_pb2.StringValue, context: Any
    ) -> wrappers_pb2.StringValue:
        return wrappers_pb2.StringValue(value=f"hello {request.value}")

    async def request_id(self, request: bytes, context: Any) -> bytes:
        return (current_request_id() or "").encode()

    async def forward(self, request: bytes, context: Any) -> bytes:
        """Calls Remaining on the downstream probe: shows what deadline it inherits."""
        assert self.downstream is not None
        if request:
            await asyncio.sleep(float(request))
        call = self.downstream.unary_unary(f"/{SERVICE}/Remaining", None, None)
        response: bytes = await call(b"")
        return response


def _add(servicer: Probe, server: grpc.aio.Server) -> None:
    methods = {
        "Echo": servicer.echo,
        "Fail": servicer.fail,
        "Whoami": servicer.whoami,
        "Remaining": servicer.remaining,
        "RequestId": servicer.request_id,
        "Forward": servicer.forward,
        "Slow": servicer.slow,
    }
    handlers = {name: grpc.unary_unary_rpc_method_handler(fn) for name, fn in methods.items()}
    # A method with a message, as every method of the mesh has.
    handlers["Greet"] = grpc.unary_unary_rpc_method_handler(
        servicer.greet,
        request_deserializer=wrappers_pb2.StringValue.FromString,
        response_serializer=wrappers_pb2.StringValue.SerializeToString,
    )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


def registration(probe: Probe) -> ServiceRegistration:
    return ServiceRegistration(SERVICE, probe, _add)
