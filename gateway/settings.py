"""Gateway configuration."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from meshkit.settings import CommonSettings


class GatewaySettings(CommonSettings):
    service_name: ClassVar[str] = "gateway"

    host: str = Field("0.0.0.0", validation_alias="GATEWAY_HOST")
    port: int = Field(8000, ge=0, le=65535, validation_alias="GATEWAY_PORT")
    workers: int = Field(1, ge=1, validation_alias="GATEWAY_WORKERS")
    # Comma-separated origins allowed by CORS; empty allows none.
    cors_origins: str = Field("", validation_alias="CORS_ORIGINS")
    max_body_bytes: int = Field(1_048_576, gt=0, validation_alias="MAX_BODY_BYTES")
    readiness_timeout_seconds: float = Field(
        1.0, gt=0, validation_alias="READINESS_TIMEOUT_SECONDS"
    )

    @property
    def cors_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]
