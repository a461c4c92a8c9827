"""The gateway's cache of read answers (products, listing pages, orders), as the JSON it sends.

What a read through the gateway costs, once the service behind it holds the answer in
memory, is the gRPC hop itself: in the benchmark, a bare FastAPI app making one `grpc.aio`
call to an echo server, or one running the order read on PostgreSQL, reached only a fraction
of a bare hello world's throughput. Kept here, a hot product, listing page or order costs no
call, no message parsed and no JSON built.

Exact, not short-lived: each kind is kept in an `InvalidatedCache` that hears every change
its service announces (the catalog's, as the product service's replicas do; the orders', as
the order service publishes them), and that keeps nothing while it does not hear them, nor
the heartbeat of at least one writer (see `meshkit.caching.invalidated_cache`): a service run
without Redis, or with another one, leaves the gateway's cache empty, not stale. What the
gateway reads may come from those replicas' own caches, which hear a message a little before
or after the gateway does: for a few seconds after a message, what it named is read through
rather than kept (`SETTLE_SECONDS`).

An order is kept per caller (who, and in what role): an answer is given again only to the
caller the order service gave it to, so the order service alone decides who sees an order.

An entry read in the `ttl` after its lifetime is answered once more while it is read again
in the background, as the caller (one read per entry at a time); one read later than that is
read in the request. Read in the request, the expiry of the entries a warm-up had filled
together made the benchmark's product read, a minute later, many times slower in its tail
than the rest of the run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

from prometheus_client import CollectorRegistry, Counter

from gateway.settings import GatewaySettings
from meshkit.caching import connect_subscriber, invalidation
from meshkit.caching.invalidated_cache import Decode, InvalidatedCache
from meshkit.caching.subscription import PING_INTERVAL_SECONDS, SILENCE_LIMIT_SECONDS
from meshkit.context import Principal

# Longer than a replica of the product service may serve what a message named after the
# gateway heard it: a millisecond when both hear it, and when the replica's subscription died
# unnoticed, until the replica finds out (no answer to its ping in time) and turns its own
# cache off.
SETTLE_SECONDS = SILENCE_LIMIT_SECONDS + PING_INTERVAL_SECONDS + 1.0

logger = logging.getLogger(__name__)

Fetch = Callable[[], Awaitable[bytes]]


class Answers:
    """Answers from the caches when they hold them, else fetched (and then kept).

    Made with the app, with no caches (every read fetched) until `open_caches` gives it
    some at start-up.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.catalog: InvalidatedCache | None = None
        self.orders: InvalidatedCache | None = None
        hits = Counter(
            "gateway_answer_cache_hits",
            "Reads answered from the gateway's own cache, without an upstream call.",
            ("kind",),
            registry=registry,
        )
        # The series, kept: `labels()` validates and locks on every call.
        self._hits = {kind: hits.labels(kind) for kind in ("product", "listing", "order")}
        # Entries past their lifetime being read again, and the tasks reading them.
        self._refreshing: set[tuple[str, str, str]] = set()
        self._refreshes: set[asyncio.Task[None]] = set()

    async def product(self, product_id: str, fetch: Fetch) -> bytes:
        group = invalidation.product_group(product_id)
        return await self._answer(self.catalog, "product", group, "", fetch)

    async def listing(self, key: str, fetch: Fetch) -> bytes:
        return await self._answer(self.catalog, "listing", invalidation.LISTINGS, key, fetch)

    async def order(self, order_id: str, caller: Principal, fetch: Fetch) -> bytes:
        group = invalidation.order_group(order_id)
        key = f"{caller.role.value}:{caller.subject}"
        return await self._answer(self.orders, "order", group, key, fetch)

    async def _answer(
        self, cache: InvalidatedCache | None, kind: str, group: str, key: str, fetch: Fetch
    ) -> bytes:
        if cache is None:
            return await fetch()
        found = cache.get(group, key)
        if found is not None:
            body, expired = found
            if expired and (kind, group, key) not in self._refreshing:
                self._refresh(cache, (kind, group, key), fetch)
            self._hits[kind].inc()
            return body
        mark = cache.mark()
        body = await fetch()
        cache.put(group, key, body, mark)
        return body

    def _refresh(self, cache: InvalidatedCache, entry: tuple[str, str, str], fetch: Fetch) -> None:
        self._refreshing.add(entry)
        # In the request's context: as its caller, with its request id.
        task = asyncio.create_task(self._read_again(cache, entry, fetch))
        self._refreshes.add(task)
        task.add_done_callback(self._refreshes.discard)

    async def _read_again(
        self, cache: InvalidatedCache, entry: tuple[str, str, str], fetch: Fetch
    ) -> None:
        _, group, key = entry
        mark = cache.mark()
        try:
            body = await fetch()
        except Exception as error:
            # Gone, or not answered: the next read goes the whole way and says so.
            logger.debug("reading a cached answer again failed: %r", error)
            cache.drop(group, key)
            return
        finally:
            self._refreshing.discard(entry)
        if not cache.put(group, key, body, mark):
            # Refused (a message came meanwhile, about this entry or another): the old entry
            # goes too, or every read until its end would start another refresh.
            cache.drop(group, key)

    async def refreshed(self) -> None:
        """Until the entries being read again in the background are (for tests)."""
        while self._refreshes:
            await asyncio.wait(set(self._refreshes))

    async def aclose(self) -> None:
        while self._refreshes:
            for task in self._refreshes:
                task.cancel()
            await asyncio.gather(*self._refreshes, return_exceptions=True)


def open_caches(answers: Answers, settings: GatewaySettings, stack: AsyncExitStack) -> None:
    """Gives `answers` its caches, listening from now on until `stack` closes; none without
    Redis or with a lifetime of 0."""
    if not settings.redis_url or not settings.answer_cache_ttl_seconds:
        return
    database = invalidation.database_of(settings.redis_url)
    answers.catalog = _open(
        settings,
        stack,
        invalidation.catalog_channel(database),
        invalidation.catalog_groups,
        "gateway catalog cache",
    )
    answers.orders = _open(
        settings,
        stack,
        invalidation.orders_channel(database),
        invalidation.order_groups,
        "gateway order cache",
    )

    async def close() -> None:
        # Off first, so that no request starts another refresh; then those under way.
        answers.catalog = answers.orders = None
        await answers.aclose()

    stack.push_async_callback(close)


def _open(
    settings: GatewaySettings, stack: AsyncExitStack, channel: str, decode: Decode, name: str
) -> InvalidatedCache:
    assert settings.redis_url
    cache = InvalidatedCache(
        connect_subscriber(settings.redis_url),
        channel,
        decode,
        ttl=settings.answer_cache_ttl_seconds,
        max_bytes=int(settings.answer_cache_max_mb * 1024 * 1024),
        settle=SETTLE_SECONDS,
        writers_heard=True,
        name=name,
    )
    cache.start()
    stack.push_async_callback(cache.aclose)
    return cache
