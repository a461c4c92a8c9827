"""Notification service configuration."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr

from meshkit.settings import ServiceSettings, service_field


class NotificationSettings(ServiceSettings):
    service_name: ClassVar[str] = "notification_service"

    grpc_port: int = service_field(50055, "NOTIFICATION_SERVICE_GRPC_PORT", ge=0, le=65535)
    database_url: str = service_field("", "NOTIFICATION_SERVICE_DATABASE_URL")

    smtp_host: str = Field("127.0.0.1", validation_alias="SMTP_HOST")
    # 1025: the local sink `make run` starts; a real relay is usually 587 with STARTTLS.
    smtp_port: int = Field(1025, ge=1, le=65535, validation_alias="SMTP_PORT")
    smtp_starttls: bool = Field(False, validation_alias="SMTP_STARTTLS")
    smtp_tls: bool = Field(False, validation_alias="SMTP_TLS")
    smtp_username: str | None = Field(None, validation_alias="SMTP_USERNAME")
    smtp_password: SecretStr | None = Field(None, validation_alias="SMTP_PASSWORD")
    smtp_timeout_seconds: float = Field(10.0, gt=0, validation_alias="SMTP_TIMEOUT_SECONDS")
    mail_from: str = Field("E-commerce mesh <orders@example.com>", validation_alias="MAIL_FROM")
    # Retries of a failed send: exponential backoff from the base, capped; after the last
    # attempt the notification is kept as FAILED with the reason.
    mail_retry_base_seconds: float = Field(1.0, gt=0, validation_alias="MAIL_RETRY_BASE_SECONDS")
    mail_retry_max_seconds: float = Field(300.0, gt=0, validation_alias="MAIL_RETRY_MAX_SECONDS")
    mail_max_attempts: int = Field(12, ge=1, validation_alias="MAIL_MAX_ATTEMPTS")
    # The mailer keeps its SMTP connection between emails: checked with a NOOP after this long
    # idle, closed after SMTP_KEEPALIVE_SECONDS with nothing to send.
    smtp_check_after_seconds: float = Field(1.0, ge=0, validation_alias="SMTP_CHECK_AFTER_SECONDS")
    smtp_keepalive_seconds: float = Field(10.0, ge=0, validation_alias="SMTP_KEEPALIVE_SECONDS")
    mail_poll_seconds: float = Field(1.0, gt=0, validation_alias="MAIL_POLL_SECONDS")
