"""An in-process cache kept exact by a Redis channel on which every change is announced.

The product service's replicas keep hot products and listings in one (the bytes Redis holds),
and the gateway keeps there the answers it builds from catalog and order reads; each forgets
what an invalidation message names as it arrives, a millisecond after the write on one host
(`meshkit.caching.invalidation` has the channels and their messages).

Four rules keep such a cache exact rather than merely short-lived:
- it is used only while its subscription is confirmed and heard from; losing it (or not
  hearing a ping's answer in time) empties the cache and turns it off until a new
  subscription is confirmed, which empties it again (messages were missed in between), as
  every confirmation does;
- a value read from elsewhere is kept only if no invalidation arrived while it was being
  read (`mark` before the read, `put` with the mark after): otherwise it may predate a write
  whose message was already applied. A cache that reads from other caches (the gateway reads
  from the product service's replicas, which hear the same message a little earlier or
  later) also refuses, for `settle` seconds after a message, to keep what the message named:
  a replica that had not heard it yet may still have answered with what it held;
- a cache that must hear its writers (`writers_heard`: the gateway's, of answers other
  services change) is also off while no writer's heartbeat has been heard for
  `SILENCE_LIMIT_SECONDS` (`meshkit.caching.announcer`): a writer configured without Redis, or with
  another one, leaves it empty rather than stale;
- entries also live `ttl` seconds at most, a bound should a message ever be lost unnoticed.
  `get` says when an entry is past its lifetime, and its owner decides what to do with it;
  one not read for a lifetime past its own is dropped and read as new.

Each entry's lifetime is drawn between `(1 - spread) * ttl` and `ttl`: entries filled
together (at start-up, after a lost subscription, by a burst of new traffic) would otherwise
all be read again at once. In the benchmark, the products read in its warm-up all expired
together a minute later, and that moment cost the scenario throughput and tail latency that
spread lifetimes do not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from meshkit.caching.invalidation import HEARTBEAT
from meshkit.caching.subscription import SILENCE_LIMIT_SECONDS, follow

logger = logging.getLogger(__name__)

_HEARTBEATS = (HEARTBEAT, HEARTBEAT.encode())
# What an entry costs besides its value and its names: the tuples, the dict and set slots.
ENTRY_OVERHEAD_BYTES = 200


def _size(group: str, key: str, value: bytes) -> int:
    return len(value) + len(group) + len(key) + ENTRY_OVERHEAD_BYTES


RESUBSCRIBE_AFTER_SECONDS = 1.0
# The share of `ttl` by which entries' lifetimes differ, so that they do not expire together.
EXPIRY_SPREAD = 0.2

Decode = Callable[[bytes | str], "tuple[str, ...] | None"]


class InvalidatedCache:
    """A byte-bounded LRU of entries (bytes), each in a group that messages name.

    A message names groups (`decode` says which: None is everything), and every entry of a
    named group is forgotten: a product's one entry, every listing at once, an order's
    answers to each caller.
    """

    def __init__(
        self,
        subscriber: Redis,
        channel: str,
        decode: Decode,
        *,
        ttl: float,
        max_bytes: int,
        settle: float = 0.0,
        writers_heard: bool = False,
        clock: Callable[[], float] = time.monotonic,
        spread: float = EXPIRY_SPREAD,
        uniform: Callable[[], float] = random.random,
        name: str = "in-process cache",
    ) -> None:
        self.subscriber = subscriber
        self.channel = channel
        self.decode = decode
        self.ttl = ttl
        self.max_bytes = max_bytes
        self.settle = settle
        self.writers_heard = writers_heard
        self.clock = clock
        self.spread = spread
        self.uniform = uniform  # in [0, 1)
        self.name = name
        self._entries: OrderedDict[tuple[str, str], tuple[float, bytes]] = OrderedDict()
        self._bytes = 0
        # Each group's keys, so that forgetting a group costs its entries, not all entries.
        self._groups: dict[str, set[str]] = {}
        # Counts every invalidation applied: a read that saw it change keeps nothing.
        self.invalidations = 0
        # When `settle` is on: when each group, and everything, was last named by a message
        # (groups oldest first, pruned past `settle`).
        self._changed: OrderedDict[str, float] = OrderedDict()
        self._all_changed = float("-inf")
        # Live: subscribed, and (when writers must be heard) a writer heard lately.
        self._live = False
        self._subscribed = False
        self._last_heartbeat = float("-inf")
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

    def get(self, group: str, key: str = "") -> tuple[bytes, bool] | None:
        """The entry's value, and whether it is past its lifetime; None when not held."""
        if not self._live:
            return None
        found = self._entries.get((group, key))
        if found is None:
            return None
        expires, value = found
        now = self.clock()
        if now >= expires + self.ttl:
            # Not read for a lifetime past its own: read it in the request, as a new one.
            self.drop(group, key)
            return None
        self._entries.move_to_end((group, key))
        return value, now >= expires

    def mark(self) -> int:
        """Taken before reading a value from elsewhere, and given back to `put`."""
        return self.invalidations

    def put(self, group: str, key: str, value: bytes, mark: int) -> bool:
        """Keep `value` unless a rule above refuses it; whether it was kept."""
        size = _size(group, key, value)
        if not self._live or mark != self.invalidations or size > self.max_bytes:
            return False
        if self.settle and self.clock() - self._last_change(group) < self.settle:
            return False
        self.drop(group, key)
        lifetime = self.ttl * (1.0 - self.spread * self.uniform())
        self._entries[(group, key)] = (self.clock() + lifetime, value)
        self._groups.setdefault(group, set()).add(key)
        self._bytes += size
        while self._bytes > self.max_bytes:
            (evicted_group, evicted_key), (_, evicted) = self._entries.popitem(last=False)
            self._bytes -= _size(evicted_group, evicted_key, evicted)
            self._ungroup(evicted_group, evicted_key)
        return True

    def drop(self, group: str, key: str = "") -> None:
        found = self._entries.pop((group, key), None)
        if found is not None:
            self._bytes -= _size(group, key, found[1])
            self._ungroup(group, key)

    def _ungroup(self, group: str, key: str) -> None:
        keys = self._groups.get(group)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._groups[group]

    def _last_change(self, group: str) -> float:
        return max(self._all_changed, self._changed.get(group, float("-inf")))

    # --- invalidation --------------------------------------------------------------------

    def forget(self, *groups: str) -> None:
        """Every entry of these groups, now (and, with `settle`, what is read for a while)."""
        self.invalidations += 1
        for group in groups:
            for key in list(self._groups.get(group, ())):
                self.drop(group, key)
        if self.settle:
            now = self.clock()
            for group in groups:
                self._changed.pop(group, None)
                self._changed[group] = now
            while self._changed and next(iter(self._changed.values())) < now - self.settle:
                self._changed.popitem(last=False)

    def forget_all(self) -> None:
        self._restart()

    def _clear(self) -> None:
        self.invalidations += 1
        self._entries.clear()
        self._groups.clear()
        self._bytes = 0

    def apply(self, message: bytes | str) -> None:
        """One invalidation message from any process, this one included."""
        groups = self.decode(message)
        if groups is None:
            self.forget_all()
        else:
            self.forget(*groups)

    # --- the subscription ----------------------------------------------------------------

    def _go_dark(self) -> None:
        self._subscribed = False
        self._update_live(time.monotonic())

    def _update_live(self, now: float) -> None:
        live = self._subscribed and (
            not self.writers_heard or now - self._last_heartbeat <= SILENCE_LIMIT_SECONDS
        )
        if live == self._live:
            return
        self._live = live
        # Either way, start empty: whatever was kept, or read while off, may have missed
        # messages (`_clear` also refuses the fills that began before).
        self._restart()
        if live:
            self._confirmed.set()
            logger.info("%s on", self.name)
        else:
            self._confirmed.clear()
            if self._subscribed:
                logger.warning("%s off: none of its writers heard for a while", self.name)

    def _restart(self) -> None:
        """Forget everything, and (with `settle`) read through for a while: a replica this
        cache reads from may have missed what this one missed."""
        self._clear()
        if self.settle:
            self._all_changed = self.clock()
            self._changed.clear()

    async def _listen(self) -> None:
        while True:
            try:
                await self._follow()
            except (RedisError, OSError, TimeoutError) as error:
                if self._live:
                    logger.warning(
                        "%s off: invalidations unavailable (%s)",
                        self.name,
                        type(error).__name__,
                    )
                self._go_dark()
            except Exception:
                # Whatever broke, a cache that no longer hears invalidations must not serve.
                logger.exception("%s off: its invalidation listener failed", self.name)
                self._go_dark()
            await asyncio.sleep(RESUBSCRIBE_AFTER_SECONDS)

    async def _follow(self) -> None:
        await follow(self.subscriber, self.channel, self._handle)

    async def _handle(self, message: Mapping[str, Any] | None, now: float) -> None:
        self._update_live(now)
        if message is None:
            return
        kind = message["type"]
        if kind == "subscribe":
            # Every confirmation, a client's silent reconnection included, follows a gap in
            # which messages may have been missed.
            self._restart()
            self._subscribed = True
            self._last_heartbeat = float("-inf")
            self._update_live(now)
        elif kind == "message":
            if message["data"] in _HEARTBEATS:
                self._last_heartbeat = now
                self._update_live(now)
            else:
                self.apply(message["data"])
