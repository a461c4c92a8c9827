"""What every tier of the catalog cache offers, and the tier that caches nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

Store = Callable[[bytes], Awaitable[None]]


async def _store_nothing(value: bytes) -> None:
    return None


class CacheEntry:
    """One lookup's outcome: the cached bytes, or None and a way to fill the entry."""

    __slots__ = ("_store", "value")

    def __init__(self, value: bytes | None, store: Store = _store_nothing) -> None:
        self.value = value
        self._store = store

    async def store(self, value: bytes) -> None:
        await self._store(value)


class CatalogCache(Protocol):
    async def product(self, product_id: str) -> CacheEntry: ...

    async def listing(self, key: str) -> CacheEntry: ...

    async def product_changed(self, product_id: str, *, listings: bool = True) -> None: ...

    async def listings_changed(self) -> None: ...


class NoCache:
    """The cache when REDIS_URL is not set: every read goes to the database."""

    async def product(self, product_id: str) -> CacheEntry:
        return CacheEntry(None)

    async def listing(self, key: str) -> CacheEntry:
        return CacheEntry(None)

    async def product_changed(self, product_id: str, *, listings: bool = True) -> None:
        return None

    async def listings_changed(self) -> None:
        return None
