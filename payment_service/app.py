"""Composition root of the payment service: builds every object it needs from settings."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

from ecommerce.payment.v1 import payment_pb2, payment_pb2_grpc
from meshkit import amqp
from meshkit.channels import Channels, create_channel
from meshkit.db import Database
from meshkit.identity import jwks_verifier
from meshkit.inbox import EventConsumer
from meshkit.outbox import Outbox, OutboxRelay
from meshkit.server import ServiceRegistration
from meshkit.service import ServiceApp, ServiceDefinition
from payment_service import models
from payment_service.grpc_api import PaymentService
from payment_service.payments import Payments
from payment_service.provider import SimulatedProvider
from payment_service.settings import PaymentSettings

MIGRATIONS = Path(__file__).parent / "migrations"
SERVICE_NAME = "payment_service"


async def build(settings: PaymentSettings, stack: AsyncExitStack) -> ServiceApp:
    database = await stack.enter_async_context(Database(settings.database_url))
    connection = await amqp.connect(settings.amqp_url, name=SERVICE_NAME)
    topology = amqp.Topology(settings.amqp_namespace)
    await topology.declare_all(connection)
    channels = await stack.enter_async_context(Channels())
    user_channel = channels.add(
        "user_service",
        create_channel(settings.user_service_addr, timeout_seconds=settings.rpc_timeout_seconds),
    )

    outbox = Outbox(models.outbox, SERVICE_NAME)
    payments = Payments(database, outbox, SimulatedProvider(settings.amount_limit_minor))
    relay = OutboxRelay(database, outbox, connection, topology)
    consumer = EventConsumer(
        database,
        models.inbox,
        connection,
        topology,
        SERVICE_NAME,
        {"order.created": payments.on_order_created},
        retry_base_seconds=settings.consumer_retry_base_seconds,
        retry_max_seconds=settings.consumer_retry_max_seconds,
    )
    return ServiceApp(
        services=[
            ServiceRegistration(
                payment_pb2.DESCRIPTOR.services_by_name["PaymentService"].full_name,
                PaymentService(payments),
                payment_pb2_grpc.add_PaymentServiceServicer_to_server,
            )
        ],
        verifier=jwks_verifier(settings, user_channel),
        background=[relay.run, consumer.run],
    )


DEFINITION = ServiceDefinition(settings_cls=PaymentSettings, build=build, migrations=MIGRATIONS)
