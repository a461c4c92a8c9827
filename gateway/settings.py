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

    # Rate limits: at most N requests per window; counters in Redis when REDIS_URL is set.
    login_limit_per_client: int = Field(20, ge=1, validation_alias="LOGIN_LIMIT_PER_CLIENT")
    login_limit_per_account: int = Field(5, ge=1, validation_alias="LOGIN_LIMIT_PER_ACCOUNT")
    login_window_seconds: int = Field(60, ge=1, validation_alias="LOGIN_WINDOW_SECONDS")
    write_limit_per_client: int = Field(120, ge=1, validation_alias="WRITE_LIMIT_PER_CLIENT")
    write_window_seconds: int = Field(60, ge=1, validation_alias="WRITE_WINDOW_SECONDS")

    @property
    def cors_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]
