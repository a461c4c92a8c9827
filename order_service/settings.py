"""Order service configuration."""

from __future__ import annotations

from typing import ClassVar

from meshkit.settings import ServiceSettings, service_setting


class OrderSettings(ServiceSettings):
    service_name: ClassVar[str] = "order_service"

    grpc_port: int = service_setting(50053, "ORDER_SERVICE_GRPC_PORT", ge=0, le=65535)
    database_url: str = service_setting("", "ORDER_SERVICE_DATABASE_URL")
