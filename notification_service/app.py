"""Composition root of the notification service: builds every object it needs from settings."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

from ecommerce.notification.v1 import notification_pb2, notification_pb2_grpc
from meshkit.db import Database
from meshkit.server import ServiceRegistration
from meshkit.service import ServiceApp, ServiceDefinition
from notification_service.grpc_api import NotificationService
from notification_service.settings import NotificationSettings

MIGRATIONS = Path(__file__).parent / "migrations"


async def build(settings: NotificationSettings, stack: AsyncExitStack) -> ServiceApp:
    database = await stack.enter_async_context(Database(settings.database_url))
    del database  # used by the domain as it grows
    return ServiceApp(
        services=[
            ServiceRegistration(
                notification_pb2.DESCRIPTOR.services_by_name["NotificationService"].full_name,
                NotificationService(),
                notification_pb2_grpc.add_NotificationServiceServicer_to_server,
            ),
        ],
    )


DEFINITION = ServiceDefinition(
    settings_cls=NotificationSettings, build=build, migrations=MIGRATIONS
)
