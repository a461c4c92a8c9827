"""Per-client limits on login attempts and writes, counted in Redis or in this process."""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Protocol

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.problems import problem
from gateway.settings import GatewaySettings
from meshkit.errors import ResourceExhausted

logger = logging.getLogger(__name__)

# Wall time by default, not monotonic: replicas sharing Redis compare each other's windows.
Clock = Callable[[], float]

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOGIN_PATH = "/v1/auth/login"

# Counting must not hold a request up: a Redis that does not answer within this is down.
REDIS_TIMEOUT_SECONDS = 0.25
# After a Redis failure, count in memory for this long instead of paying the timeout per request.
REDIS_RETRY_AFTER_SECONDS = 5.0
REDIS_WARNING_INTERVAL_SECONDS = 60.0

# Redis numbers in Lua are doubles but replies truncate them to integers, so the window's end
# travels as the string Python sent.
_HIT_SCRIPT = """
local resets_at = redis.call('HGET', KEYS[1], 'resets_at')
if not resets_at or tonumber(ARGV[1]) >= tonumber(resets_at) then
  resets_at = ARGV[2]
  redis.call('HSET', KEYS[1], 'resets_at', resets_at, 'count', 0)
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return {redis.call('HINCRBY', KEYS[1], 'count', 1), resets_at}
"""


class RateLimited(ResourceExhausted):
    """The client made more requests than its limit allows in the window."""

    reason = "RATE_LIMITED"


@dataclass(frozen=True, slots=True)
class WindowCount:
    """Hits a key has in its current window (this one included), and when the window ends."""

    count: int
    resets_at: float


@dataclass(frozen=True, slots=True)
class Limit:
    requests: int
    window_seconds: float


class Counters(Protocol):
    """Fixed windows of hits per key; a key's window opens at its first hit."""

    async def hit(self, key: str, window: float, now: float) -> WindowCount: ...

    async def close(self) -> None: ...


class MemoryCounters:
    """Counters of this process only: each gateway replica limits on its own."""

    def __init__(self, max_keys: int = 100_000, sweep_interval: float = 10.0) -> None:
        self._windows: dict[str, tuple[float, int]] = {}
        self._max_keys = max_keys
        self._sweep_interval = sweep_interval
        self._next_sweep = -math.inf

    async def hit(self, key: str, window: float, now: float) -> WindowCount:
        if now >= self._next_sweep or len(self._windows) >= self._max_keys:
            self._sweep(now)
        resets_at, count = self._windows.get(key, (now, 0))
        if now >= resets_at:
            resets_at, count = now + window, 0
        count += 1
        self._windows[key] = (resets_at, count)
        return WindowCount(count, resets_at)

    def __len__(self) -> int:
        """Windows held, open or not yet swept."""
        return len(self._windows)

    async def close(self) -> None:
        self._windows.clear()

    def _sweep(self, now: float) -> None:
        self._windows = {key: entry for key, entry in self._windows.items() if entry[0] > now}
        # Clients choose the keys (addresses, emails): past the cap, forgetting the oldest
        # windows is better than memory without bound.
        excess = len(self._windows) - self._max_keys * 9 // 10
        for key in list(itertools.islice(self._windows, max(0, excess))):
            del self._windows[key]
        self._next_sweep = now + self._sweep_interval


class RedisCounters:
    """Counters in Redis, shared by every gateway replica; memory takes over while it is down."""

    def __init__(
        self, client: redis.Redis, fallback: MemoryCounters, *, prefix: str = "ratelimit:"
    ) -> None:
        self._client = client
        self._script = client.register_script(_HIT_SCRIPT)
        self._fallback = fallback
        self._prefix = prefix
        self._skip_until = -math.inf
        self._warned_at = -math.inf

    @classmethod
    def from_url(cls, url: str, fallback: MemoryCounters) -> RedisCounters:
        client = redis.Redis.from_url(
            url,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            # The fallback is the retry: retries with backoff would hold the request for seconds.
            retry=Retry(NoBackoff(), 0),
        )
        return cls(client, fallback)

    async def hit(self, key: str, window: float, now: float) -> WindowCount:
        if time.monotonic() >= self._skip_until:
            try:
                reply: Any = await self._script(
                    keys=[self._prefix + key],
                    args=[repr(now), repr(now + window), max(1, math.ceil(window * 1000))],
                )
                count, resets_at = reply
                return WindowCount(int(count), float(resets_at))
            except (RedisError, OSError) as exc:
                self._redis_failed(exc)
        return await self._fallback.hit(key, window, now)

    async def close(self) -> None:
        await self._client.aclose()
        await self._fallback.close()

    def _redis_failed(self, exc: Exception) -> None:
        now = time.monotonic()
        self._skip_until = now + REDIS_RETRY_AFTER_SECONDS
        if now - self._warned_at >= REDIS_WARNING_INTERVAL_SECONDS:
            self._warned_at = now
            logger.warning(
                "Redis is unavailable for rate limits (%s: %s); counting in memory",
                type(exc).__name__,
                exc,
            )


def _seconds_until(resets_at: float, now: float) -> int:
    # Rounding down would tell the client to come back while the window is still open.
    return max(1, math.ceil(resets_at - now))


class RateLimits:
    """The gateway's limits: login attempts per client and per account, writes per client."""

    def __init__(
        self,
        counters: Counters,
        *,
        login_per_client: Limit,
        login_per_account: Limit,
        writes_per_client: Limit,
        clock: Clock = time.time,
    ) -> None:
        self._counters = counters
        self.login_per_client = login_per_client
        self.login_per_account = login_per_account
        self.writes_per_client = writes_per_client
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: GatewaySettings, *, clock: Clock = time.time) -> RateLimits:
        memory = MemoryCounters()
        counters: Counters = (
            RedisCounters.from_url(settings.redis_url, memory) if settings.redis_url else memory
        )
        login_window = settings.login_window_seconds
        return cls(
            counters,
            login_per_client=Limit(settings.login_limit_per_client, login_window),
            login_per_account=Limit(settings.login_limit_per_account, login_window),
            writes_per_client=Limit(settings.write_limit_per_client, settings.write_window_seconds),
            clock=clock,
        )

    async def check_login(self, client: str, account: str) -> None:
        """Count one login attempt; ResourceExhausted when the client or the account is over."""
        now = self._clock()
        by_client, by_account = await asyncio.gather(
            self._counters.hit(f"login:client:{client}", self.login_per_client.window_seconds, now),
            self._counters.hit(
                f"login:account:{account.strip().lower()}",
                self.login_per_account.window_seconds,
                now,
            ),
        )
        over = [
            window.resets_at
            for window, limit in (
                (by_client, self.login_per_client),
                (by_account, self.login_per_account),
            )
            if window.count > limit.requests
        ]
        if over:
            raise RateLimited(
                "Too many login attempts; retry later.",
                retry_after=_seconds_until(max(over), now),
            )

    async def check_write(self, client: str) -> None:
        """Count one write; ResourceExhausted when the client is over."""
        now = self._clock()
        limit = self.writes_per_client
        window = await self._counters.hit(f"write:client:{client}", limit.window_seconds, now)
        if window.count > limit.requests:
            raise RateLimited(
                "Too many write requests; retry later.",
                retry_after=_seconds_until(window.resets_at, now),
            )

    async def close(self) -> None:
        await self._counters.close()


class WriteRateLimitMiddleware:
    """Answers 429 to a client past its limit of writes under /v1/, before the app runs."""

    def __init__(
        self, app: ASGIApp, limits: RateLimits, exempt: Collection[str] = (LOGIN_PATH,)
    ) -> None:
        self.app = app
        self.limits = limits
        # Paths with a limit of their own, which would otherwise be counted twice.
        self.exempt = frozenset(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in WRITE_METHODS
            and scope["path"].startswith("/v1/")
            and scope["path"] not in self.exempt
        ):
            client = scope.get("client")
            try:
                await self.limits.check_write(client[0] if client else "unknown")
            except ResourceExhausted as exc:
                retry_after = str(math.ceil(exc.retry_after or 1))
                response = problem(
                    429, exc.message, reason=exc.reason, headers={"Retry-After": retry_after}
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
