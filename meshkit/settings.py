"""Configuration from the environment and `.env`, validated once at start-up."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

# Repository root: `var/` (SQLite files, local mail) lives beside the packages.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
VAR_DIR = PROJECT_ROOT / "var"

# Any secret whose value starts with this is a development default and refused elsewhere.
INSECURE_DEFAULT_PREFIX = "insecure-dev-"


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class ConfigurationError(SystemExit):
    """A bad setting: uncaught, it ends the process with exit status 1 and a message naming it."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("configuration error:\n" + "\n".join(f"  {p}" for p in problems))


class CommonSettings(BaseSettings):
    """Settings every process reads. Services extend it with their own fields."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    # Set by each subclass; names the process in logs and health.
    service_name: ClassVar[str] = "service"

    app_env: Environment = Field(Environment.DEVELOPMENT, validation_alias="APP_ENV")
    log_level: str = Field("INFO", validation_alias="LOG_LEVEL")
    grpc_host: str = Field("0.0.0.0", validation_alias="GRPC_HOST")
    amqp_url: str = Field("amqp://guest:guest@127.0.0.1:5672/", validation_alias="AMQP_URL")
    # Prefixes the exchange and queue names: separate meshes can share one broker.
    amqp_namespace: str = Field("", pattern=r"^[A-Za-z0-9_-]*$", validation_alias="AMQP_NAMESPACE")
    redis_url: str | None = Field(None, validation_alias="REDIS_URL")
    jwt_issuer: str = Field("ecommerce-mesh", validation_alias="JWT_ISSUER")
    jwt_audience: str = Field("ecommerce-api", validation_alias="JWT_AUDIENCE")
    # Outgoing gRPC calls with no inbound deadline to inherit get this one.
    rpc_timeout_seconds: float = Field(5.0, gt=0, validation_alias="RPC_TIMEOUT_SECONDS")
    # After health turns NOT_SERVING, in-flight calls get this long to finish.
    shutdown_grace_seconds: float = Field(5.0, ge=0, validation_alias="SHUTDOWN_GRACE_SECONDS")
    # A service still shutting down this long after SIGTERM logs what is stuck and exits 1.
    shutdown_deadline_seconds: float = Field(
        15.0, gt=0, validation_alias="SHUTDOWN_DEADLINE_SECONDS"
    )
    user_service_addr: str = Field("127.0.0.1:50052", validation_alias="USER_SERVICE_ADDR")
    product_service_addr: str = Field("127.0.0.1:50051", validation_alias="PRODUCT_SERVICE_ADDR")
    order_service_addr: str = Field("127.0.0.1:50053", validation_alias="ORDER_SERVICE_ADDR")
    payment_service_addr: str = Field("127.0.0.1:50054", validation_alias="PAYMENT_SERVICE_ADDR")
    notification_service_addr: str = Field(
        "127.0.0.1:50055", validation_alias="NOTIFICATION_SERVICE_ADDR"
    )

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @model_validator(mode="after")
    def _deadline_after_grace(self) -> CommonSettings:
        if self.shutdown_deadline_seconds <= self.shutdown_grace_seconds:
            raise ValueError(
                "SHUTDOWN_DEADLINE_SECONDS must exceed SHUTDOWN_GRACE_SECONDS: closing "
                "connections takes time after the grace for in-flight calls"
            )
        return self

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> CommonSettings:
        if self.app_env is Environment.DEVELOPMENT:
            return self
        insecure = [
            env_name(type(self), name)
            for name in type(self).model_fields
            if isinstance(value := getattr(self, name), SecretStr)
            and value.get_secret_value().startswith(INSECURE_DEFAULT_PREFIX)
        ]
        if insecure:
            raise ValueError(
                f"{', '.join(insecure)} still hold development defaults; "
                f"set real secrets when APP_ENV={self.app_env.value}"
            )
        return self

    @property
    def is_development(self) -> bool:
        return self.app_env is Environment.DEVELOPMENT


class ServiceSettings(CommonSettings):
    """Settings of a gRPC service that owns a database."""

    grpc_port: int = Field(0, ge=0, le=65535)
    database_url: str = ""
    migrate_on_start: bool = Field(True, validation_alias="MIGRATE_ON_START")
    # Connections per process: the pool, plus as many again under bursts, plus half as many
    # for hot reads on the driver's own pool where a service has them (order and user services).
    # Mind the server's max_connections across every replica of every service sharing it.
    db_pool_size: int = Field(10, ge=1, le=100, validation_alias="DB_POOL_SIZE")
    # Where /metrics is served for Prometheus; 0 turns it off.
    metrics_port: int = Field(0, ge=0, le=65535, validation_alias="METRICS_PORT")
    # This service's secret for client-credentials service tokens (client id: its name).
    service_client_secret: SecretStr = Field(
        SecretStr(INSECURE_DEFAULT_PREFIX + "service-secret"),
        validation_alias="SERVICE_CLIENT_SECRET",
    )
    # Event consumers retry a failing handler with exponential backoff between these bounds,
    # until the queue's delivery limit moves the message to the dead-letter queue.
    consumer_retry_base_seconds: float = Field(
        0.2, gt=0, validation_alias="CONSUMER_RETRY_BASE_SECONDS"
    )
    consumer_retry_max_seconds: float = Field(
        5.0, gt=0, validation_alias="CONSUMER_RETRY_MAX_SECONDS"
    )
    # Signs page tokens so a client cannot forge a cursor.
    page_token_secret: SecretStr = Field(
        SecretStr(INSECURE_DEFAULT_PREFIX + "page-tokens"), validation_alias="PAGE_TOKEN_SECRET"
    )

    def sqlite_default(self) -> str:
        return f"sqlite+aiosqlite:///{VAR_DIR / (self.service_name + '.db')}"

    @model_validator(mode="after")
    def _default_database(self) -> ServiceSettings:
        if not self.database_url:
            self.database_url = self.sqlite_default()
        return self


def service_field(default: Any, env: str, **kwargs: Any) -> Any:
    """A field read from `<SERVICE>_<NAME>` first, then the generic `<NAME>`.

    One `.env` serves every process on a laptop, so per-service names win; a container
    running a single service can use the plain name.
    """
    return Field(
        default, validation_alias=AliasChoices(env, env.split("_SERVICE_", 1)[-1]), **kwargs
    )


def env_name(settings_cls: type[BaseSettings], field: str) -> str:
    """The environment variable a field is read from, for error messages."""
    info = settings_cls.model_fields.get(field)
    if info is None:
        return field.upper()
    alias = info.validation_alias
    if isinstance(alias, str):
        return alias
    if isinstance(alias, AliasChoices):
        return " or ".join(str(choice) for choice in alias.choices)
    return field.upper()


S = TypeVar("S", bound=BaseSettings)


def load_settings(settings_cls: type[S], **overrides: Any) -> S:
    """Build settings or raise ConfigurationError naming every bad variable."""
    try:
        return settings_cls(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            name = env_name(settings_cls, field) if field else "settings"
            value = error.get("input")
            shown = "" if field == "" or isinstance(value, dict) else f" (got {value!r})"
            problems.append(f"{name}: {error['msg']}{shown}")
        raise ConfigurationError(problems) from None
