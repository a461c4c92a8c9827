"""The product service's in-process tier over the Redis catalog cache.

A product read from Redis costs this process more than the rest of the call together (two
round trips through redis-py); hot products and listings are therefore also kept here, as
the bytes Redis holds, in an `InvalidatedCache` that every invalidation the Redis tier
makes (`RedisCatalogCache`) reaches through Redis pub/sub: a replica serves what another one
changed no longer than the message takes. `meshkit.caching.invalidated_cache` says what keeps it
exact.

An entry read in the `ttl` after its lifetime is answered once more while it is read again
from Redis in the background (one read per entry at a time), and replaced, or dropped when
Redis no longer holds it (the next read then goes to the database); one read later than that
is dropped and read in the request. A message lost unnoticed is thus served for at most
twice `ttl`.

Reads therefore never wait for Redis on an entry this tier holds. They did when an expired
entry was dropped and read again in the request: in the benchmark, Redis, sharing two busy
cores with the mesh, sometimes stalled just as the hot products' entries expired, and the
reads of that moment were many times slower in their tail than the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable

from prometheus_client import Counter
from redis.asyncio import Redis

from meshkit.caching import invalidation
from meshkit.caching.invalidated_cache import EXPIRY_SPREAD, InvalidatedCache
from product_service.cache.base import CacheEntry
from product_service.cache.breaker import Clock
from product_service.cache.redis_tier import RedisCatalogCache

# The logger keeps the name it had before the package, so log filters still match it.
logger = logging.getLogger("product_service.near_cache")

NEAR_HITS = Counter(
    "catalog_near_cache_hits_total",
    "Catalog reads answered from the in-process tier, without Redis.",
    ["kind"],
)
NEAR_REFRESHES = Counter(
    "catalog_near_cache_refreshes_total",
    "Entries of the in-process tier read again from Redis in the background, past their lifetime.",
    ["kind"],
)


class NearCache:
    """An `InvalidatedCache` in front of a `RedisCatalogCache`, filled from it: a product's
    entry in the product's group, every listing in the group `LISTINGS`."""

    def __init__(
        self,
        inner: RedisCatalogCache,
        subscriber: Redis,
        *,
        ttl: float,
        max_bytes: int,
        clock: Clock = time.monotonic,
        spread: float = EXPIRY_SPREAD,
        uniform: Callable[[], float] = random.random,
    ) -> None:
        self.inner = inner
        self.tier = InvalidatedCache(
            subscriber,
            inner.invalidation_channel,
            invalidation.catalog_groups,
            ttl=ttl,
            max_bytes=max_bytes,
            clock=clock,
            spread=spread,
            uniform=uniform,
            name="catalog in-process cache",
        )
        # Entries past their lifetime being read again, and the tasks reading them.
        self._refreshing: set[tuple[str, str]] = set()
        self._refreshes: set[asyncio.Task[None]] = set()
        # The hit counters' series, kept: `labels()` validates and locks on every call, and a
        # hit is the catalog's busiest path.
        self._hits = {kind: NEAR_HITS.labels(kind) for kind in ("product", "listing")}

    # --- life cycle ----------------------------------------------------------------------

    def start(self) -> None:
        self.tier.start()

    async def aclose(self) -> None:
        for task in list(self._refreshes):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.tier.aclose()

    @property
    def live(self) -> bool:
        return self.tier.live

    async def wait_live(self, timeout: float) -> None:
        """Until the subscription is confirmed (for tests and start-up)."""
        await self.tier.wait_live(timeout)

    async def refreshed(self) -> None:
        """Until the entries being read again in the background are (for tests)."""
        while self._refreshes:
            await asyncio.wait(set(self._refreshes))

    # --- reads ---------------------------------------------------------------------------

    async def product(self, product_id: str) -> CacheEntry:
        group = invalidation.product_group(product_id)
        return await self._read("product", group, "", self.inner.product, product_id)

    async def listing(self, key: str) -> CacheEntry:
        return await self._read("listing", invalidation.LISTINGS, key, self.inner.listing, key)

    async def _read(
        self,
        kind: str,
        group: str,
        key: str,
        lookup: Callable[[str], Awaitable[CacheEntry]],
        inner_key: str,
    ) -> CacheEntry:
        found = self.tier.get(group, key)
        if found is not None:
            value, expired = found
            if expired and (group, key) not in self._refreshing:
                self._refresh(kind, group, key, lambda: lookup(inner_key))
            self._hits[kind].inc()
            return CacheEntry(value)
        mark = self.tier.mark()
        entry = await lookup(inner_key)
        if entry.value is not None:
            self.tier.put(group, key, entry.value, mark)
            return entry

        async def store(data: bytes) -> None:
            await entry.store(data)
            self.tier.put(group, key, data, mark)

        return CacheEntry(None, store)

    def _refresh(
        self, kind: str, group: str, key: str, lookup: Callable[[], Awaitable[CacheEntry]]
    ) -> None:
        self._refreshing.add((group, key))
        NEAR_REFRESHES.labels(kind).inc()
        task = asyncio.create_task(self._read_again(group, key, lookup))
        self._refreshes.add(task)
        task.add_done_callback(self._refreshes.discard)

    async def _read_again(
        self, group: str, key: str, lookup: Callable[[], Awaitable[CacheEntry]]
    ) -> None:
        mark = self.tier.mark()
        try:
            entry = await lookup()
        except Exception:
            logger.exception("reading a catalog entry again from Redis failed")
            entry = CacheEntry(None)
        finally:
            self._refreshing.discard((group, key))
        if entry.value is None or not self.tier.put(group, key, entry.value, mark):
            # Gone from Redis (or Redis failed): the next read goes to the database. Or
            # refused (a message came meanwhile): the old entry goes too, or every read until
            # its end would start another refresh.
            self.tier.drop(group, key)

    # --- invalidation --------------------------------------------------------------------

    async def product_changed(self, product_id: str, *, listings: bool = True) -> None:
        # Here at once (read-your-writes on this replica), everywhere through Redis.
        group = invalidation.product_group(product_id)
        self.tier.forget(*((group, invalidation.LISTINGS) if listings else (group,)))
        await self.inner.product_changed(product_id, listings=listings)

    async def listings_changed(self) -> None:
        self.tier.forget(invalidation.LISTINGS)
        await self.inner.listings_changed()
