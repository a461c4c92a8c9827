"""Product service configuration."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from meshkit.settings import ServiceSettings, service_field


class ProductSettings(ServiceSettings):
    service_name: ClassVar[str] = "product_service"

    grpc_port: int = service_field(50051, "PRODUCT_SERVICE_GRPC_PORT", ge=0, le=65535)
    database_url: str = service_field("", "PRODUCT_SERVICE_DATABASE_URL")

    # The Redis cache of product reads and listings (used only when REDIS_URL is set).
    product_cache_ttl_seconds: int = Field(
        60, ge=1, le=86_400, validation_alias="PRODUCT_CACHE_TTL_SECONDS"
    )
    listing_cache_ttl_seconds: int = Field(
        30, ge=1, le=86_400, validation_alias="LISTING_CACHE_TTL_SECONDS"
    )
    # A product read more than POPULAR_PRODUCT_READS times within PRODUCT_CACHE_TTL_SECONDS
    # is cached this long instead; writes still invalidate it at once.
    popular_product_ttl_seconds: int = Field(
        600, ge=1, le=86_400, validation_alias="POPULAR_PRODUCT_TTL_SECONDS"
    )
    popular_product_reads: int = Field(20, ge=1, validation_alias="POPULAR_PRODUCT_READS")
    # A cache call slower than this counts as a failure: the read goes to the database.
    cache_timeout_seconds: float = Field(0.2, gt=0, le=5, validation_alias="CACHE_TIMEOUT_SECONDS")
    # After a cache failure, Redis is left alone this long so a dead Redis costs no timeouts.
    cache_retry_after_seconds: float = Field(
        5.0, ge=0, le=3600, validation_alias="CACHE_RETRY_AFTER_SECONDS"
    )

    # The in-process tier over Redis (hot products and listings): entries live this long at
    # most (invalidations reach every replica at once through Redis); 0 turns it off.
    near_cache_ttl_seconds: float = Field(
        10.0, ge=0, le=3600, validation_alias="NEAR_CACHE_TTL_SECONDS"
    )
    near_cache_max_mb: float = Field(16.0, gt=0, le=4096, validation_alias="NEAR_CACHE_MAX_MB")

    @model_validator(mode="after")
    def _popular_lives_longer(self) -> ProductSettings:
        if self.popular_product_ttl_seconds < self.product_cache_ttl_seconds:
            raise ValueError(
                "POPULAR_PRODUCT_TTL_SECONDS must be at least PRODUCT_CACHE_TTL_SECONDS"
            )
        return self
