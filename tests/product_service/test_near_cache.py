"""The in-process tier over real Redis: hits without Redis, invalidation across replicas,
fills that raced a write, a lost subscription, expiry; then two service replicas over gRPC."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from ecommerce.common.v1 import money_pb2
from meshkit.caching import connect_redis, connect_subscriber
from product_service.cache import NearCache
from tests.product_service.conftest import CACHE_REDIS_URL, StartCatalog, redis_catalog_cache
from tests.support import FakeClock, eventually

pytestmark = pytest.mark.integration

Replica = Callable[..., Awaitable[NearCache]]


def near_hits(kind: str) -> float:
    return REGISTRY.get_sample_value("catalog_near_cache_hits_total", {"kind": kind}) or 0.0


@pytest.fixture
async def replica(redis: Redis) -> AsyncIterator[Replica]:
    """Makes replicas of the two-tier cache sharing one Redis key space, live when returned."""
    prefix = f"near-{uuid.uuid4().hex[:8]}:"
    async with AsyncExitStack() as stack:

        async def make(
            clock: Callable[[], float] | None = None,
            ttl: float = 10,
            max_bytes: int = 1 << 20,
            spread: float = 0.0,
            uniform: Callable[[], float] | None = None,
        ) -> NearCache:
            client = connect_redis(CACHE_REDIS_URL, 1.0)
            stack.push_async_callback(client.aclose)
            shared = redis_catalog_cache(client, prefix=prefix)
            near = NearCache(
                shared,
                connect_subscriber(CACHE_REDIS_URL),
                ttl=ttl,
                max_bytes=max_bytes,
                spread=spread,
                **({"clock": clock} if clock else {}),
                **({"uniform": uniform} if uniform else {}),
            )
            near.start()
            stack.push_async_callback(near.aclose)
            await near.wait_live(5)
            return near

        yield make


async def fill(cache: NearCache, product_id: str, value: bytes) -> None:
    entry = await cache.product(product_id)
    assert entry.value is None
    await entry.store(value)


async def test_a_hot_product_is_answered_without_redis(replica: Replica) -> None:
    cache = await replica()
    await fill(cache, "p1", b"kite")
    before = near_hits("product")
    assert (await cache.product("p1")).value == b"kite"
    assert near_hits("product") == before + 1


async def test_a_write_on_one_replica_is_forgotten_by_every_replica(replica: Replica) -> None:
    writer, reader = await replica(), await replica()
    await fill(reader, "p1", b"kite at 10")
    await fill(reader, "p2", b"yo-yo")
    assert (await reader.product("p1")).value == b"kite at 10"

    await writer.product_changed("p1", listings=False)

    async def forgotten() -> bool:
        return (await reader.product("p1")).value is None

    await eventually(forgotten, timeout=5, message="the other replica forgets p1")
    assert (await reader.product("p2")).value == b"yo-yo"  # only what the message named


async def test_listings_are_forgotten_by_catalog_writes_and_sell_outs(replica: Replica) -> None:
    writer, reader = await replica(), await replica()

    async def cached_listing() -> bytes | None:
        return (await reader.listing("toys|10|")).value

    async def listing_forgotten() -> bool:
        return await cached_listing() is None

    for change in (
        writer.listings_changed(),
        writer.product_changed("p1", listings=True),
    ):
        await (await reader.listing("toys|10|")).store(b"page one")
        assert await cached_listing() == b"page one"
        await change
        await eventually(listing_forgotten, timeout=5, message="listings forgotten")

    # A stock change that keeps the product in stock leaves listings alone.
    await (await reader.listing("toys|10|")).store(b"page one")
    await writer.product_changed("p1", listings=False)
    await fill(reader, "p-marker", b"marker")
    await writer.product_changed("p-marker", listings=False)

    async def marker_forgotten() -> bool:
        return (await reader.product("p-marker")).value is None

    await eventually(marker_forgotten, timeout=5, message="the later message arrives")
    assert await cached_listing() == b"page one"


async def test_a_read_that_raced_a_write_is_not_kept(replica: Replica) -> None:
    writer, reader = await replica(), await replica()
    entry = await reader.product("p1")  # a miss: the service now reads the database ...
    assert entry.value is None
    before = reader.tier.invalidations
    await writer.product_changed("p1", listings=False)  # ... while another replica writes

    async def message_arrived() -> bool:
        return reader.tier.invalidations > before

    await eventually(message_arrived, timeout=5, message="the invalidation arrives")
    await entry.store(b"maybe older than the write")
    assert (await reader.product("p1")).value is None


async def test_a_lost_subscription_turns_the_tier_off_until_resubscribed(
    replica: Replica, redis: Redis
) -> None:
    cache = await replica()
    await fill(cache, "p1", b"kite")
    assert (await cache.product("p1")).value == b"kite"

    # redis-py leaves execute_command unannotated.
    await redis.execute_command("CLIENT", "KILL", "TYPE", "pubsub")  # type: ignore[no-untyped-call]

    async def went_dark() -> bool:
        return not cache.live

    await eventually(went_dark, timeout=5, message="the tier turns off")
    await eventually(lambda: wait_live(cache), timeout=10, message="resubscribed")
    # Whatever it kept went with the subscription: the next read comes from Redis.
    before = near_hits("product")
    assert (await cache.product("p1")).value == b"kite"
    assert near_hits("product") == before
    assert (await cache.product("p1")).value == b"kite"
    assert near_hits("product") == before + 1


async def wait_live(cache: NearCache) -> bool:
    return cache.live


async def redis_entries(cache: NearCache, product_id: str) -> list[bytes]:
    """The keys of the product's entries in Redis (`product:<id>:<epoch>:<generation>`)."""
    pattern = f"{cache.inner.prefix}product:{product_id}:*:*"
    return [key async for key in cache.inner.redis.scan_iter(match=pattern)]


async def repainted_behind_its_back(replica: Replica, clock: FakeClock) -> NearCache:
    """A replica holding "kite" for p1 (lifetime 10 s) while Redis has come to hold "kite,
    repainted" with no message about it: a message lost unnoticed, the case the lifetime
    bounds."""
    cache = await replica(clock=clock, ttl=10)
    await fill(cache, "p1", b"kite")
    (stored,) = await redis_entries(cache, "p1")
    await cache.inner.redis.set(stored, b"kite, repainted")
    return cache


def near_refreshes(kind: str) -> float:
    return REGISTRY.get_sample_value("catalog_near_cache_refreshes_total", {"kind": kind}) or 0.0


async def test_an_entry_past_its_lifetime_is_answered_while_read_again_from_redis(
    replica: Replica,
) -> None:
    clock = FakeClock()
    cache = await repainted_behind_its_back(replica, clock)
    hits, refreshes = near_hits("product"), near_refreshes("product")

    clock.advance(9.9)
    assert (await cache.product("p1")).value == b"kite"
    assert near_refreshes("product") == refreshes
    clock.advance(0.1)
    # Past its lifetime: answered at once from here, and read again in the background, once.
    assert (await cache.product("p1")).value == b"kite"
    assert (await cache.product("p1")).value == b"kite"
    assert near_refreshes("product") == refreshes + 1
    await cache.refreshed()
    assert (await cache.product("p1")).value == b"kite, repainted"
    assert near_hits("product") == hits + 4
    assert near_refreshes("product") == refreshes + 1


async def test_an_entry_not_read_for_a_lifetime_past_its_own_is_read_in_the_request(
    replica: Replica,
) -> None:
    clock = FakeClock()
    cache = await repainted_behind_its_back(replica, clock)
    refreshes = near_refreshes("product")
    clock.advance(20)
    assert (await cache.product("p1")).value == b"kite, repainted"
    assert near_refreshes("product") == refreshes


async def test_an_entry_redis_no_longer_holds_is_dropped_when_read_again(
    replica: Replica,
) -> None:
    clock = FakeClock()
    cache = await replica(clock=clock, ttl=10)
    await fill(cache, "p1", b"kite")
    await cache.inner.redis.delete(*await redis_entries(cache, "p1"))
    clock.advance(10)
    assert (await cache.product("p1")).value == b"kite"
    await cache.refreshed()
    # The next read goes the whole way, to the database and back into both tiers.
    entry = await cache.product("p1")
    assert entry.value is None
    await entry.store(b"kite from the database")
    assert (await cache.product("p1")).value == b"kite from the database"


async def test_entries_filled_together_are_read_again_apart_and_within_the_ttl(
    replica: Replica,
) -> None:
    clock = FakeClock()
    # Lifetimes of 10, 9 and 8 s for the first three entries; then 10 s for the ones read
    # again from Redis, so that they stay out of the way.
    draws = iter([0.0, 0.5, 0.999])
    cache = await replica(clock=clock, ttl=10, spread=0.2, uniform=lambda: next(draws, 0.0))
    for product_id in ("p1", "p2", "p3"):
        await fill(cache, product_id, product_id.encode())

    async def read_again(*product_ids: str) -> set[str]:
        """Which of these are past their lifetime: each read of one starts its refresh."""
        started = set()
        for product_id in product_ids:
            before = near_refreshes("product")
            assert (await cache.product(product_id)).value == product_id.encode()
            if near_refreshes("product") > before:
                started.add(product_id)
        await cache.refreshed()
        return started

    clock.advance(7.9)
    assert await read_again("p1", "p2", "p3") == set()
    clock.advance(0.2)  # 8.1 s
    assert await read_again("p1", "p2", "p3") == {"p3"}
    clock.advance(0.9)  # 9.0 s
    assert await read_again("p1", "p2") == {"p2"}
    clock.advance(1.0)  # 10 s: the bound, whatever the draw
    assert await read_again("p1") == {"p1"}


async def test_two_service_replicas_serve_each_others_writes_at_once(
    start_catalog: StartCatalog, redis: Redis
) -> None:
    settings = {"redis_url": CACHE_REDIS_URL, "near_cache_ttl_seconds": 30}
    async with start_catalog(**settings) as first, start_catalog(**settings) as second:
        product = await first.create_product("Kite", price=1000)

        async def served_from_memory() -> bool:
            before = near_hits("product")
            await second.get_product(product.id)
            return near_hits("product") > before

        await eventually(served_from_memory, message="the second replica keeps the product")

        await first.update_product(
            product.id, price=money_pb2.Money(amount_minor=1200, currency_code="USD")
        )

        async def new_price() -> bool:
            return (await second.get_product(product.id)).price.amount_minor == 1200

        # Within the time a message takes, far below the 30 s the entry could live.
        await eventually(new_price, timeout=2, message="the second replica shows the new price")


async def test_the_tier_keeps_within_its_bytes_evicting_the_least_recently_read(
    replica: Replica,
) -> None:
    # Room for three entries of 10 bytes, their names and their bookkeeping (~220 bytes each).
    cache = await replica(max_bytes=700)
    await fill(cache, "p1", b"x" * 10)
    await (await cache.listing("toys|10|")).store(b"y" * 10)
    await fill(cache, "p2", b"z" * 10)
    assert (await cache.product("p1")).value is not None  # p1 is now the most recent
    before = near_hits("listing")
    await fill(cache, "p3", b"w" * 10)  # a fourth: the listing, least recent, goes

    assert (await cache.listing("toys|10|")).value == b"y" * 10  # from Redis, not memory
    assert near_hits("listing") == before
    hits = near_hits("product")
    for product_id in ("p1", "p3"):
        assert (await cache.product(product_id)).value is not None
    assert near_hits("product") == hits + 2
