"""The announcement channels and their messages: names per Redis database, what each message
names, and anything unknown read as everything."""

from __future__ import annotations

import pytest

from meshkit.caching import connect_redis, invalidation
from tests.product_service.conftest import redis_catalog_cache


@pytest.mark.parametrize(
    ("url", "database"),
    [
        ("redis://127.0.0.1:6379/12", 12),
        ("redis://127.0.0.1:6379", 0),
        ("rediss://cache.internal/?db=3", 3),
        ("redis://cache.internal/1?db=2", 2),
        ("unix:///run/redis.sock?db=2", 2),
        ("unix:///run/redis.sock", 0),
        (None, 0),
    ],
)
def test_a_channel_is_named_after_the_database_of_the_url(url: str | None, database: int) -> None:
    assert invalidation.database_of(url) == database
    assert invalidation.orders_channel(database).endswith(f"@{database}")


async def test_the_product_service_announces_where_the_gateway_listens() -> None:
    url = "redis://127.0.0.1:6379/7"
    client = connect_redis(url, 0.2)
    try:
        cache = redis_catalog_cache(client)
        assert cache.invalidation_channel == invalidation.catalog_channel(
            invalidation.database_of(url)
        )
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    ("message", "groups"),
    [
        (invalidation.product_changed("p1", listings=False), ("product:p1",)),
        (invalidation.product_changed("p1", listings=True), ("product:p1", "listings")),
        (invalidation.LISTINGS, ("listings",)),
        (invalidation.ALL, None),
        ("product:", None),
        (b"\xff\xfe", None),
        ("something new", None),
    ],
)
def test_catalog_messages_name_groups_and_anything_unknown_is_everything(
    message: str | bytes, groups: tuple[str, ...] | None
) -> None:
    assert invalidation.catalog_groups(message) == groups


@pytest.mark.parametrize(
    ("message", "groups"),
    [
        (invalidation.order_changed("o-1"), (invalidation.order_group("o-1"),)),
        (invalidation.ALL.encode(), None),
        (b"\xff", None),
        ("order:", None),
    ],
)
def test_order_messages_name_an_order_and_anything_unknown_is_everything(
    message: str | bytes, groups: tuple[str, ...] | None
) -> None:
    assert invalidation.order_groups(message) == groups
