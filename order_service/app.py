"""Composition root of the order service: builds every object it needs from settings."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

from ecommerce.order.v1 import (
    analytics_pb2,
    analytics_pb2_grpc,
    cart_pb2,
    cart_pb2_grpc,
    order_pb2,
    order_pb2_grpc,
)
from meshkit.db import Database
from meshkit.server import ServiceRegistration
from meshkit.service import ServiceApp, ServiceDefinition
from order_service.grpc_api import AnalyticsService, CartService, OrderService
from order_service.settings import OrderSettings

MIGRATIONS = Path(__file__).parent / "migrations"


async def build(settings: OrderSettings, stack: AsyncExitStack) -> ServiceApp:
    database = await stack.enter_async_context(Database(settings.database_url))
    del database  # used by the domain as it grows
    return ServiceApp(
        services=[
            ServiceRegistration(
                order_pb2.DESCRIPTOR.services_by_name["OrderService"].full_name,
                OrderService(),
                order_pb2_grpc.add_OrderServiceServicer_to_server,
            ),
            ServiceRegistration(
                cart_pb2.DESCRIPTOR.services_by_name["CartService"].full_name,
                CartService(),
                cart_pb2_grpc.add_CartServiceServicer_to_server,
            ),
            ServiceRegistration(
                analytics_pb2.DESCRIPTOR.services_by_name["AnalyticsService"].full_name,
                AnalyticsService(),
                analytics_pb2_grpc.add_AnalyticsServiceServicer_to_server,
            ),
        ],
    )


DEFINITION = ServiceDefinition(settings_cls=OrderSettings, build=build, migrations=MIGRATIONS)
