"""The gateway's answer cache over real Redis: hits without a call, every invalidation heard,
the settling second after one, fills that raced one, orders per caller, silent writers, a lost
subscription, expiry, no Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack

import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from gateway.answer_cache import SETTLE_SECONDS, Answers, open_caches
from gateway.settings import GatewaySettings
from meshkit.caching import (
    ChangeAnnouncer,
    Heartbeat,
    InvalidatedCache,
    connect_subscriber,
    invalidation,
)
from meshkit.context import Principal, Role
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
    """Answers over live caches (catalog and orders) on one channel of the test's own, with
    a writer beating on it, a publisher, and a clock that moves when told."""

    def __init__(
        self,
        tier: InvalidatedCache,
        writer: ChangeAnnouncer,
        heartbeat: Heartbeat,
        publisher: Redis,
        clock: FakeClock,
    ) -> None:
        self.registry = CollectorRegistry()
        self.answers = Answers(self.registry)
        self.answers.catalog = self.answers.orders = tier
        self.tier = tier
        self.writer = writer
        self.heartbeat = heartbeat
        self.publisher = publisher
        self.clock = clock

    def hits(self, kind: str) -> float:
        found = self.registry.get_sample_value("gateway_answer_cache_hits_total", {"kind": kind})
        return found or 0.0

    async def publish(self, message: str) -> None:
        """A message as the product service sends it, once the tier has applied it."""
        before = self.tier.invalidations
        await self.publisher.publish(self.tier.channel, message)

        async def applied() -> bool:
            return self.tier.invalidations > before

        await eventually(applied, timeout=5, message="the tier hears the message")

    async def wait_live_again(self) -> None:
        """Until the cache is on again, past the settling time that follows."""
        await self.tier.wait_live(10)
        self.clock.advance(SETTLE_SECONDS)


MakeCache = Callable[..., Awaitable[Cache]]

CUSTOMER = Principal(subject="u-1", role=Role.CUSTOMER, token="t")


def decode(message: bytes | str) -> tuple[str, ...] | None:
    """The catalog's messages and the orders' on one channel."""
    return invalidation.order_groups(message) or invalidation.catalog_groups(message)


@pytest.fixture
async def make_cache() -> AsyncIterator[MakeCache]:
    channel = f"gateway-test-{uuid.uuid4().hex[:8]}:invalidations"
    async with AsyncExitStack() as stack:
        publisher = Redis.from_url(REDIS_URL)
        stack.push_async_callback(publisher.aclose)

        async def make(ttl: float = 60, settle: float = SETTLE_SECONDS) -> Cache:
            clock = FakeClock()
            writer = ChangeAnnouncer(Redis.from_url(REDIS_URL), channel)
            stack.push_async_callback(writer.redis.aclose)
            heartbeat = Heartbeat(writer.beat, "test writer")
            heartbeat.start()
            stack.push_async_callback(heartbeat.aclose)
            tier = InvalidatedCache(
                connect_subscriber(REDIS_URL),
                channel,
                decode,
                ttl=ttl,
                max_bytes=1 << 20,
                settle=settle,
                writers_heard=True,
                spread=0.0,
                clock=clock,
            )
            tier.start()
            stack.push_async_callback(tier.aclose)
            cache = Cache(tier, writer, heartbeat, publisher, clock)
            await cache.wait_live_again()
            return cache

        yield make


async def test_a_product_read_once_is_answered_without_a_call(make_cache: MakeCache) -> None:
    cache, upstream = await make_cache(), Upstream()
    assert await cache.answers.product("p1", upstream.fetch) == upstream.value
    assert await cache.answers.product("p1", upstream.fetch) == upstream.value
    assert upstream.calls == 1
    assert cache.hits("product") == 1


async def test_every_message_naming_an_entry_makes_it_read_again(make_cache: MakeCache) -> None:
    cache, product, page = await make_cache(), Upstream(b"kite"), Upstream(b"[kite]")
    clock = cache.clock
    await cache.answers.product("p1", product.fetch)
    await cache.answers.listing("toys", page.fetch)

    # A stock change that empties no listing: the product only.
    await cache.publish(invalidation.product_changed("p1", listings=False))
    product.value = b"kite, 9 left"
    assert await cache.answers.product("p1", product.fetch) == b"kite, 9 left"
    assert await cache.answers.listing("toys", page.fetch) == b"[kite]"
    assert page.calls == 1

    # A new product in the catalog: every listing, no product.
    await cache.publish(invalidation.LISTINGS)
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


async def test_what_a_message_named_is_read_through_for_a_while(make_cache: MakeCache) -> None:
    """A replica of the product service may hear the message after the gateway does, and
    answer a read made in between with what the message made stale: not kept."""
    cache, upstream = await make_cache(), Upstream(b"kite, as a late replica has it")
    clock = cache.clock
    await cache.publish(invalidation.product_changed("p1", listings=False))

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
    # No settling time: the message's arriving during the read is what refuses the value.
    cache = await make_cache(settle=0.0)

    class Racing(Upstream):
        async def fetch(self) -> bytes:
            # The product changes while the product service answers.
            await cache.publish(invalidation.product_changed("p1", listings=True))
            return await super().fetch()

    racing = Racing(b"maybe older than the write")
    assert await cache.answers.product("p1", racing.fetch) == racing.value
    assert cache.tier.get(invalidation.product_group("p1")) is None
    # Read again after the message, it is kept.
    await cache.answers.product("p1", Upstream().fetch)
    assert cache.tier.get(invalidation.product_group("p1")) is not None


async def test_an_entry_past_its_lifetime_is_answered_while_read_again(
    make_cache: MakeCache,
) -> None:
    cache, upstream = await make_cache(ttl=10), Upstream(b"kite")
    await cache.answers.product("p1", upstream.fetch)
    cache.clock.advance(9.9)
    assert await cache.answers.product("p1", upstream.fetch) == b"kite"
    assert upstream.calls == 1

    cache.clock.advance(0.1)
    upstream.value = b"kite, repainted"  # a message lost unnoticed: the case the ttl bounds
    # Answered at once from here, and read again in the background, once.
    assert await cache.answers.product("p1", upstream.fetch) == b"kite"
    assert await cache.answers.product("p1", upstream.fetch) == b"kite"
    await cache.answers.refreshed()
    assert upstream.calls == 2
    assert await cache.answers.product("p1", upstream.fetch) == b"kite, repainted"
    assert upstream.calls == 2


async def test_an_entry_not_read_for_a_lifetime_past_its_own_is_read_in_the_request(
    make_cache: MakeCache,
) -> None:
    cache, upstream = await make_cache(ttl=10), Upstream(b"kite")
    await cache.answers.product("p1", upstream.fetch)
    cache.clock.advance(20)
    upstream.value = b"kite, repainted"
    assert await cache.answers.product("p1", upstream.fetch) == b"kite, repainted"
    assert upstream.calls == 2


async def test_an_entry_its_service_no_longer_answers_is_dropped_when_read_again(
    make_cache: MakeCache,
) -> None:
    cache = await make_cache(ttl=10)
    await cache.answers.order("o-1", CUSTOMER, Upstream().fetch)
    cache.clock.advance(10)

    async def gone() -> bytes:
        raise LookupError("no such order")

    await cache.answers.order("o-1", CUSTOMER, gone)
    await cache.answers.refreshed()
    with pytest.raises(LookupError):
        await cache.answers.order("o-1", CUSTOMER, gone)


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

    await cache.wait_live_again()
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
        GatewaySettings, env_file=None, redis_url=redis_url, answer_cache_ttl_seconds=ttl
    )
    answers, upstream = Answers(CollectorRegistry()), Upstream()
    async with AsyncExitStack() as stack:
        open_caches(answers, settings, stack)
        assert answers.catalog is None
        assert answers.orders is None
        await answers.product("p1", upstream.fetch)
        await answers.product("p1", upstream.fetch)
    assert upstream.calls == 2


async def test_an_order_is_answered_again_only_to_the_caller_it_was_fetched_for(
    make_cache: MakeCache,
) -> None:
    cache, upstream = await make_cache(), Upstream(b'{"id":"o-1","status":"PENDING"}')
    await cache.answers.order("o-1", CUSTOMER, upstream.fetch)
    await cache.answers.order("o-1", CUSTOMER, upstream.fetch)
    assert (upstream.calls, cache.hits("order")) == (1, 1)

    # Anyone else, the same person in another role included, is the order service's to judge.
    for other in (
        Principal(subject="u-2", role=Role.CUSTOMER, token="t"),
        Principal(subject="u-1", role=Role.ADMIN, token="t"),
        Principal(subject="admin-1", role=Role.ADMIN, token="t"),
    ):
        await cache.answers.order("o-1", other, upstream.fetch)
    assert upstream.calls == 4


async def test_an_order_change_forgets_the_answers_to_every_caller(make_cache: MakeCache) -> None:
    cache, upstream = await make_cache(), Upstream(b'{"status":"PENDING"}')
    admin = Principal(subject="admin-1", role=Role.ADMIN, token="t")
    for caller in (CUSTOMER, admin):
        await cache.answers.order("o-1", caller, upstream.fetch)
    await cache.answers.order("o-2", CUSTOMER, upstream.fetch)

    await cache.publish(invalidation.order_changed("o-1"))
    upstream.value = b'{"status":"PAID"}'
    for caller in (CUSTOMER, admin):
        assert await cache.answers.order("o-1", caller, upstream.fetch) == upstream.value
    assert await cache.answers.order("o-2", CUSTOMER, upstream.fetch) == b'{"status":"PENDING"}'
    assert upstream.calls == 5


async def test_nothing_is_kept_while_no_writer_is_heard(make_cache: MakeCache) -> None:
    """A service run without Redis (or with another one) announces nothing: what the gateway
    kept of its answers would never be forgotten."""
    cache, upstream = await make_cache(), Upstream()
    await cache.answers.product("p1", upstream.fetch)
    await cache.heartbeat.aclose()  # the only writer stops beating

    async def went_dark() -> bool:
        return not cache.tier.live

    await eventually(went_dark, timeout=10, message="the cache turns off")
    await cache.answers.product("p1", upstream.fetch)
    await cache.answers.product("p1", upstream.fetch)
    assert upstream.calls == 3

    cache.heartbeat.start()
    await cache.wait_live_again()
    await cache.answers.product("p1", upstream.fetch)
    await cache.answers.product("p1", upstream.fetch)
    assert upstream.calls == 4


async def test_a_change_announced_while_redis_failed_empties_every_cache_by_the_next_beat(
    make_cache: MakeCache,
) -> None:
    cache, upstream = await make_cache(), Upstream()
    await cache.answers.order("o-1", CUSTOMER, upstream.fetch)
    await cache.answers.product("p1", upstream.fetch)
    # The writer's Redis fails just as it announces a change: the change is not heard ...
    unreachable = Redis.from_url("redis://127.0.0.1:1/0")
    working, cache.writer.redis = cache.writer.redis, unreachable
    try:
        await cache.writer.changed(invalidation.order_changed("o-1"))
    finally:
        cache.writer.redis = working
        await unreachable.aclose()
    assert cache.tier.get(invalidation.order_group("o-1"), "customer:u-1") is not None

    # ... and its next heartbeat, with Redis back, first says to forget everything.
    async def everything_forgotten() -> bool:
        # On all along (the writer beats): emptied by the ALL, not by going dark.
        assert cache.tier.live
        return cache.tier.get(invalidation.product_group("p1")) is None

    await eventually(everything_forgotten, timeout=5, message="ALL heard")
    assert cache.tier.get(invalidation.order_group("o-1"), "customer:u-1") is None
