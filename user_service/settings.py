"""User service configuration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

from pydantic import Field, SecretStr, field_validator, model_validator

from meshkit.settings import INSECURE_DEFAULT_PREFIX, VAR_DIR, ServiceSettings, service_field

DEV_SERVICE_SECRET = INSECURE_DEFAULT_PREFIX + "service-secret"
CALLING_SERVICES = ("product_service", "order_service", "payment_service", "notification_service")


class UserSettings(ServiceSettings):
    service_name: ClassVar[str] = "user_service"

    grpc_port: int = service_field(50052, "USER_SERVICE_GRPC_PORT", ge=0, le=65535)
    database_url: str = service_field("", "USER_SERVICE_DATABASE_URL")

    # A directory of `<kid>.pem` RSA keys; in development the first one is generated.
    jwt_keys_dir: Path = Field(VAR_DIR / "jwt-keys", validation_alias="JWT_KEYS_DIR")
    jwt_active_kid: str | None = Field(None, validation_alias="JWT_ACTIVE_KID")
    access_token_ttl_seconds: int = Field(
        900, ge=30, le=86_400, validation_alias="ACCESS_TOKEN_TTL_SECONDS"
    )
    refresh_token_ttl_seconds: int = Field(
        30 * 86_400, ge=60, validation_alias="REFRESH_TOKEN_TTL_SECONDS"
    )
    service_token_ttl_seconds: int = Field(900, ge=30, validation_alias="SERVICE_TOKEN_TTL_SECONDS")
    # JSON object: client id → secret, for services asking for service tokens.
    service_clients: dict[str, SecretStr] = Field(
        default_factory=lambda: {name: SecretStr(DEV_SERVICE_SECRET) for name in CALLING_SERVICES},
        validation_alias="SERVICE_CLIENTS",
    )
    bootstrap_admin_email: str | None = Field(None, validation_alias="BOOTSTRAP_ADMIN_EMAIL")
    bootstrap_admin_password: SecretStr | None = Field(
        None, validation_alias="BOOTSTRAP_ADMIN_PASSWORD"
    )
    # OWASP's argon2id parameters; tests may lower them to run faster.
    argon2_memory_kib: int = Field(19_456, ge=8, validation_alias="ARGON2_MEMORY_KIB")
    argon2_time_cost: int = Field(2, ge=1, validation_alias="ARGON2_TIME_COST")

    @field_validator("service_clients", mode="before")
    @classmethod
    def _parse_clients(cls, value: object) -> object:
        return json.loads(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _refuse_default_client_secrets(self) -> UserSettings:
        if self.is_development:
            return self
        weak = sorted(
            client
            for client, secret in self.service_clients.items()
            if secret.get_secret_value().startswith(INSECURE_DEFAULT_PREFIX)
        )
        if weak:
            raise ValueError(
                f"SERVICE_CLIENTS still holds development secrets for {', '.join(weak)}"
            )
        return self
