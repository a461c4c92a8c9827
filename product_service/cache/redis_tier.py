"""The Redis cache of product reads and listings: invalidated by generations, never fatal.

Entries are named by generation counters instead of being deleted: a write to a product
replaces that product's generation, and any catalog write bumps the listing generation, so
every affected entry is unreachable at once with no SCAN or KEYS; unreachable entries expire
by their TTL. A reader takes the generations *before* reading the database and stores under
them, so a write that commits meanwhile leaves that store unreachable instead of stale.

Redis is an optimization only: when it fails or is slow, reads go to the database, a
warning is logged at most every so often, and a circuit breaker leaves Redis alone for a
while, longer while it stays down, so a dead Redis does not add a timeout to every request.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from meshkit.caching import invalidation
from meshkit.shielding import finish
from product_service.cache.base import CacheEntry
from product_service.cache.breaker import CircuitBreaker

# The logger keeps the name it had before the package, so log filters still match it.
logger = logging.getLogger("product_service.cache")

CacheKind = Literal["product", "listing"]
T = TypeVar("T")

CACHE_HITS = Counter(
    "catalog_cache_hits_total", "Catalog reads answered from the Redis cache.", ["kind"]
)
CACHE_MISSES = Counter(
    "catalog_cache_misses_total", "Catalog reads the Redis cache did not hold.", ["kind"]
)
CACHE_BYPASSED = Counter(
    "catalog_cache_bypassed_total",
    "Catalog reads that went to the database because Redis failed or was skipped.",
    ["kind"],
)

DEFAULT_PREFIX = invalidation.CATALOG_PREFIX
# Warnings about an unavailable cache: at most one per this many seconds.
WARNING_INTERVAL_SECONDS = 30.0


class _Failed:
    """The result of a cache call that failed or was skipped."""


_FAILED = _Failed()


def _text(value: bytes | str | None) -> str:
    if isinstance(value, bytes):
        return value.decode()
    return value or "0"


def _bytes(value: bytes | str | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value


class RedisCatalogCache:
    def __init__(
        self,
        redis: Redis,
        *,
        product_ttl: int,
        listing_ttl: int,
        popular_ttl: int,
        popular_reads: int,
        timeout_seconds: float,
        breaker: CircuitBreaker,
        prefix: str = DEFAULT_PREFIX,
        warning_interval: float = WARNING_INTERVAL_SECONDS,
    ) -> None:
        self.redis = redis
        self.product_ttl = product_ttl
        self.listing_ttl = listing_ttl
        self.popular_ttl = popular_ttl
        self.popular_reads = popular_reads
        self.timeout = timeout_seconds
        self.breaker = breaker
        self.prefix = prefix
        self.warning_interval = warning_interval
        # A product's generation key must outlive any entry stored under it; see module doc.
        self.generation_ttl = 2 * max(product_ttl, popular_ttl, listing_ttl)
        self._epoch_key = f"{prefix}epoch"
        self._listings_key = f"{prefix}listings:generation"
        # Every invalidation is also published here, for the replicas' in-process tiers.
        self.invalidation_channel = invalidation.catalog_channel(
            int(redis.connection_pool.connection_kwargs.get("db", 0)), prefix
        )
        # Invalidations that could not reach Redis, and how many of them a bump of the epoch
        # (part of every key) and an ALL made up for since: entries stored before a miss may
        # be stale. Counted, not flagged: a miss during another call's catch-up needs its own.
        self._misses = 0
        self._covered = 0
        self._last_warning = float("-inf")
        self._suppressed_warnings = 0

    # --- reads -------------------------------------------------------------------------

    async def product(self, product_id: str) -> CacheEntry:
        generation_key = f"{self.prefix}product:{product_id}:generation"
        reads_key = f"{self.prefix}product:{product_id}:reads"

        async def look_up() -> tuple[str, int, bytes | None]:
            pipe = self.redis.pipeline(transaction=False)
            pipe.mget(self._epoch_key, generation_key)
            pipe.incr(reads_key)
            # Reads are counted per window of one normal TTL.
            pipe.expire(reads_key, self.product_ttl, nx=True)
            (epoch, generation), reads, _ = await pipe.execute()
            key = f"{self.prefix}product:{product_id}:{_text(epoch)}:{_text(generation)}"
            value = _bytes(await self.redis.get(key))
            if value is not None and reads == self.popular_reads + 1:
                # Just became popular: keep the entry longer from now on.
                await self.redis.expire(key, self.popular_ttl)
            return key, int(reads), value

        outcome = await self._call("product", look_up)
        if isinstance(outcome, _Failed):
            return CacheEntry(None)
        key, reads, value = outcome
        ttl = self.popular_ttl if reads > self.popular_reads else self.product_ttl
        return self._entry("product", key, value, ttl)

    async def listing(self, key: str) -> CacheEntry:
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]

        async def look_up() -> tuple[str, bytes | None]:
            epoch, generation = await self.redis.mget(self._epoch_key, self._listings_key)
            entry_key = f"{self.prefix}listing:{_text(epoch)}:{_text(generation)}:{digest}"
            return entry_key, _bytes(await self.redis.get(entry_key))

        outcome = await self._call("listing", look_up)
        if isinstance(outcome, _Failed):
            return CacheEntry(None)
        entry_key, value = outcome
        return self._entry("listing", entry_key, value, self.listing_ttl)

    def _entry(self, kind: CacheKind, key: str, value: bytes | None, ttl: int) -> CacheEntry:
        if value is not None:
            CACHE_HITS.labels(kind).inc()
            logger.debug("catalog cache hit", extra={"kind": kind, "key": key})
            return CacheEntry(value)
        CACHE_MISSES.labels(kind).inc()
        logger.debug("catalog cache miss", extra={"kind": kind, "key": key})

        async def store(data: bytes) -> None:
            async def put() -> None:
                await self.redis.set(key, data, ex=ttl)

            await self._call(kind, put, count_bypass=False)

        return CacheEntry(None, store)

    # --- invalidation --------------------------------------------------------------------

    async def product_changed(self, product_id: str, *, listings: bool = True) -> None:
        """Make the product's entry unreachable, and every listing's when `listings`."""

        async def bump() -> None:
            pipe = self.redis.pipeline(transaction=False)
            # A random generation cannot repeat an earlier one, even after its key expired.
            pipe.set(
                f"{self.prefix}product:{product_id}:generation",
                secrets.token_hex(8),
                ex=self.generation_ttl,
            )
            if listings:
                pipe.incr(self._listings_key)
            pipe.publish(
                self.invalidation_channel,
                invalidation.product_changed(product_id, listings=listings),
            )
            await pipe.execute()

        await self._invalidate(bump)

    async def listings_changed(self) -> None:
        async def bump() -> None:
            pipe = self.redis.pipeline(transaction=False)
            pipe.incr(self._listings_key)
            pipe.publish(self.invalidation_channel, invalidation.LISTINGS)
            await pipe.execute()

        await self._invalidate(bump)

    async def heartbeat(self) -> None:
        """Say that this replica's changes are announced (`meshkit.caching.announcer`), once an
        invalidation that could not reach Redis is made up for (`_call`). Nothing while the
        breaker leaves Redis alone: the caches that must hear a writer then turn off."""

        async def beat() -> None:
            await self.redis.publish(self.invalidation_channel, invalidation.HEARTBEAT)

        await self._call(None, beat, count_bypass=False)

    async def _invalidate(self, bump: Callable[[], Awaitable[None]]) -> None:
        # After the write's commit: finished even if the request is cancelled meanwhile.
        await finish(self._invalidate_now(bump))

    async def _invalidate_now(self, bump: Callable[[], Awaitable[None]]) -> None:
        try:
            outcome = await self._call(None, bump, count_bypass=False)
        except BaseException:
            self._misses += 1
            raise
        if isinstance(outcome, _Failed):
            self._misses += 1

    # --- resilience --------------------------------------------------------------------

    async def _call(
        self,
        kind: CacheKind | None,
        operation: Callable[[], Awaitable[T]],
        *,
        count_bypass: bool = True,
    ) -> T | _Failed:
        """Run a Redis operation within the timeout, or report that Redis is not usable."""
        if not self.breaker.allow():
            if kind is not None and count_bypass:
                CACHE_BYPASSED.labels(kind).inc()
            return _FAILED
        try:
            async with asyncio.timeout(self.timeout):
                misses = self._misses
                if misses != self._covered:
                    pipe = self.redis.pipeline(transaction=False)
                    pipe.incr(self._epoch_key)
                    pipe.publish(self.invalidation_channel, invalidation.ALL)
                    await pipe.execute()
                    self._covered = max(self._covered, misses)
                result = await operation()
        except (RedisError, OSError, TimeoutError) as error:
            self.breaker.record_failure()
            if kind is not None and count_bypass:
                CACHE_BYPASSED.labels(kind).inc()
            self._warn(error)
            return _FAILED
        if self.breaker.record_success():
            logger.info("catalog cache is reachable again")
        return result

    def _warn(self, error: BaseException) -> None:
        now = self.breaker.clock()
        if now - self._last_warning < self.warning_interval:
            self._suppressed_warnings += 1
            return
        logger.warning(
            "catalog cache unavailable (%s); reading from the database, retrying Redis in %.1fs",
            type(error).__name__,
            self.breaker.pause,
            extra={"suppressed_warnings": self._suppressed_warnings},
        )
        self._last_warning, self._suppressed_warnings = now, 0
