"""Which failures are a dependency being down, not the work being wrong, and whether the work
may have committed before one struck.

A handler that fails because a service, the database or the broker is unreachable will
succeed once it is back: it is retried for as long as an outage may last, and must not spend
the few attempts a poison message is given. Anything else is the work itself failing.
"""

from __future__ import annotations

import logging
import socket
from contextvars import ContextVar, Token

import grpc

from meshkit.errors import DeadlineExceeded, Unavailable

# gRPC codes that say the callee could not be reached or did not answer in time.
_UNREACHABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
# SQLSTATEs of a connection that could not be made or was lost (08000, 08001, 08003, 08004,
# 08006; not 08P01, a protocol violation, which is a bug), of a server shutting down or
# starting up (57P01-57P03), and of too many connections (53300).
_POSTGRES_OUTAGES = frozenset(
    {"08000", "08001", "08003", "08004", "08006", "57P01", "57P02", "57P03", "53300"}
)


def dependency_down(error: BaseException) -> bool:
    """Whether `error`, or an error it was raised from, says a dependency is unreachable.

    Only explicit causes are followed (`raise ... from`, and SQLAlchemy's `orig`), not the
    error being handled when another was raised: a bug in an `except ConnectionError:` block
    is a bug, not an outage.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _says_down(current):
            return True
        current = current.__cause__ or getattr(current, "orig", None)
    return False


def _says_down(error: BaseException) -> bool:
    if isinstance(error, Unavailable | DeadlineExceeded):
        return True
    if isinstance(error, grpc.aio.AioRpcError):
        return error.code() in _UNREACHABLE
    # Refused, reset or timed-out connections and names that do not resolve (a service
    # rescheduled): the database's, the broker's, Redis's, SMTP's. Not any OSError: a file
    # not found or a certificate refused will not mend by waiting.
    if isinstance(error, ConnectionError | TimeoutError | socket.gaierror):
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
        asyncpg.exceptions.ConnectionDoesNotExistError | asyncpg.exceptions.CannotConnectNowError,
    ):
        return True
    state = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    return state in _POSTGRES_OUTAGES


def _broker_or_cache_down(error: BaseException) -> bool:
    from aiormq.exceptions import AMQPConnectionError, ChannelInvalidStateError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return isinstance(
        error,
        AMQPConnectionError | ChannelInvalidStateError | RedisConnectionError | RedisTimeoutError,
    )


class _Work:
    """One call's or delivery's work: whether it has asked its database to commit, after
    which a lost connection leaves the outcome unknown (the commit may have happened)."""

    __slots__ = ("commit_attempted",)

    def __init__(self) -> None:
        self.commit_attempted = False


# Shared, not copied, with the tasks the work starts (a shielded save runs in one): they
# see the same object, so a commit asked for in one is known to the call.
_work: ContextVar[_Work | None] = ContextVar("work", default=None)


def begin_work() -> Token[_Work | None]:
    """Start a call's or delivery's work; `end_work` with the token when it is over."""
    return _work.set(_Work())


def end_work(token: Token[_Work | None]) -> None:
    _work.reset(token)


def mark_commit_attempted() -> None:
    """Said by a unit of work just before it asks the database to commit."""
    work = _work.get()
    if work is not None:
        work.commit_attempted = True


def commit_attempted() -> bool:
    """Whether the current work has asked its database to commit."""
    work = _work.get()
    return work is not None and work.commit_attempted


class FailureStreak:
    """Failures in a row of something retried until it works (a relay, a mailer, an
    announcement): each is worth a warning at the 1st, 2nd, 4th, 8th... of the streak and a
    debug line otherwise, so that an outage is a few lines, not one a retry, and a failure
    that lasts still says so now and then."""

    def __init__(self) -> None:
        self.count = 0

    def failed(self) -> int:
        """Count one more failure; the level to log it at."""
        self.count += 1
        return logging.WARNING if self.count & (self.count - 1) == 0 else logging.DEBUG

    def ended(self) -> int:
        """It worked: how many failures the streak had (0 when there was none)."""
        count, self.count = self.count, 0
        return count
