"""The catalog's invalidation messages: what changed, published on one Redis channel.

The product service publishes one whenever it makes a cached product or listing unreachable
in Redis; every in-process tier of catalog entries (the product service's replicas', the
gateway's) listens and forgets what a message names.
"""

from __future__ import annotations

# Every key of the catalog's Redis cache starts with this; the channel is named after it.
PREFIX = "catalog:"

ALL = "*"
LISTINGS = "listings"
_PRODUCT = "product:"
_PRODUCT_AND_LISTINGS = "product+listings:"


def channel(prefix: str = PREFIX) -> str:
    return f"{prefix}invalidations"


def product_changed(product_id: str, *, listings: bool) -> str:
    return (_PRODUCT_AND_LISTINGS if listings else _PRODUCT) + product_id


def decode(message: bytes | str) -> tuple[str, bool]:
    """(ALL, True), (LISTINGS, True) or (product id, whether listings changed too).

    Anything unknown is read as ALL: forgetting too much is always safe.
    """
    text = message.decode() if isinstance(message, bytes) else message
    if text == LISTINGS:
        return LISTINGS, True
    for prefix, listings in ((_PRODUCT_AND_LISTINGS, True), (_PRODUCT, False)):
        if text.startswith(prefix) and len(text) > len(prefix):
            return text[len(prefix) :], listings
    return ALL, True
