"""The Redis cache over real gRPC, PostgreSQL and Redis: hits, invalidation, outages."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from ecommerce.common.v1 import money_pb2
from ecommerce.product.v1 import product_pb2
from localmesh.faultproxy import FaultyProxy, Mode
from meshkit.caching import connect_redis, invalidation
from tests.product_service.conftest import (
    CACHE_REDIS_URL,
    CatalogApi,
    StartCatalog,
    metric,
    redis_catalog_cache,
)
from tests.support import FakeClock, free_port

pytestmark = pytest.mark.integration

CACHE_LOGGER = "product_service.cache"


class Counters:
    """Cache counters of one kind, read as changes since the last `take`."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._last = self._read()

    def _read(self) -> tuple[float, float, float]:
        return (
            metric("catalog_cache_hits_total", self.kind),
            metric("catalog_cache_misses_total", self.kind),
            metric("catalog_cache_bypassed_total", self.kind),
        )

    def take(self) -> tuple[int, int, int]:
        """(hits, misses, bypassed) since the last call."""
        now = self._read()
        delta = tuple(int(n - b) for n, b in zip(now, self._last, strict=True))
        self._last = now
        return delta  # type: ignore[return-value]


@pytest.fixture
async def cached(start_catalog: StartCatalog, redis: Redis) -> AsyncIterator[CatalogApi]:
    async with start_catalog(redis_url=CACHE_REDIS_URL, popular_product_reads=3) as api:
        yield api


def usd(amount: int) -> money_pb2.Money:
    return money_pb2.Money(amount_minor=amount, currency_code="USD")


async def test_product_read_hits_after_a_miss_and_an_update_invalidates_it(
    cached: CatalogApi, redis: Redis
) -> None:
    product = await cached.create_product("Kite", price=1000)
    counters = Counters("product")
    assert await cached.get_product(product.id) == product
    assert counters.take() == (0, 1, 0)
    assert await cached.get_product(product.id) == product
    assert counters.take() == (1, 0, 0)
    [entry] = await redis.keys(f"catalog:product:{product.id}:*:*")
    assert 0 < await redis.ttl(entry) <= 60

    updated = await cached.update_product(product.id, price=usd(1200))
    assert (await cached.get_product(product.id)).price.amount_minor == 1200
    assert counters.take() == (0, 1, 0)
    assert await cached.get_product(product.id) == updated
    assert counters.take() == (1, 0, 0)

    await cached.stub.DeleteProduct(
        product_pb2.DeleteProductRequest(id=product.id), metadata=cached.identity.seller.auth
    )
    assert (await cached.get_product(product.id)).archived
    assert counters.take() == (0, 1, 0)


async def test_listing_hits_after_a_miss_and_catalog_writes_invalidate_it(
    cached: CatalogApi,
) -> None:
    kite = await cached.create_product("Kite", price=1000, stock=1)
    counters = Counters("listing")

    async def listed(**request: object) -> list[tuple[str, int, int]]:
        page = await cached.list_products(page_size=10, **request)
        return [(p.name, p.price.amount_minor, p.stock) for p in page.products]

    assert await listed() == [("Kite", 1000, 1)]
    assert counters.take() == (0, 1, 0)
    assert await listed() == [("Kite", 1000, 1)]
    assert counters.take() == (1, 0, 0)
    # Equal filters written differently share the entry.
    assert await listed(order_by="-created_at", query="  ") == [("Kite", 1000, 1)]
    assert counters.take() == (1, 0, 0)

    await cached.update_product(kite.id, price=usd(900))
    assert await listed() == [("Kite", 900, 1)]
    assert counters.take() == (0, 1, 0)

    yoyo = await cached.create_product("Yo-yo", price=300, stock=5)
    assert [name for name, _, _ in await listed()] == ["Yo-yo", "Kite"]
    assert counters.take() == (0, 1, 0)

    await cached.create_category("Toys")
    await listed()
    assert counters.take() == (0, 1, 0)

    # A reservation that leaves stock keeps listings (in_stock did not change) ...
    await cached.reserve("order-1", (yoyo.id, 1))
    await listed()
    assert counters.take() == (1, 0, 0)
    assert (await cached.get_product(yoyo.id)).stock == 4
    # ... one that sells out, or a release that restocks, invalidates them.
    await cached.reserve("order-2", (kite.id, 1))
    assert await listed(in_stock=True) == [("Yo-yo", 300, 4)]
    assert await listed() == [("Yo-yo", 300, 4), ("Kite", 900, 0)]
    assert counters.take() == (0, 2, 0)
    await cached.release("order-2")
    assert await listed(in_stock=True) == [("Yo-yo", 300, 4), ("Kite", 900, 1)]
    assert counters.take() == (0, 1, 0)

    await cached.stub.DeleteProduct(
        product_pb2.DeleteProductRequest(id=kite.id), metadata=cached.identity.seller.auth
    )
    assert await listed() == [("Yo-yo", 300, 4)]


async def test_stock_changes_invalidate_the_product_entry(cached: CatalogApi) -> None:
    product = await cached.create_product("Kite", stock=5)
    assert (await cached.get_product(product.id)).stock == 5
    await cached.reserve("order-1", (product.id, 2))
    assert (await cached.get_product(product.id)).stock == 3
    await cached.release("order-1")
    assert (await cached.get_product(product.id)).stock == 5


async def test_popular_products_are_kept_longer(cached: CatalogApi, redis: Redis) -> None:
    product = await cached.create_product("Kite")
    await cached.get_product(product.id)
    [entry] = await redis.keys(f"catalog:product:{product.id}:*:*")
    assert await redis.ttl(entry) <= 60
    for _ in range(3):  # the fourth read in the window makes it popular
        await cached.get_product(product.id)
    assert 60 < await redis.ttl(entry) <= 600
    # A popular product's next entry is stored with the long TTL from the start.
    await cached.update_product(product.id, stock=1)
    await cached.get_product(product.id)
    [new_entry] = set(await redis.keys(f"catalog:product:{product.id}:*:*")) - {entry}
    assert 60 < await redis.ttl(new_entry) <= 600


async def test_reads_fall_back_to_the_database_when_redis_is_down(
    start_catalog: StartCatalog, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=CACHE_LOGGER)
    closed = f"redis://127.0.0.1:{free_port()}/14"
    async with start_catalog(redis_url=closed) as api:
        product = await api.create_product("Kite", stock=2)
        counters = Counters("product")
        for _ in range(3):
            assert await api.get_product(product.id) == product
            assert [p.id for p in (await api.list_products()).products] == [product.id]
        updated = await api.update_product(product.id, stock=1)
        assert await api.get_product(product.id) == updated
        await api.reserve("order-1", (product.id, 1))
        assert (await api.get_product(product.id)).stock == 0
    hits, misses, bypassed = counters.take()
    assert (hits, misses) == (0, 0) and bypassed == 5
    warnings = [r for r in caplog.records if r.name == CACHE_LOGGER]
    # Rate-limited: one warning, not one per read.
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert "reading from the database" in warnings[0].getMessage()


async def test_a_hung_redis_costs_one_timeout_then_is_skipped(
    start_catalog: StartCatalog, redis: Redis
) -> None:
    async with FaultyProxy("127.0.0.1", 6379) as proxy:
        proxy.set_mode(Mode.BLACK_HOLE)
        async with start_catalog(
            redis_url=f"redis://{proxy.endpoint}/14", cache_timeout_seconds=0.2
        ) as api:
            product = await api.create_product("Kite")  # its invalidation times out
            counters = Counters("product")
            started = time.perf_counter()
            for _ in range(5):
                assert await api.get_product(product.id) == product
            elapsed = time.perf_counter() - started
            assert counters.take() == (0, 0, 5)
            # Skipped by the breaker: no read waited for the 0.2 s timeout.
            assert elapsed < 0.5


async def test_the_cache_is_used_again_when_redis_is_back(
    start_catalog: StartCatalog, redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=CACHE_LOGGER)
    clock = FakeClock()
    async with (
        FaultyProxy("127.0.0.1", 6379) as proxy,
        start_catalog(
            redis_url=f"redis://{proxy.endpoint}/14", clock=clock, cache_retry_after_seconds=5
        ) as api,
    ):
        product = await api.create_product("Kite", price=1000)
        counters = Counters("product")
        await api.get_product(product.id)
        await api.get_product(product.id)
        assert counters.take() == (1, 1, 0)

        proxy.set_mode(Mode.RESET)
        # The write commits; its invalidation cannot reach Redis.
        await api.update_product(product.id, price=usd(1500))
        assert (await api.get_product(product.id)).price.amount_minor == 1500
        assert counters.take() == (0, 0, 1)

        proxy.set_mode(Mode.FORWARD)
        # Redis is back, but the breaker keeps it skipped until the pause is over.
        assert (await api.get_product(product.id)).price.amount_minor == 1500
        assert counters.take() == (0, 0, 1)

        clock.advance(5)
        # Used again; the entry cached before the lost invalidation is not served.
        assert (await api.get_product(product.id)).price.amount_minor == 1500
        assert counters.take() == (0, 1, 0)
        assert (await api.get_product(product.id)).price.amount_minor == 1500
        assert counters.take() == (1, 0, 0)
    messages = [r.getMessage() for r in caplog.records if r.name == CACHE_LOGGER]
    assert any("unavailable" in m for m in messages)
    assert "catalog cache is reachable again" in messages


async def test_the_heartbeat_makes_up_for_a_lost_invalidation_and_stops_while_redis_is_skipped(
    redis: Redis,
) -> None:
    """The gateway keeps catalog answers while it hears the heartbeat: a heartbeat must never
    be heard after an invalidation was lost unless `ALL` came first."""
    clock = FakeClock()
    async with FaultyProxy("127.0.0.1", 6379) as proxy:
        client = connect_redis(f"redis://{proxy.endpoint}/14", 0.2)
        try:
            cache = redis_catalog_cache(
                client, prefix=f"beat-{free_port()}:", timeout=0.2, clock=clock
            )
            async with redis.pubsub() as pubsub:
                await pubsub.subscribe(cache.invalidation_channel)
                await pubsub.get_message(timeout=5)  # the confirmation

                async def heard() -> list[bytes]:
                    found = []
                    while (message := await pubsub.get_message(timeout=0.2)) is not None:
                        found.append(message["data"])
                    return found

                await cache.heartbeat()
                assert await heard() == [invalidation.HEARTBEAT.encode()]

                proxy.set_mode(Mode.RESET)
                await cache.product_changed("p1")  # lost: Redis is unreachable
                await cache.heartbeat()  # skipped: the breaker is open
                proxy.set_mode(Mode.FORWARD)
                await cache.heartbeat()  # still skipped until the pause is over
                assert await heard() == []

                clock.advance(5)
                await cache.heartbeat()
                assert await heard() == [invalidation.ALL.encode(), invalidation.HEARTBEAT.encode()]
        finally:
            await client.aclose()
