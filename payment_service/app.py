"""Composition root of the payment service: builds every object it needs from settings."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

from ecommerce.payment.v1 import payment_pb2, payment_pb2_grpc
from meshkit.data import Database
from meshkit.identity import jwks_verifier
from meshkit.messaging import Messaging, Subscriptions, amqp
from meshkit.rpc import Channels, ServiceRegistration, create_channel
from meshkit.service import ServiceApp, ServiceDefinition
from payment_service import models
from payment_service.grpc_api import PaymentService
from payment_service.payments import Payments
from payment_service.provider import SimulatedProvider
from payment_service.settings import PaymentSettings
from payment_service.unit_of_work import PaymentUnitOfWork

MIGRATIONS = Path(__file__).parent / "migrations"


async def build(settings: PaymentSettings, stack: AsyncExitStack) -> ServiceApp:
    database = await stack.enter_async_context(Database.from_settings(settings))
    messaging = await Messaging.open(
        settings, stack, database, outbox_table=models.outbox, inbox_table=models.inbox
    )
    channels = await stack.enter_async_context(Channels())
    user_channel = channels.add(
        "user_service",
        create_channel(settings.user_service_addr, timeout_seconds=settings.rpc_timeout_seconds),
    )

    payments = Payments(
        database,
        lambda: PaymentUnitOfWork(database, messaging.outbox),
        SimulatedProvider(settings.amount_limit_minor),
    )
    return ServiceApp(
        services=[
            ServiceRegistration(
                payment_pb2.DESCRIPTOR.services_by_name["PaymentService"].full_name,
                PaymentService(payments),
                payment_pb2_grpc.add_PaymentServiceServicer_to_server,
            )
        ],
        verifier=jwks_verifier(settings, user_channel, stack),
        background=messaging.jobs(subscriptions(payments)),
        dependencies=[database.readiness, amqp.readiness(messaging.connection)],
    )


def subscriptions(payments: Payments) -> Subscriptions[PaymentUnitOfWork]:
    """The events this service consumes, each with its handler and the unit of work it runs in."""
    return (
        Subscriptions(PaymentSettings.service_name, payments.unit_of_work)
        .on("order.created", payments.on_order_created)
        .on("order.cancelled", payments.on_order_cancelled)
    )


DEFINITION = ServiceDefinition(settings_cls=PaymentSettings, build=build, migrations=MIGRATIONS)
