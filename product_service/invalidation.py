"""The catalog's invalidation messages, published by the Redis tier to every replica."""

from __future__ import annotations

ALL = "*"
LISTINGS = "listings"
_PRODUCT = "product:"
_PRODUCT_AND_LISTINGS = "product+listings:"


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
