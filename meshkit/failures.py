"""Which failures are a dependency being down, not the work being wrong.

A handler that fails because a service, the database or the broker is unreachable will
succeed once it is back: it is retried for as long as an outage may last, and must not spend
the few attempts a poison message is given. Anything else is the work itself failing.
"""

from __future__ import annotations

import grpc

from meshkit.errors import DeadlineExceeded, Unavailable

# gRPC codes that say the callee could not be reached or did not answer in time.
_UNREACHABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
# SQLSTATE classes of a connection lost or refused (08), or of a server shutting down or
# starting up (57P01-57P03), and of too many connections (53300).
_POSTGRES_OUTAGES = ("08", "57P01", "57P02", "57P03", "53300")


def dependency_down(error: BaseException) -> bool:
    """Whether `error`, or an error it was raised from, says a dependency is unreachable."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _says_down(current):
            return True
        # SQLAlchemy keeps the driver's error as `orig`, as well as raising from it.
        current = current.__cause__ or getattr(current, "orig", None) or current.__context__
    return False


def _says_down(error: BaseException) -> bool:
    if isinstance(error, Unavailable | DeadlineExceeded):
        return True
    if isinstance(error, grpc.aio.AioRpcError):
        return error.code() in _UNREACHABLE
    # Refused, reset or timed out sockets: the database's, the broker's, Redis's, SMTP's.
    if isinstance(error, OSError | TimeoutError):
        return True
    return _database_down(error) or _broker_or_cache_down(error)


def _database_down(error: BaseException) -> bool:
    import asyncpg.exceptions  # type: ignore[import-untyped]
    from sqlalchemy import exc

    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, exc.DisconnectionError):
        return True
    if isinstance(
        error,
        asyncpg.exceptions.PostgresConnectionError
        | asyncpg.exceptions.ConnectionDoesNotExistError
        | asyncpg.exceptions.CannotConnectNowError,
    ):
        return True
    state = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    return isinstance(state, str) and state.startswith(_POSTGRES_OUTAGES)


def _broker_or_cache_down(error: BaseException) -> bool:
    from aiormq.exceptions import AMQPConnectionError, ChannelInvalidStateError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return isinstance(
        error,
        AMQPConnectionError | ChannelInvalidStateError | RedisConnectionError | RedisTimeoutError,
    )
