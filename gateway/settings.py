"""Gateway configuration."""

from __future__ import annotations

from typing import ClassVar

from meshkit.settings import CommonSettings, setting


class GatewaySettings(CommonSettings):
    service_name: ClassVar[str] = "gateway"

    host: str = setting("0.0.0.0", "GATEWAY_HOST")
    port: int = setting(8000, "GATEWAY_PORT", ge=0, le=65535)
    workers: int = setting(1, "GATEWAY_WORKERS", ge=1)
    # Comma-separated origins allowed by CORS; empty allows none.
    cors_origins: str = setting("", "CORS_ORIGINS")
    max_body_bytes: int = setting(1_048_576, "MAX_BODY_BYTES", gt=0)
    readiness_timeout_seconds: float = setting(1.0, "READINESS_TIMEOUT_SECONDS", gt=0)

    # Rate limits: at most N requests per window; counters in Redis when REDIS_URL is set.
    login_limit_per_client: int = setting(20, "LOGIN_LIMIT_PER_CLIENT", ge=1)
    login_limit_per_account: int = setting(5, "LOGIN_LIMIT_PER_ACCOUNT", ge=1)
    login_window_seconds: int = setting(60, "LOGIN_WINDOW_SECONDS", ge=1)
    write_limit_per_client: int = setting(120, "WRITE_LIMIT_PER_CLIENT", ge=1)
    write_window_seconds: int = setting(60, "WRITE_WINDOW_SECONDS", ge=1)

    # The gateway's own cache of product, listing and order answers (only when REDIS_URL is
    # set; 0 turns it off), each kept exact by its service's announcements through Redis: the
    # lifetime only bounds a message lost unnoticed. The size is the catalog's, and the orders'.
    answer_cache_ttl_seconds: float = setting(
        60.0, "GATEWAY_ANSWER_CACHE_TTL_SECONDS", ge=0, le=3600
    )
    answer_cache_max_mb: float = setting(16.0, "GATEWAY_ANSWER_CACHE_MAX_MB", gt=0, le=4096)

    @property
    def cors_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]
