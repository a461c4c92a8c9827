"""Notification service configuration."""

from __future__ import annotations

from typing import ClassVar

from meshkit.settings import ServiceSettings, service_field


class NotificationSettings(ServiceSettings):
    service_name: ClassVar[str] = "notification_service"

    grpc_port: int = service_field(50055, "NOTIFICATION_SERVICE_GRPC_PORT", ge=0, le=65535)
    database_url: str = service_field("", "NOTIFICATION_SERVICE_DATABASE_URL")
