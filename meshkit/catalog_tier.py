"""An in-process tier of catalog entries, kept exact by the catalog's invalidation channel.

The product service's replicas keep hot products and listings here (the bytes Redis holds),
and the gateway keeps the answers it builds from them; each forgets what an invalidation
message names as it arrives, a millisecond after the write on one host.

Three rules keep a tier exact rather than merely short-lived:
- it is used only while its subscription is confirmed and heard from; losing it (or not
  hearing a ping's answer in time) empties the tier and turns it off until a new
  subscription is confirmed, which empties it again (messages were missed in between);
- a value read from elsewhere is kept only if no invalidation arrived while it was being
  read (`mark` before the read, `put` with the mark after): otherwise it may predate a write
  whose message was already applied. A tier that reads from other tiers (the gateway reads
  from the product service's replicas, which hear the same message a little earlier or
  later) also refuses, for `settle` seconds after a message, to keep what the message named:
  a replica that had not heard it yet may still have answered with what it held;
- entries also live `ttl` seconds at most, a bound should a message ever be lost unnoticed.
  `get` says when an entry is past its lifetime, and its owner decides what to do with it;
  one not read for a lifetime past its own is dropped and read as new.

Each entry's lifetime is drawn between `(1 - spread) * ttl` and `ttl`: entries filled
together (at start-up, after a lost subscription, by a burst of new traffic) would otherwise
all be read again at once. In the benchmark, the 1,000 products read in its warm-up all
expired a minute later: the slice then measured lost 12-16% of its throughput, and the
scenario's p99 was 58-69 ms (40-44 ms with lifetimes spread).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Literal

from redis.asyncio import Redis
from redis.exceptions import RedisError

from meshkit import catalog_invalidation

logger = logging.getLogger(__name__)

Kind = Literal["product", "listing"]

# How often the subscription is pinged when quiet, and how long without any answer means
# the connection is dead although no error says so.
PING_INTERVAL_SECONDS = 1.0
SILENCE_LIMIT_SECONDS = 3.0
RESUBSCRIBE_AFTER_SECONDS = 1.0
# The share of `ttl` by which entries' lifetimes differ, so that they do not expire together.
EXPIRY_SPREAD = 0.2

_PREFIXES: dict[Kind, str] = {"product": "product:", "listing": "listing:"}


class CatalogTier:
    """A byte-bounded LRU of catalog entries (bytes), products and listings."""

    def __init__(
        self,
        subscriber: Redis,
        *,
        ttl: float,
        max_bytes: int,
        channel: str = catalog_invalidation.channel(),
        settle: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        spread: float = EXPIRY_SPREAD,
        uniform: Callable[[], float] = random.random,
        name: str = "catalog in-process cache",
    ) -> None:
        self.subscriber = subscriber
        self.channel = channel
        self.ttl = ttl
        self.max_bytes = max_bytes
        self.settle = settle
        self.clock = clock
        self.spread = spread
        self.uniform = uniform  # in [0, 1)
        self.name = name
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._bytes = 0
        # Listings are all forgotten at once, often (any catalog write, any sell-out): kept
        # apart so that costs their number, not the number of entries.
        self._listing_keys: set[str] = set()
        # Counts every invalidation applied: a read that saw it change keeps nothing.
        self.invalidations = 0
        # When `settle` is on: when each product, all listings and everything were last
        # named by a message (products oldest first, pruned past `settle`).
        self._products_changed: OrderedDict[str, float] = OrderedDict()
        self._listings_changed = float("-inf")
        self._all_changed = float("-inf")
        self._live = False
        self._task: asyncio.Task[None] | None = None
        self._confirmed = asyncio.Event()

    # --- life cycle ----------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name=self.name)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._go_dark()
        await self.subscriber.aclose()

    @property
    def live(self) -> bool:
        return self._live

    async def wait_live(self, timeout: float) -> None:
        """Until the subscription is confirmed (for tests and start-up)."""
        await asyncio.wait_for(self._confirmed.wait(), timeout)

    # --- entries -------------------------------------------------------------------------

    def get(self, kind: Kind, key: str) -> tuple[bytes, bool] | None:
        """The entry's value, and whether it is past its lifetime; None when not held."""
        if not self._live:
            return None
        local_key = _PREFIXES[kind] + key
        found = self._entries.get(local_key)
        if found is None:
            return None
        expires, value = found
        now = self.clock()
        if now >= expires + self.ttl:
            # Not read for a lifetime past its own: read it in the request, as a new one.
            self._drop(local_key)
            return None
        self._entries.move_to_end(local_key)
        return value, now >= expires

    def mark(self) -> int:
        """Taken before reading a value from elsewhere, and given back to `put`."""
        return self.invalidations

    def put(self, kind: Kind, key: str, value: bytes, mark: int) -> None:
        if not self._live or mark != self.invalidations or len(value) > self.max_bytes:
            return
        if self.settle and self._settling(kind, key):
            return
        local_key = _PREFIXES[kind] + key
        self._drop(local_key)
        lifetime = self.ttl * (1.0 - self.spread * self.uniform())
        self._entries[local_key] = (self.clock() + lifetime, value)
        self._bytes += len(value)
        if kind == "listing":
            self._listing_keys.add(local_key)
        while self._bytes > self.max_bytes:
            evicted_key, (_, evicted) = self._entries.popitem(last=False)
            self._bytes -= len(evicted)
            self._listing_keys.discard(evicted_key)

    def drop(self, kind: Kind, key: str) -> None:
        self._drop(_PREFIXES[kind] + key)

    def _drop(self, local_key: str) -> None:
        found = self._entries.pop(local_key, None)
        if found is not None:
            self._bytes -= len(found[1])
            self._listing_keys.discard(local_key)

    def _settling(self, kind: Kind, key: str) -> bool:
        changed = self._all_changed
        if kind == "listing":
            changed = max(changed, self._listings_changed)
        else:
            changed = max(changed, self._products_changed.get(key, float("-inf")))
        return self.clock() - changed < self.settle

    # --- invalidation --------------------------------------------------------------------

    def forget_product(self, product_id: str, *, listings: bool) -> None:
        self.invalidations += 1
        self._drop(_PREFIXES["product"] + product_id)
        if self.settle:
            now = self.clock()
            self._products_changed.pop(product_id, None)
            self._products_changed[product_id] = now
            while next(iter(self._products_changed.values())) < now - self.settle:
                self._products_changed.popitem(last=False)
        if listings:
            self.forget_listings()

    def forget_listings(self) -> None:
        self.invalidations += 1
        for key in list(self._listing_keys):
            self._drop(key)
        if self.settle:
            self._listings_changed = self.clock()

    def forget_all(self) -> None:
        self._clear()
        if self.settle:
            self._all_changed = self.clock()
            self._products_changed.clear()

    def _clear(self) -> None:
        self.invalidations += 1
        self._entries.clear()
        self._listing_keys.clear()
        self._bytes = 0

    def apply(self, message: bytes | str) -> None:
        """One invalidation message from any replica, this one included."""
        target, listings = catalog_invalidation.decode(message)
        if target == catalog_invalidation.ALL:
            self.forget_all()
        elif target == catalog_invalidation.LISTINGS:
            self.forget_listings()
        else:
            self.forget_product(target, listings=listings)

    # --- the subscription ----------------------------------------------------------------

    def _go_dark(self) -> None:
        self._live = False
        self._confirmed.clear()
        self._clear()

    async def _listen(self) -> None:
        while True:
            try:
                await self._follow()
            except (RedisError, OSError, TimeoutError) as error:
                if self._live:
                    logger.warning(
                        "%s off: catalog invalidations unavailable (%s)",
                        self.name,
                        type(error).__name__,
                    )
                self._go_dark()
            except Exception:
                # Whatever broke, a tier that no longer hears invalidations must not serve.
                logger.exception("%s off: its invalidation listener failed", self.name)
                self._go_dark()
            await asyncio.sleep(RESUBSCRIBE_AFTER_SECONDS)

    async def _follow(self) -> None:
        async with self.subscriber.pubsub() as pubsub:
            await pubsub.subscribe(self.channel)
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
                    self._clear()
                    self._live = True
                    self._confirmed.set()
                    logger.info("%s on", self.name)
                elif kind == "message":
                    self.apply(message["data"])
