"""Composition root of the order service: builds every object it needs from settings."""

from __future__ import annotations

from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path

from ecommerce.order.v1 import (
    analytics_pb2,
    analytics_pb2_grpc,
    cart_pb2,
    cart_pb2_grpc,
    order_pb2,
    order_pb2_grpc,
)
from meshkit.caching import invalidation, open_announcer
from meshkit.data import Database
from meshkit.identity import jwks_verifier, link_user_service
from meshkit.messaging import Messaging, Subscriptions, amqp
from meshkit.rpc import Channels, PageTokenCodec, ServiceRegistration, create_channel
from meshkit.service import ServiceApp, ServiceDefinition
from order_service import models
from order_service.analytics import Analytics
from order_service.carts import Carts
from order_service.grpc_api import AnalyticsService, CartService, OrderService
from order_service.history import demo_history
from order_service.orders import Orders
from order_service.reconciler import Reconciler
from order_service.saga import Saga
from order_service.settings import OrderSettings
from order_service.unit_of_work import OrderUnitOfWork
from order_service.upstream import Catalog, Notifications, Payments, Users

MIGRATIONS = Path(__file__).parent / "migrations"


async def build(settings: OrderSettings, stack: AsyncExitStack) -> ServiceApp:
    database = await stack.enter_async_context(Database.from_settings(settings))
    messaging = await Messaging.open(
        settings, stack, database, outbox_table=models.outbox, inbox_table=models.inbox
    )

    channels = await stack.enter_async_context(Channels())
    # This service acts as itself upstream, with its own service token.
    users = link_user_service(settings, channels)
    product_channel = channels.add(
        "product_service",
        create_channel(
            settings.product_service_addr,
            timeout_seconds=settings.rpc_timeout_seconds,
            token_source=users.token,
        ),
    )

    payment_channel = channels.add(
        "payment_service",
        create_channel(
            settings.payment_service_addr,
            timeout_seconds=settings.rpc_timeout_seconds,
            token_source=users.token,
        ),
    )

    # An order's emails, for its timeline; none where no notification service is deployed.
    notifications = (
        Notifications(
            channels.add(
                "notification_service",
                create_channel(
                    settings.notification_service_addr,
                    timeout_seconds=settings.rpc_timeout_seconds,
                    token_source=users.token,
                ),
            )
        )
        if settings.notification_service_addr
        else None
    )
    catalog = Catalog(product_channel)
    changes = open_announcer(
        settings.redis_url,
        invalidation.orders_channel(invalidation.database_of(settings.redis_url)),
        stack,
    )

    def unit_of_work() -> OrderUnitOfWork:
        return OrderUnitOfWork(database, messaging.outbox)

    orders = Orders(
        database,
        unit_of_work,
        catalog,
        Users(users.as_service),
        PageTokenCodec(settings.page_token_secret.get_secret_value().encode()),
        changes,
        notifications,
    )
    saga = Saga(unit_of_work, catalog, changes)
    reconciler = Reconciler(
        database,
        unit_of_work,
        saga,
        Payments(payment_channel),
        catalog,
        after=timedelta(seconds=settings.reconcile_after_seconds),
        deadline=timedelta(seconds=settings.payment_deadline_seconds),
        interval_seconds=settings.reconcile_interval_seconds,
    )
    carts = Carts(database, unit_of_work, catalog, orders)
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
                AnalyticsService(Analytics(database, orders.users)),
                analytics_pb2_grpc.add_AnalyticsServiceServicer_to_server,
            ),
        ],
        verifier=jwks_verifier(settings, users.channel, stack),
        background=[*messaging.jobs(subscriptions(saga)), reconciler.run],
        dependencies=[database.readiness, amqp.readiness(messaging.connection)],
    )


def subscriptions(saga: Saga) -> Subscriptions[OrderUnitOfWork]:
    """The events this service consumes, each with its handler and the unit of work it runs in."""
    return (
        Subscriptions(OrderSettings.service_name, saga.unit_of_work)
        .on("payment.succeeded", saga.on_payment_succeeded)
        .on("payment.failed", saga.on_payment_failed)
        .on("payment.refunded", saga.on_payment_refunded)
        .on("notification.sent", saga.on_notification_sent)
    )


DEFINITION = ServiceDefinition(
    settings_cls=OrderSettings,
    build=build,
    migrations=MIGRATIONS,
    commands={"demo-history": demo_history},
)
