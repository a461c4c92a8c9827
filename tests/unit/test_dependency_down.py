"""Which failures say a dependency is down (retried through an outage) and which say the
work itself failed (a few deliveries, then the dead-letter queue)."""

from __future__ import annotations

import asyncpg  # type: ignore[import-untyped]
import grpc
import pytest
from aiormq.exceptions import AMQPConnectionError
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import OperationalError

from meshkit.errors import DeadlineExceeded, FailedPrecondition, InvalidArgument, Unavailable
from meshkit.failures import dependency_down


def rpc_error(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), "x", None)


def raised_from(
    error: BaseException, cause: BaseException | None, handled: BaseException | None = None
) -> BaseException:
    """`error` raised from `cause` (`from None` when None), while handling `handled`."""
    try:
        try:
            if handled is not None:
                raise handled
        finally:
            raise error from cause
    except BaseException as chained:
        return chained


def raised_while_handling(error: BaseException, handled: BaseException) -> BaseException:
    """`error` raised in an `except` block handling `handled`: chained implicitly."""
    try:
        try:
            raise handled
        except BaseException:
            raise error  # noqa: B904 - the implicit chaining is the point
    except BaseException as chained:
        return chained


def lost_connection() -> OperationalError:
    error = OperationalError("SELECT 1", {}, ConnectionResetError("reset by peer"))
    error.connection_invalidated = True
    return error


@pytest.mark.parametrize(
    "error",
    [
        Unavailable("The product service is unavailable right now."),
        DeadlineExceeded("too slow"),
        rpc_error(grpc.StatusCode.UNAVAILABLE),
        rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED),
        ConnectionRefusedError(111, "refused"),
        TimeoutError(),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        lost_connection(),
        AMQPConnectionError("broker gone"),
        RedisConnectionError("redis gone"),
        raised_from(
            RuntimeError("the handler's own words"), ConnectionRefusedError(111, "refused")
        ),
    ],
    ids=lambda error: type(error).__name__,
)
def test_a_dependency_out_of_reach_is_an_outage(error: BaseException) -> None:
    assert dependency_down(error)


@pytest.mark.parametrize(
    "error",
    [
        ValueError("bad"),
        InvalidArgument("no such field"),
        FailedPrecondition("order not pending"),
        rpc_error(grpc.StatusCode.INVALID_ARGUMENT),
        rpc_error(grpc.StatusCode.INTERNAL),
        asyncpg.exceptions.UniqueViolationError("duplicate key"),
        asyncpg.exceptions.ProtocolViolationError("08P01: a bug, not an outage"),
        raised_from(KeyError("x"), ValueError("y")),
        FileNotFoundError(2, "no such file"),
        PermissionError(13, "denied"),
        raised_while_handling(KeyError("a bug in the handler"), ConnectionResetError()),
        raised_from(KeyError("told: not from it"), None, ConnectionResetError()),
    ],
    ids=lambda error: type(error).__name__,
)
def test_the_work_failing_is_not_an_outage(error: BaseException) -> None:
    assert not dependency_down(error)
