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
from meshkit import amqp
from meshkit.channels import Channels, create_channel
from meshkit.db import Database
from meshkit.identity import jwks_verifier, service_token_source
from meshkit.inbox import EventConsumer
from meshkit.outbox import Outbox, OutboxRelay
from meshkit.pagination import PageTokenCodec
from meshkit.server import ServiceRegistration
from meshkit.service import ServiceApp, ServiceDefinition
from order_service import models
from order_service.analytics import Analytics
from order_service.carts import Carts
from order_service.grpc_api import AnalyticsService, CartService, OrderService
from order_service.orders import SERVICE_NAME, Orders
from order_service.settings import OrderSettings
from order_service.upstream import Catalog, Users

MIGRATIONS = Path(__file__).parent / "migrations"


async def build(settings: OrderSettings, stack: AsyncExitStack) -> ServiceApp:
    database = await stack.enter_async_context(Database(settings.database_url))
    connection = await amqp.connect(settings.amqp_url, name=SERVICE_NAME)
    topology = amqp.Topology(settings.amqp_namespace)
    await topology.declare_all(connection)

    timeout = settings.rpc_timeout_seconds
    channels = await stack.enter_async_context(Channels())
    user_channel = channels.add(
        "user_service", create_channel(settings.user_service_addr, timeout_seconds=timeout)
    )
    service_token = service_token_source(settings, user_channel)
    # This service acts as itself upstream, with its own service token.
    users_as_service = channels.add(
        "user_service_as_service",
        create_channel(
            settings.user_service_addr, timeout_seconds=timeout, token_source=service_token
        ),
    )
    product_channel = channels.add(
        "product_service",
        create_channel(
            settings.product_service_addr, timeout_seconds=timeout, token_source=service_token
        ),
    )

    outbox = Outbox(models.outbox, SERVICE_NAME)
    orders = Orders(
        database,
        outbox,
        Catalog(product_channel),
        Users(users_as_service),
        PageTokenCodec(settings.page_token_secret.get_secret_value().encode()),
    )
    carts = Carts(database, orders.catalog, orders)
    relay = OutboxRelay(database, outbox, connection, topology)
    consumer = EventConsumer(
        database,
        models.inbox,
        connection,
        topology,
        SERVICE_NAME,
        {
            "payment.succeeded": orders.on_payment_succeeded,
            "payment.failed": orders.on_payment_failed,
            "notification.sent": orders.on_notification_sent,
        },
        retry_base_seconds=settings.consumer_retry_base_seconds,
        retry_max_seconds=settings.consumer_retry_max_seconds,
    )
    return ServiceApp(
        services=[
            ServiceRegistration(
                order_pb2.DESCRIPTOR.services_by_name["OrderService"].full_name,
                OrderService(orders),
                order_pb2_grpc.add_OrderServiceServicer_to_server,
            ),
            ServiceRegistration(
                cart_pb2.DESCRIPTOR.services_by_name["CartService"].full_name,
                CartService(carts),
                cart_pb2_grpc.add_CartServiceServicer_to_server,
            ),
            ServiceRegistration(
                analytics_pb2.DESCRIPTOR.services_by_name["AnalyticsService"].full_name,
                AnalyticsService(Analytics(database)),
                analytics_pb2_grpc.add_AnalyticsServiceServicer_to_server,
            ),
        ],
        verifier=jwks_verifier(settings, user_channel),
        background=[relay.run, consumer.run],
    )


DEFINITION = ServiceDefinition(settings_cls=OrderSettings, build=build, migrations=MIGRATIONS)
