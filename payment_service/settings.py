"""Payment service configuration."""

from __future__ import annotations

from typing import ClassVar

from meshkit.settings import ServiceSettings, service_field


class PaymentSettings(ServiceSettings):
    service_name: ClassVar[str] = "payment_service"

    grpc_port: int = service_field(50054, "PAYMENT_SERVICE_GRPC_PORT", ge=0, le=65535)
    database_url: str = service_field("", "PAYMENT_SERVICE_DATABASE_URL")
