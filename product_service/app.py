"""Composition root of the product service: builds every object it needs from settings."""

from __future__ import annotations

import functools
import logging
import time
from contextlib import AsyncExitStack
from pathlib import Path

from ecommerce.product.v1 import product_pb2, product_pb2_grpc
from meshkit.caching import Heartbeat, connect_redis, connect_subscriber
from meshkit.data import Database
from meshkit.identity import jwks_verifier, link_user_service
from meshkit.rpc import Channels, PageTokenCodec, ServiceRegistration
from meshkit.service import ServiceApp, ServiceDefinition
from product_service.cache import (
    CatalogCache,
    CircuitBreaker,
    Clock,
    NearCache,
    NoCache,
    RedisCatalogCache,
)
from product_service.categories import Categories
from product_service.grpc_api import PUBLIC_METHODS, ProductService
from product_service.products import Products
from product_service.sellers import Sellers
from product_service.settings import ProductSettings
from product_service.stock import Stock
from product_service.unit_of_work import CatalogUnitOfWork

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


def build_cache(
    settings: ProductSettings, stack: AsyncExitStack, clock: Clock = time.monotonic
) -> CatalogCache:
    if not settings.redis_url:
        logger.warning("REDIS_URL is not set: catalog reads are not cached")
        return NoCache()
    redis = connect_redis(settings.redis_url, settings.cache_timeout_seconds)
    stack.push_async_callback(redis.aclose)
    shared = RedisCatalogCache(
        redis,
        product_ttl=settings.product_cache_ttl_seconds,
        listing_ttl=settings.listing_cache_ttl_seconds,
        popular_ttl=settings.popular_product_ttl_seconds,
        popular_reads=settings.popular_product_reads,
        timeout_seconds=settings.cache_timeout_seconds,
        breaker=CircuitBreaker(settings.cache_retry_after_seconds, clock),
    )
    # Says every second that the catalog's changes are announced: the gateway keeps catalog
    # answers only while it hears that.
    heartbeat = Heartbeat(shared.heartbeat, "catalog heartbeat")
    heartbeat.start()
    stack.push_async_callback(heartbeat.aclose)
    if not settings.near_cache_ttl_seconds:
        return shared
    near = NearCache(
        shared,
        connect_subscriber(settings.redis_url, settings.cache_timeout_seconds),
        ttl=settings.near_cache_ttl_seconds,
        max_bytes=int(settings.near_cache_max_mb * 1024 * 1024),
        clock=clock,
    )
    near.start()
    stack.push_async_callback(near.aclose)
    return near


async def build(
    settings: ProductSettings, stack: AsyncExitStack, *, clock: Clock = time.monotonic
) -> ServiceApp:
    database = await stack.enter_async_context(Database.from_settings(settings))
    channels = await stack.enter_async_context(Channels())
    # Sellers are looked up as this service itself.
    users = link_user_service(settings, channels)
    cache = build_cache(settings, stack, clock)
    page_tokens = PageTokenCodec(settings.page_token_secret.get_secret_value().encode())
    sellers = Sellers(users.as_service)
    unit_of_work = functools.partial(CatalogUnitOfWork, database)
    return ServiceApp(
        services=[
            ServiceRegistration(
                product_pb2.DESCRIPTOR.services_by_name["ProductService"].full_name,
                ProductService(
                    Categories(database, unit_of_work, cache, page_tokens, sellers),
                    Products(database, unit_of_work, cache, page_tokens, sellers),
                    Stock(database, unit_of_work, cache, page_tokens),
                ),
                product_pb2_grpc.add_ProductServiceServicer_to_server,
            ),
        ],
        public_methods=PUBLIC_METHODS,
        verifier=jwks_verifier(settings, users.channel, stack),
        dependencies=[database.readiness],
    )


DEFINITION = ServiceDefinition(settings_cls=ProductSettings, build=build, migrations=MIGRATIONS)
