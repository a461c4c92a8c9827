"""Verified tokens are remembered until they expire, and no more of them than the bound."""

from __future__ import annotations

import time

from meshkit.context import Principal, Role
from meshkit.identity import VerifiedTokenCache


def principal(name: str) -> Principal:
    return Principal(subject=name, role=Role.CUSTOMER, token=name)


def test_a_token_is_remembered_until_it_expires() -> None:
    cache = VerifiedTokenCache()
    cache.put("fresh", principal("fresh"), time.time() + 60)
    cache.put("expired", principal("expired"), time.time() - 1)
    assert cache.get("fresh") == principal("fresh")
    assert cache.get("expired") is None  # verified once, but past its exp: checked again
    assert cache.get("unknown") is None


def test_the_least_recently_used_token_goes_first() -> None:
    cache = VerifiedTokenCache(max_size=2)
    later = time.time() + 60
    cache.put("a", principal("a"), later)
    cache.put("b", principal("b"), later)
    assert cache.get("a") is not None  # "a" is now the most recently used
    cache.put("c", principal("c"), later)
    assert cache.get("b") is None
    assert cache.get("a") is not None and cache.get("c") is not None
