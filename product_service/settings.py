"""Product service configuration."""

from __future__ import annotations

from typing import ClassVar

from meshkit.settings import ServiceSettings, service_setting, setting


class ProductSettings(ServiceSettings):
    service_name: ClassVar[str] = "product_service"

    grpc_port: int = service_setting(50051, "PRODUCT_SERVICE_GRPC_PORT", ge=0, le=65535)
    database_url: str = service_setting("", "PRODUCT_SERVICE_DATABASE_URL")

    # The Redis cache of product reads and listings (used only when REDIS_URL is set).
    product_cache_ttl_seconds: int = setting(60, "PRODUCT_CACHE_TTL_SECONDS", ge=1, le=86_400)
    listing_cache_ttl_seconds: int = setting(30, "LISTING_CACHE_TTL_SECONDS", ge=1, le=86_400)
    # A product read more than POPULAR_PRODUCT_READS times within PRODUCT_CACHE_TTL_SECONDS
    # is cached this long instead; writes still invalidate it at once.
    popular_product_ttl_seconds: int = setting(600, "POPULAR_PRODUCT_TTL_SECONDS", ge=1, le=86_400)
    popular_product_reads: int = setting(20, "POPULAR_PRODUCT_READS", ge=1)
    # A cache call slower than this counts as a failure: the read goes to the database.
    cache_timeout_seconds: float = setting(0.2, "CACHE_TIMEOUT_SECONDS", gt=0, le=5)
    # After a cache failure Redis is left alone for 0.5 s, twice as long after each failed
    # probe, up to this long: a dead Redis costs few timeouts, a brief stall little.
    cache_retry_after_seconds: float = setting(5.0, "CACHE_RETRY_AFTER_SECONDS", ge=0, le=3600)

    # The in-process tier over Redis (hot products and listings); 0 turns it off. Changes
    # reach every replica at once through Redis, and a lost subscription empties the tier
    # within seconds: this lifetime only bounds a message lost unnoticed. Each hot entry is
    # read from Redis again once per lifetime (two round trips); at 10 s that cost scenario 1
    # of the benchmark a sizeable part of its throughput.
    near_cache_ttl_seconds: float = setting(60.0, "NEAR_CACHE_TTL_SECONDS", ge=0, le=3600)
    near_cache_max_mb: float = setting(16.0, "NEAR_CACHE_MAX_MB", gt=0, le=4096)

    def problems(self) -> list[str]:
        found = super().problems()
        if self.popular_product_ttl_seconds < self.product_cache_ttl_seconds:
            found.append("POPULAR_PRODUCT_TTL_SECONDS must be at least PRODUCT_CACHE_TTL_SECONDS")
        return found
