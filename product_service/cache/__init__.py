"""The catalog cache: the Redis tier, its breaker, and the in-process tier in front of it."""

from __future__ import annotations

from product_service.cache.base import CacheEntry, CatalogCache, NoCache, Store
from product_service.cache.breaker import FIRST_PAUSE_SECONDS, CircuitBreaker, Clock
from product_service.cache.near import NEAR_HITS, NEAR_REFRESHES, NearCache
from product_service.cache.redis_tier import (
    CACHE_BYPASSED,
    CACHE_HITS,
    CACHE_MISSES,
    DEFAULT_PREFIX,
    WARNING_INTERVAL_SECONDS,
    CacheKind,
    RedisCatalogCache,
)

__all__ = [
    "CACHE_BYPASSED",
    "CACHE_HITS",
    "CACHE_MISSES",
    "DEFAULT_PREFIX",
    "FIRST_PAUSE_SECONDS",
    "NEAR_HITS",
    "NEAR_REFRESHES",
    "WARNING_INTERVAL_SECONDS",
    "CacheEntry",
    "CacheKind",
    "CatalogCache",
    "CircuitBreaker",
    "Clock",
    "NearCache",
    "NoCache",
    "RedisCatalogCache",
    "Store",
]
