"""The gateway's catalog cache over real Redis: hits without a call, every invalidation heard,
the settling second after one, fills that raced one, a lost subscription, expiry, no Redis."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack

import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from gateway.catalog_cache import SETTLE_SECONDS, CatalogAnswers, open_catalog_tier
from gateway.settings import GatewaySettings
from meshkit import catalog_invalidation
from meshkit.catalog_tier import CatalogTier
from meshkit.settings import load_settings
from tests.conftest import REDIS_URL
from tests.support import FakeClock, eventually

pytestmark = pytest.mark.integration


class Upstream:
    """Answers each fetch with the current `value`, counting the calls."""

    def __init__(self, value: bytes = b'{"name":"kite"}') -> None:
        self.value = value
        self.calls = 0

    async def fetch(self) -> bytes:
        self.calls += 1
        return self.value


class Cache:
    """Answers over a live tier on a channel of the test's own, and a publisher on it."""

    def __init__(self, tier: CatalogTier, publisher: Redis) -> None:
        self.registry = CollectorRegistry()
        self.answers = CatalogAnswers(self.registry)
        self.answers.tier = tier
        self.tier = tier
        self.publisher = publisher

    def hits(self, kind: str) -> float:
        found = self.registry.get_sample_value("gateway_catalog_cache_hits_total", {"kind": kind})
        return found or 0.0

    async def publish(self, message: str) -> None:
        """A message as the product service sends it, once the tier has applied it."""
        before = self.tier.invalidations
        await self.publisher.publish(self.tier.channel, message)

        async def applied() -> bool:
            return self.tier.invalidations > before

        await eventually(applied, timeout=5, message="the tier hears the message")


MakeCache = Callable[..., Awaitable[Cache]]


@pytest.fixture
async def make_cache() -> AsyncIterator[MakeCache]:
    channel = catalog_invalidation.channel(f"gateway-test-{uuid.uuid4().hex[:8]}:")
    async with AsyncExitStack() as stack:
        publisher = Redis.from_url(REDIS_URL)
        stack.push_async_callback(publisher.aclose)

        async def make(clock: FakeClock | None = None, ttl: float = 60) -> Cache:
            tick: Callable[[], float] = clock or time.monotonic
            tier = CatalogTier(
                Redis.from_url(REDIS_URL),
                channel=channel,
                ttl=ttl,
                max_bytes=1 << 20,
                settle=SETTLE_SECONDS,
                spread=0.0,
                clock=tick,
            )
            tier.start()
            stack.push_async_callback(tier.aclose)
            await tier.wait_live(5)
            return Cache(tier, publisher)

        yield make


async def test_a_product_read_once_is_answered_without_a_call(make_cache: MakeCache) -> None:
    cache, upstream = await make_cache(), Upstream()
    assert await cache.answers.product("p1", upstream.fetch) == upstream.value
    assert await cache.answers.product("p1", upstream.fetch) == upstream.value
    assert upstream.calls == 1
    assert cache.hits("product") == 1


async def test_every_message_naming_an_entry_makes_it_read_again(make_cache: MakeCache) -> None:
    clock = FakeClock()
    cache, product, page = await make_cache(clock), Upstream(b"kite"), Upstream(b"[kite]")
    await cache.answers.product("p1", product.fetch)
    await cache.answers.listing("toys", page.fetch)

    # A stock change that empties no listing: the product only.
    await cache.publish(catalog_invalidation.product_changed("p1", listings=False))
    product.value = b"kite, 9 left"
    assert await cache.answers.product("p1", product.fetch) == b"kite, 9 left"
    assert await cache.answers.listing("toys", page.fetch) == b"[kite]"
    assert page.calls == 1

    # A new product in the catalog: every listing, no product.
    await cache.publish(catalog_invalidation.LISTINGS)
    page.value = b"[kite, kite 2]"
    assert await cache.answers.listing("toys", page.fetch) == b"[kite, kite 2]"
    calls = product.calls
    clock.advance(SETTLE_SECONDS)
    await cache.answers.product("p1", product.fetch)
    await cache.answers.product("p1", product.fetch)
    assert product.calls == calls + 1

    # Anything not understood forgets everything.
    await cache.publish("something new")
    product.value = b"kite, repainted"
    assert await cache.answers.product("p1", product.fetch) == b"kite, repainted"


async def test_what_a_message_named_is_read_through_for_a_second(make_cache: MakeCache) -> None:
    """A replica of the product service may hear the message after the gateway does, and
    answer a read made in between with what the message made stale: not kept."""
    clock = FakeClock()
    cache, upstream = await make_cache(clock), Upstream(b"kite, as a late replica has it")
    await cache.publish(catalog_invalidation.product_changed("p1", listings=False))

    clock.advance(SETTLE_SECONDS - 0.01)
    await cache.answers.product("p1", upstream.fetch)
    upstream.value = b"kite"
    assert await cache.answers.product("p1", upstream.fetch) == b"kite"
    # Others are kept meanwhile.
    await cache.answers.product("p2", upstream.fetch)
    await cache.answers.product("p2", upstream.fetch)
    assert upstream.calls == 3

    clock.advance(0.01)
    await cache.answers.product("p1", upstream.fetch)
    await cache.answers.product("p1", upstream.fetch)
    assert upstream.calls == 4


async def test_a_read_that_raced_a_message_is_not_kept(make_cache: MakeCache) -> None:
    cache = await make_cache()

    class Racing(Upstream):
        async def fetch(self) -> bytes:
            # The product changes while the product service answers.
            await cache.publish(catalog_invalidation.product_changed("p1", listings=True))
            return await super().fetch()

    racing = Racing(b"maybe older than the write")
    assert await cache.answers.product("p1", racing.fetch) == racing.value
    assert cache.tier.get("product", "p1") is None


async def test_an_entry_past_its_lifetime_is_read_again_in_the_request(
    make_cache: MakeCache,
) -> None:
    clock = FakeClock()
    cache, upstream = await make_cache(clock, ttl=10), Upstream(b"kite")
    await cache.answers.product("p1", upstream.fetch)
    clock.advance(9.9)
    await cache.answers.product("p1", upstream.fetch)
    assert upstream.calls == 1
    clock.advance(0.1)
    upstream.value = b"kite, repainted"
    assert await cache.answers.product("p1", upstream.fetch) == b"kite, repainted"
    assert await cache.answers.product("p1", upstream.fetch) == b"kite, repainted"
    assert upstream.calls == 2


async def test_a_lost_subscription_sends_every_read_upstream_until_resubscribed(
    make_cache: MakeCache,
) -> None:
    cache, upstream = await make_cache(), Upstream()
    await cache.answers.product("p1", upstream.fetch)
    killer = Redis.from_url(REDIS_URL)
    try:
        # redis-py leaves execute_command unannotated.
        await killer.execute_command("CLIENT", "KILL", "TYPE", "pubsub")  # type: ignore[no-untyped-call]
    finally:
        await killer.aclose()

    async def went_dark() -> bool:
        return not cache.tier.live

    await eventually(went_dark, timeout=5, message="the tier turns off")
    await cache.answers.product("p1", upstream.fetch)
    assert upstream.calls == 2

    async def live_again() -> bool:
        return cache.tier.live

    await eventually(live_again, timeout=10, message="resubscribed")
    await cache.answers.product("p1", upstream.fetch)  # nothing kept across the gap
    await cache.answers.product("p1", upstream.fetch)
    assert upstream.calls == 3


@pytest.mark.parametrize(
    ("redis_url", "ttl"), [(None, 60.0), (REDIS_URL, 0.0)], ids=["no Redis", "lifetime 0"]
)
async def test_without_redis_or_with_a_lifetime_of_0_every_read_is_fetched(
    redis_url: str | None, ttl: float
) -> None:
    settings = load_settings(
        GatewaySettings, env_file=None, redis_url=redis_url, catalog_cache_ttl_seconds=ttl
    )
    async with AsyncExitStack() as stack:
        assert open_catalog_tier(settings, stack) is None
    answers, upstream = CatalogAnswers(CollectorRegistry()), Upstream()
    await answers.product("p1", upstream.fetch)
    await answers.product("p1", upstream.fetch)
    assert upstream.calls == 2
