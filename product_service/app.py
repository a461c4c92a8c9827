"""Composition root of the product service: builds every object it needs from settings."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

from ecommerce.product.v1 import product_pb2, product_pb2_grpc
from meshkit.db import Database
from meshkit.server import ServiceRegistration
from meshkit.service import ServiceApp, ServiceDefinition
from product_service.grpc_api import ProductService
from product_service.settings import ProductSettings

MIGRATIONS = Path(__file__).parent / "migrations"


async def build(settings: ProductSettings, stack: AsyncExitStack) -> ServiceApp:
    database = await stack.enter_async_context(Database(settings.database_url))
    del database  # used by the domain as it grows
    return ServiceApp(
        services=[
            ServiceRegistration(
                product_pb2.DESCRIPTOR.services_by_name["ProductService"].full_name,
                ProductService(),
                product_pb2_grpc.add_ProductServiceServicer_to_server,
            ),
        ],
    )


DEFINITION = ServiceDefinition(settings_cls=ProductSettings, build=build, migrations=MIGRATIONS)
