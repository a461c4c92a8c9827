"""Composition root of the notification service: builds every object it needs from settings."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

from ecommerce.notification.v1 import notification_pb2, notification_pb2_grpc
from meshkit.data import Database
from meshkit.identity import jwks_verifier, link_user_service
from meshkit.messaging import Messaging, Subscriptions, amqp
from meshkit.rpc import Channels, PageTokenCodec, ServiceRegistration
from meshkit.service import ServiceApp, ServiceDefinition
from notification_service import models
from notification_service.emails import EmailRenderer
from notification_service.grpc_api import NotificationService
from notification_service.mailer import SmtpMailer
from notification_service.notifications import NOTIFIED_EVENTS, Notifications, Recipients
from notification_service.settings import NotificationSettings
from notification_service.unit_of_work import NotificationUnitOfWork

MIGRATIONS = Path(__file__).parent / "migrations"


async def build(settings: NotificationSettings, stack: AsyncExitStack) -> ServiceApp:
    database = await stack.enter_async_context(Database.from_settings(settings))
    messaging = await Messaging.open(
        settings, stack, database, outbox_table=None, inbox_table=models.inbox
    )

    channels = await stack.enter_async_context(Channels())
    users = link_user_service(settings, channels)

    notifications = Notifications(
        database,
        lambda: NotificationUnitOfWork(database),
        Recipients(users.as_service),
        EmailRenderer(),
        SmtpMailer(settings),
        PageTokenCodec(settings.page_token_secret.get_secret_value().encode()),
        retry_base_seconds=settings.mail_retry_base_seconds,
        retry_max_seconds=settings.mail_retry_max_seconds,
        max_attempts=settings.mail_max_attempts,
        poll_seconds=settings.mail_poll_seconds,
        keepalive_seconds=settings.smtp_keepalive_seconds,
    )
    return ServiceApp(
        services=[
            ServiceRegistration(
                notification_pb2.DESCRIPTOR.services_by_name["NotificationService"].full_name,
                NotificationService(notifications),
                notification_pb2_grpc.add_NotificationServiceServicer_to_server,
            )
        ],
        verifier=jwks_verifier(settings, users.channel, stack),
        background=[
            *messaging.jobs(subscriptions(notifications)),
            notifications.run_mailer,
        ],
        dependencies=[database.readiness, amqp.readiness(messaging.connection)],
    )


def subscriptions(notifications: Notifications) -> Subscriptions[NotificationUnitOfWork]:
    """The events this service consumes: every one it emails a user about, by one handler."""
    declared = Subscriptions(NotificationSettings.service_name, notifications.unit_of_work)
    for event_type in NOTIFIED_EVENTS:
        declared.on(event_type, notifications.on_event)
    return declared


DEFINITION = ServiceDefinition(
    settings_cls=NotificationSettings, build=build, migrations=MIGRATIONS
)
