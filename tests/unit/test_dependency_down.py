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


def raised_from(error: BaseException, cause: BaseException) -> BaseException:
    try:
        raise error from cause
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
        raised_from(RuntimeError("the handler's own words"), OSError("network unreachable")),
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
        raised_from(KeyError("x"), ValueError("y")),
    ],
    ids=lambda error: type(error).__name__,
)
def test_the_work_failing_is_not_an_outage(error: BaseException) -> None:
    assert not dependency_down(error)
