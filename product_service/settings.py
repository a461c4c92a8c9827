"""Product service configuration."""

from __future__ import annotations

from typing import ClassVar

from meshkit.settings import ServiceSettings, service_field


class ProductSettings(ServiceSettings):
    service_name: ClassVar[str] = "product_service"

    grpc_port: int = service_field(50051, "PRODUCT_SERVICE_GRPC_PORT", ge=0, le=65535)
    database_url: str = service_field("", "PRODUCT_SERVICE_DATABASE_URL")
