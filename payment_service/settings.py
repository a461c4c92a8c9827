"""Payment service configuration."""

from __future__ import annotations

from typing import ClassVar

from meshkit.settings import ServiceSettings, service_setting, setting


class PaymentSettings(ServiceSettings):
    service_name: ClassVar[str] = "payment_service"

    grpc_port: int = service_setting(50054, "PAYMENT_SERVICE_GRPC_PORT", ge=0, le=65535)
    database_url: str = service_setting("", "PAYMENT_SERVICE_DATABASE_URL")
    # Charges above this many minor units are declined (amount_too_large).
    amount_limit_minor: int = setting(1_000_000, "PAYMENT_AMOUNT_LIMIT_MINOR", ge=1)
