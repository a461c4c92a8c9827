"""An in-process tier over the Redis catalog cache, kept exact by Redis pub/sub.

A product read from Redis costs this process more than the rest of the call together (two
round trips through redis-py); hot products and listings are therefore also kept here, as
the bytes Redis holds. Every invalidation the Redis tier makes is published on a channel
(`RedisCatalogCache`), and every replica drops what a message names as it arrives, so a
replica serves what another one changed no longer than the message takes (a millisecond
on one host).

Three rules keep it exact rather than merely short-lived:
- the tier is used only while its subscription is confirmed and heard from; losing it (or
  not hearing a ping's answer in time) empties the tier and sends reads to Redis until a new
  subscription is confirmed, which empties it again (messages were missed in between);
- a value read from Redis or the database is kept only if no invalidation arrived while it
  was being read: otherwise it may predate a write whose message was already applied;
- entries also live `ttl` seconds at most, a bound should a message ever be lost unnoticed:
  an entry read in the `ttl` after its lifetime is answered once more while it is read
  again from Redis in the background (one read per entry at a time), and replaced, or
  dropped when Redis no longer holds it (the next read then goes to the database); one read
  later than that is dropped and read in the request. A message lost unnoticed is thus
  served for at most twice `ttl`.

Reads therefore never wait for Redis on an entry this tier holds. They did when an expired
entry was dropped and read again in the request: in the benchmark, Redis, sharing two busy
cores with the mesh, sometimes answered nothing for 0.1-0.5 s just as the hot products'
entries expired, and the slice then measured had a p99 of 100-430 ms against ~20 ms.

Each entry's lifetime is drawn between `(1 - spread) * ttl` and `ttl`: entries filled
together (at start-up, after a lost subscription, by a burst of new traffic) would otherwise
all be read again from Redis at once. In the benchmark, the 1,000 products read in its
warm-up all expired a minute later: the slice then measured lost 12-16% of its throughput,
and the scenario's p99 was 58-69 ms (40-44 ms with lifetimes spread).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from product_service.cache import CacheEntry, Clock, RedisCatalogCache
from product_service.invalidation import ALL, LISTINGS, decode

logger = logging.getLogger(__name__)

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

# How often the subscription is pinged when quiet, and how long without any answer means
# the connection is dead although no error says so.
PING_INTERVAL_SECONDS = 1.0
SILENCE_LIMIT_SECONDS = 3.0
RESUBSCRIBE_AFTER_SECONDS = 1.0
# The share of `ttl` by which entries' lifetimes differ, so that they do not expire together.
EXPIRY_SPREAD = 0.2

_PRODUCT, _LISTING = "product:", "listing:"


class NearCache:
    """A byte-bounded LRU of catalog entries in front of a `RedisCatalogCache`."""

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
        self.subscriber = subscriber
        self.ttl = ttl
        self.max_bytes = max_bytes
        self.clock = clock
        self.spread = spread
        self.uniform = uniform  # in [0, 1)
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._bytes = 0
        # Listings are all forgotten at once, often (any catalog write, any sell-out): kept
        # apart so that costs their number, not the number of entries.
        self._listing_keys: set[str] = set()
        # Counts every invalidation applied: a read that saw it change keeps nothing.
        self._invalidations = 0
        self._live = False
        self._task: asyncio.Task[None] | None = None
        self._confirmed = asyncio.Event()
        # Entries past their lifetime being read again, and the tasks reading them.
        self._refreshing: set[str] = set()
        self._refreshes: set[asyncio.Task[None]] = set()
        # The hit counters' series, kept: `labels()` validates and locks on every call, and a
        # hit is the catalog's busiest path.
        self._hits = {kind: NEAR_HITS.labels(kind) for kind in ("product", "listing")}

    # --- life cycle ----------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="catalog-near-cache")

    async def aclose(self) -> None:
        for task in (self._task, *self._refreshes):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._go_dark()
        await self.subscriber.aclose()

    @property
    def live(self) -> bool:
        return self._live

    async def wait_live(self, timeout: float) -> None:
        """Until the subscription is confirmed (for tests and start-up)."""
        await asyncio.wait_for(self._confirmed.wait(), timeout)

    async def refreshed(self) -> None:
        """Until the entries being read again in the background are (for tests)."""
        while self._refreshes:
            await asyncio.wait(set(self._refreshes))

    # --- reads ---------------------------------------------------------------------------

    async def product(self, product_id: str) -> CacheEntry:
        return await self._read(_PRODUCT + product_id, "product", self.inner.product, product_id)

    async def listing(self, key: str) -> CacheEntry:
        return await self._read(_LISTING + key, "listing", self.inner.listing, key)

    async def _read(
        self,
        local_key: str,
        kind: str,
        lookup: Callable[[str], Awaitable[CacheEntry]],
        key: str,
    ) -> CacheEntry:
        found = self._get(local_key)
        if found is not None:
            value, expired = found
            if expired and local_key not in self._refreshing:
                self._refresh(local_key, kind, lookup, key)
            self._hits[kind].inc()
            return CacheEntry(value)
        seen = self._invalidations
        entry = await lookup(key)
        if entry.value is not None:
            self._put(local_key, entry.value, seen)
            return entry

        async def store(data: bytes) -> None:
            await entry.store(data)
            self._put(local_key, data, seen)

        return CacheEntry(None, store)

    def _get(self, key: str) -> tuple[bytes, bool] | None:
        """The entry's value, and whether it is past its lifetime."""
        if not self._live:
            return None
        found = self._entries.get(key)
        if found is None:
            return None
        expires, value = found
        now = self.clock()
        if now >= expires + self.ttl:
            # Not read for a lifetime past its own: read it in the request, as a new one.
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return value, now >= expires

    def _refresh(
        self,
        local_key: str,
        kind: str,
        lookup: Callable[[str], Awaitable[CacheEntry]],
        key: str,
    ) -> None:
        self._refreshing.add(local_key)
        NEAR_REFRESHES.labels(kind).inc()
        task = asyncio.create_task(self._read_again(local_key, lookup, key))
        self._refreshes.add(task)
        task.add_done_callback(self._refreshes.discard)

    async def _read_again(
        self, local_key: str, lookup: Callable[[str], Awaitable[CacheEntry]], key: str
    ) -> None:
        seen = self._invalidations
        try:
            entry = await lookup(key)
        except Exception:
            logger.exception("reading a catalog entry again from Redis failed")
            entry = CacheEntry(None)
        finally:
            self._refreshing.discard(local_key)
        if entry.value is not None:
            self._put(local_key, entry.value, seen)
        else:
            # Gone from Redis (or Redis failed): the next read goes to the database.
            self._drop(local_key)

    def _put(self, key: str, value: bytes, seen: int) -> None:
        if not self._live or seen != self._invalidations or len(value) > self.max_bytes:
            return
        self._drop(key)
        lifetime = self.ttl * (1.0 - self.spread * self.uniform())
        self._entries[key] = (self.clock() + lifetime, value)
        self._bytes += len(value)
        if key.startswith(_LISTING):
            self._listing_keys.add(key)
        while self._bytes > self.max_bytes:
            evicted_key, (_, evicted) = self._entries.popitem(last=False)
            self._bytes -= len(evicted)
            self._listing_keys.discard(evicted_key)

    def _drop(self, key: str) -> None:
        found = self._entries.pop(key, None)
        if found is not None:
            self._bytes -= len(found[1])
            self._listing_keys.discard(key)

    # --- invalidation --------------------------------------------------------------------

    async def product_changed(self, product_id: str, *, listings: bool = True) -> None:
        # Here at once (read-your-writes on this replica), everywhere through Redis.
        self._forget_product(product_id, listings=listings)
        await self.inner.product_changed(product_id, listings=listings)

    async def listings_changed(self) -> None:
        self._forget_listings()
        await self.inner.listings_changed()

    def _forget_product(self, product_id: str, *, listings: bool) -> None:
        self._invalidations += 1
        self._drop(_PRODUCT + product_id)
        if listings:
            self._forget_listings()

    def _forget_listings(self) -> None:
        self._invalidations += 1
        for key in list(self._listing_keys):
            self._drop(key)

    def _forget_all(self) -> None:
        self._invalidations += 1
        self._entries.clear()
        self._listing_keys.clear()
        self._bytes = 0

    def apply(self, message: bytes | str) -> None:
        """One invalidation message from any replica, this one included."""
        target, listings = decode(message)
        if target == ALL:
            self._forget_all()
        elif target == LISTINGS:
            self._forget_listings()
        else:
            self._forget_product(target, listings=listings)

    # --- the subscription ----------------------------------------------------------------

    def _go_dark(self) -> None:
        self._live = False
        self._confirmed.clear()
        self._forget_all()

    async def _listen(self) -> None:
        while True:
            try:
                await self._follow()
            except (RedisError, OSError, TimeoutError) as error:
                if self._live:
                    logger.warning(
                        "catalog invalidations unavailable (%s): in-process cache off",
                        type(error).__name__,
                    )
                self._go_dark()
            except Exception:
                # Whatever broke, a tier that no longer hears invalidations must not serve.
                logger.exception("catalog invalidation listener failed: in-process cache off")
                self._go_dark()
            await asyncio.sleep(RESUBSCRIBE_AFTER_SECONDS)

    async def _follow(self) -> None:
        async with self.subscriber.pubsub() as pubsub:
            await pubsub.subscribe(self.inner.invalidation_channel)
            heard = time.monotonic()
            while True:
                message = await pubsub.get_message(timeout=PING_INTERVAL_SECONDS)
                now = time.monotonic()
                if message is None:
                    if now - heard > SILENCE_LIMIT_SECONDS:
                        raise TimeoutError("no answer from Redis on the subscription")
                    await pubsub.ping()
                    continue
                heard = now
                kind = message["type"]
                if kind == "subscribe":
                    # Whatever was kept before may have missed messages: start empty.
                    self._forget_all()
                    self._live = True
                    self._confirmed.set()
                    logger.info("catalog in-process cache on")
                elif kind == "message":
                    self.apply(message["data"])
