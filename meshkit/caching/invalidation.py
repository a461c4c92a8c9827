"""The channels on which changes are announced, and their messages, for `InvalidatedCache`s.

The catalog's: the product service publishes one whenever it makes a cached product or
listing unreachable in Redis; its replicas and the gateway forget what it names. The
orders': the order service publishes one whenever an order changes; the gateway forgets
its answers about that order.

Redis's channels are server-wide, whichever database a client selected: each channel is
named after the database its writers and readers use, so that meshes sharing a Redis server
on different databases neither hear each other's changes nor take each other's heartbeats
for their own writers'.
"""

from __future__ import annotations

from redis.asyncio.connection import parse_url

# Every key of the catalog's Redis cache starts with this; its channel is named after it.
CATALOG_PREFIX = "catalog:"

ALL = "*"
# Not a change: a writer saying it is there (`meshkit.caching.announcer`).
HEARTBEAT = "heartbeat"
LISTINGS = "listings"
_PRODUCT = "product:"
_PRODUCT_AND_LISTINGS = "product+listings:"
_ORDER = "order:"


def catalog_channel(database: int, prefix: str = CATALOG_PREFIX) -> str:
    return f"{prefix}invalidations@{database}"


def orders_channel(database: int) -> str:
    return f"orders:invalidations@{database}"


def database_of(redis_url: str | None) -> int:
    """The database number a Redis URL selects, as redis-py reads it (0 when it names none)."""
    if not redis_url:
        return 0
    return int(parse_url(redis_url).get("db", 0))


def product_changed(product_id: str, *, listings: bool) -> str:
    return (_PRODUCT_AND_LISTINGS if listings else _PRODUCT) + product_id


def product_group(product_id: str) -> str:
    """The group of a product's entries; every listing is in the group `LISTINGS`."""
    return _PRODUCT + product_id


def catalog_groups(message: bytes | str) -> tuple[str, ...] | None:
    """The groups a catalog message names; None for everything.

    Anything unknown is read as everything: forgetting too much is always safe.
    """
    text = _text(message)
    if text == LISTINGS:
        return (LISTINGS,)
    for prefix, listings in ((_PRODUCT_AND_LISTINGS, True), (_PRODUCT, False)):
        if text.startswith(prefix) and len(text) > len(prefix):
            group = product_group(text[len(prefix) :])
            return (group, LISTINGS) if listings else (group,)
    return None


def order_changed(order_id: str) -> str:
    return _ORDER + order_id


def order_group(order_id: str) -> str:
    return _ORDER + order_id


def order_groups(message: bytes | str) -> tuple[str, ...] | None:
    """The group an orders message names; None (everything) for `ALL` or anything unknown."""
    text = _text(message)
    if text.startswith(_ORDER) and len(text) > len(_ORDER):
        return (order_group(text[len(_ORDER) :]),)
    return None


def _text(message: bytes | str) -> str:
    # Whatever a publisher sent: bytes that are not UTF-8 read as unknown, that is everything.
    return message.decode(errors="replace") if isinstance(message, bytes) else message
