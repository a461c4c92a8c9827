"""User service configuration."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from meshkit.settings import (
    INSECURE_DEFAULT_PREFIX,
    Secret,
    ServiceSettings,
    service_setting,
    setting,
)

DEV_SERVICE_SECRET = INSECURE_DEFAULT_PREFIX + "service-secret"
CALLING_SERVICES = ("product_service", "order_service", "payment_service", "notification_service")


class UserSettings(ServiceSettings):
    service_name: ClassVar[str] = "user_service"

    grpc_port: int = service_setting(50052, "USER_SERVICE_GRPC_PORT", ge=0, le=65535)
    database_url: str = service_setting("", "USER_SERVICE_DATABASE_URL")

    # A directory of `<kid>.pem` RSA keys; in development the first one is generated.
    # Unset: `jwt-keys` under DATA_DIR.
    jwt_keys_dir: Path | None = setting(None, "JWT_KEYS_DIR")
    jwt_active_kid: str | None = setting(None, "JWT_ACTIVE_KID")
    access_token_ttl_seconds: int = setting(900, "ACCESS_TOKEN_TTL_SECONDS", ge=30, le=86_400)
    refresh_token_ttl_seconds: int = setting(30 * 86_400, "REFRESH_TOKEN_TTL_SECONDS", ge=60)
    service_token_ttl_seconds: int = setting(900, "SERVICE_TOKEN_TTL_SECONDS", ge=30)
    # JSON object: client id → secret, for services asking for service tokens.
    service_clients: dict[str, Secret] = setting(
        env="SERVICE_CLIENTS",
        default_factory=lambda: {name: Secret(DEV_SERVICE_SECRET) for name in CALLING_SERVICES},
    )
    bootstrap_admin_email: str | None = setting(None, "BOOTSTRAP_ADMIN_EMAIL")
    bootstrap_admin_password: Secret | None = setting(None, "BOOTSTRAP_ADMIN_PASSWORD")
    # OWASP's argon2id parameters; tests may lower them to run faster.
    argon2_memory_kib: int = setting(19_456, "ARGON2_MEMORY_KIB", ge=8)
    argon2_time_cost: int = setting(2, "ARGON2_TIME_COST", ge=1)

    @property
    def keys_dir(self) -> Path:
        return self.jwt_keys_dir or self.data_dir / "jwt-keys"

    def secret_problems(self) -> list[str]:
        found = super().secret_problems()
        weak = sorted(
            client
            for client, secret in self.service_clients.items()
            if secret.get_secret_value().startswith(INSECURE_DEFAULT_PREFIX)
        )
        if weak and not self.is_development:
            found.append(f"SERVICE_CLIENTS still holds development secrets for {', '.join(weak)}")
        return found
