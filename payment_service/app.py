"""Composition root of the payment service: builds every object it needs from settings."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

from ecommerce.payment.v1 import payment_pb2, payment_pb2_grpc
from meshkit.db import Database
from meshkit.server import ServiceRegistration
from meshkit.service import ServiceApp, ServiceDefinition
from payment_service.grpc_api import PaymentService
from payment_service.settings import PaymentSettings

MIGRATIONS = Path(__file__).parent / "migrations"


async def build(settings: PaymentSettings, stack: AsyncExitStack) -> ServiceApp:
    database = await stack.enter_async_context(Database(settings.database_url))
    del database  # used by the domain as it grows
    return ServiceApp(
        services=[
            ServiceRegistration(
                payment_pb2.DESCRIPTOR.services_by_name["PaymentService"].full_name,
                PaymentService(),
                payment_pb2_grpc.add_PaymentServiceServicer_to_server,
            ),
        ],
    )


DEFINITION = ServiceDefinition(settings_cls=PaymentSettings, build=build, migrations=MIGRATIONS)
