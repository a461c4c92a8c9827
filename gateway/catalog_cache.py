"""The gateway's cache of catalog answers: product documents and listing pages, as JSON bytes.

The catalog's reads are public and the same for every caller, and the product service keeps
the hot ones in memory already; what a read through the gateway still costs is the gRPC hop
itself (in the benchmark, a bare FastAPI app making one `grpc.aio` call to an echo server ran
at 31% of a bare hello world, against a target of 35% for the product read). Kept here, as the
bytes the gateway answers, a hot product costs no call, no message parsed and no JSON built.

Exact, not short-lived: a `CatalogTier` hears every invalidation the product service makes,
as its own replicas do, and while it does not hear them it keeps nothing (see
`meshkit.catalog_tier`). What this tier reads comes from those replicas' tiers, which hear a
message a little before or after this one: for a second after a message, what it named is
read through rather than kept.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

from prometheus_client import CollectorRegistry, Counter
from redis.asyncio import Redis

from gateway.settings import GatewaySettings
from meshkit.catalog_tier import CatalogTier, Kind

# Longer than a replica of the product service takes to hear a message this tier has heard,
# by far: both listen to one Redis, a millisecond apart.
SETTLE_SECONDS = 1.0

Fetch = Callable[[], Awaitable[bytes]]


class CatalogAnswers:
    """Catalog answers from the tier when it holds them, else fetched (and then kept).

    Made with the app, with no tier (every read fetched) until `open_catalog_tier` gives it
    one at start-up.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.tier: CatalogTier | None = None
        hits = Counter(
            "gateway_catalog_cache_hits",
            "Catalog reads answered from the gateway's own cache, without an upstream call.",
            ("kind",),
            registry=registry,
        )
        # The series, kept: `labels()` validates and locks on every call.
        self._hits = {kind: hits.labels(kind) for kind in ("product", "listing")}

    async def product(self, product_id: str, fetch: Fetch) -> bytes:
        return await self._answer("product", product_id, fetch)

    async def listing(self, key: str, fetch: Fetch) -> bytes:
        return await self._answer("listing", key, fetch)

    async def _answer(self, kind: Kind, key: str, fetch: Fetch) -> bytes:
        tier = self.tier
        if tier is None:
            return await fetch()
        found = tier.get(kind, key)
        # Past its lifetime: read again in the request, which the product service's own
        # tier answers at once.
        if found is not None and not found[1]:
            self._hits[kind].inc()
            return found[0]
        mark = tier.mark()
        body = await fetch()
        tier.put(kind, key, body, mark)
        return body


def open_catalog_tier(settings: GatewaySettings, stack: AsyncExitStack) -> CatalogTier | None:
    """The tier, listening from now on until `stack` closes; none without Redis or with a
    lifetime of 0."""
    if not settings.redis_url or not settings.catalog_cache_ttl_seconds:
        return None
    tier = CatalogTier(
        # Its own connection: a subscription holds it.
        Redis.from_url(settings.redis_url, socket_connect_timeout=1.0),
        ttl=settings.catalog_cache_ttl_seconds,
        max_bytes=int(settings.catalog_cache_max_mb * 1024 * 1024),
        settle=SETTLE_SECONDS,
        name="gateway catalog cache",
    )
    tier.start()
    stack.push_async_callback(tier.aclose)
    return tier
