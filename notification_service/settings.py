"""Notification service configuration."""

from __future__ import annotations

from typing import ClassVar

from meshkit.settings import Secret, ServiceSettings, service_setting, setting


class NotificationSettings(ServiceSettings):
    service_name: ClassVar[str] = "notification_service"

    grpc_port: int = service_setting(50055, "NOTIFICATION_SERVICE_GRPC_PORT", ge=0, le=65535)
    database_url: str = service_setting("", "NOTIFICATION_SERVICE_DATABASE_URL")

    smtp_host: str = setting("127.0.0.1", "SMTP_HOST")
    # 1025: the local sink `make run` starts; a real relay is usually 587 with STARTTLS.
    smtp_port: int = setting(1025, "SMTP_PORT", ge=1, le=65535)
    smtp_starttls: bool = setting(False, "SMTP_STARTTLS")
    smtp_tls: bool = setting(False, "SMTP_TLS")
    smtp_username: str | None = setting(None, "SMTP_USERNAME")
    smtp_password: Secret | None = setting(None, "SMTP_PASSWORD")
    smtp_timeout_seconds: float = setting(10.0, "SMTP_TIMEOUT_SECONDS", gt=0)
    mail_from: str = setting("E-commerce mesh <orders@example.com>", "MAIL_FROM")
    # Retries of a failed send: exponential backoff from the base, capped; after the last
    # attempt the notification is kept as FAILED with the reason.
    mail_retry_base_seconds: float = setting(1.0, "MAIL_RETRY_BASE_SECONDS", gt=0)
    mail_retry_max_seconds: float = setting(300.0, "MAIL_RETRY_MAX_SECONDS", gt=0)
    mail_max_attempts: int = setting(12, "MAIL_MAX_ATTEMPTS", ge=1)
    # The mailer keeps its SMTP connection between emails: checked with a NOOP after this long
    # idle, closed after SMTP_KEEPALIVE_SECONDS with nothing to send.
    smtp_check_after_seconds: float = setting(1.0, "SMTP_CHECK_AFTER_SECONDS", ge=0)
    smtp_keepalive_seconds: float = setting(10.0, "SMTP_KEEPALIVE_SECONDS", ge=0)
    mail_poll_seconds: float = setting(1.0, "MAIL_POLL_SECONDS", gt=0)

    def __post_init__(self) -> None:
        super().__post_init__()
        # Set but empty means no login: compose and Kubernetes pass an unset variable as "".
        if not self.smtp_username:
            self.smtp_username = None
        if self.smtp_password is not None and not self.smtp_password.get_secret_value():
            self.smtp_password = None
