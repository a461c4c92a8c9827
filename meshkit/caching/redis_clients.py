"""Redis clients for what must never wait long on Redis: caches and announcements."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff


def connect_redis(url: str, timeout_seconds: float) -> Redis:
    """A client that gives up after `timeout_seconds` and never retries on its own."""
    return Redis.from_url(
        url,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        # Callers decide when to try again (a breaker, the next write): a retry would double
        # every timeout.
        retry=Retry(NoBackoff(), 0),
    )


def connect_subscriber(url: str, connect_timeout_seconds: float = 1.0) -> Redis:
    """A client for one subscription (which holds its connection): no read timeout, since it
    waits for messages, and no retries, so that a lost connection surfaces as an error
    instead of a silent reconnection after which missed messages go unnoticed."""
    return Redis.from_url(
        url, socket_connect_timeout=connect_timeout_seconds, retry=Retry(NoBackoff(), 0)
    )
