"""Configuration from the environment and `.env`, validated once at start-up.

Settings are dataclasses read by `load_settings`: each field names its variables, its bounds,
and its type, which says how the variable's text is read. Plain dataclasses rather than
pydantic-settings: validating some twenty variables once kept pydantic and its core resident
in every process, a sizeable part of a service's memory budget.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any, ClassVar, TypeVar, dataclass_transform

from dotenv import dotenv_values

# Repository root: `var/` (SQLite files, local mail) lives beside the packages.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Where a process writes by default; DATA_DIR moves it (a container's root is read-only).
VAR_DIR = PROJECT_ROOT / "var"

# Any secret whose value starts with this is a development default and refused elsewhere.
INSECURE_DEFAULT_PREFIX = "insecure-dev-"

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"
    CRITICAL = "CRITICAL"

    @classmethod
    def _missing_(cls, value: object) -> LogLevel | None:
        return cls.__members__.get(str(value).upper())


class LogFormat(StrEnum):
    """How log lines are written: JSON for log stores, console for a person at a terminal."""

    CONSOLE = "console"
    JSON = "json"

    @classmethod
    def _missing_(cls, value: object) -> LogFormat | None:
        return cls.__members__.get(str(value).upper())


class Secret:
    """A value kept out of reprs and logs; `get_secret_value()` reads it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class ConfigurationError(SystemExit):
    """A bad setting: uncaught, it ends the process with exit status 1 and a message naming it."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("configuration error:\n" + "\n".join(f"  {p}" for p in problems))


def setting(
    default: Any = dataclasses.MISSING,
    env: str | tuple[str, ...] = (),
    *,
    default_factory: Callable[[], Any] | None = None,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    pattern: str | None = None,
) -> Any:
    """A field read from the variable `env` (or the first set of several; by default the
    field's name in capitals), checked against the bounds given."""
    metadata = {
        "env": (env,) if isinstance(env, str) else env,
        "bounds": {k: v for k, v in (("ge", ge), ("gt", gt), ("le", le)) if v is not None},
        "pattern": pattern,
    }
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def service_setting(default: Any, env: str, **checks: Any) -> Any:
    """A field read from `<SERVICE>_<NAME>` first, then the generic `<NAME>`.

    One `.env` serves every process on a laptop, so per-service names win; a container
    running a single service can use the plain name.
    """
    return setting(default, (env, env.split("_SERVICE_", 1)[-1]), **checks)


@dataclass_transform(kw_only_default=True, field_specifiers=(setting, service_setting))
class Settings:
    """Base of every settings class: each subclass is a keyword-only dataclass."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        dataclasses.dataclass(kw_only=True)(cls)

    def problems(self) -> list[str]:
        """What is wrong across fields, once each field is valid on its own."""
        return []

    def secret_problems(self) -> list[str]:
        """Secrets unfit for this environment; checked only where the process serves."""
        return []


def env_names(settings_cls: type[Settings], field: str) -> tuple[str, ...]:
    """The variables a field is read from, first one first."""
    found = {f.name: f for f in dataclasses.fields(settings_cls)}.get(field)  # type: ignore[arg-type]
    names: tuple[str, ...] = found.metadata.get("env", ()) if found else ()
    return names or (field.upper(),)


def env_name(settings_cls: type[Settings], field: str) -> str:
    """The variable(s) a field is read from, for error messages."""
    return " or ".join(env_names(settings_cls, field))


class CommonSettings(Settings):
    """Settings every process reads. Services extend it with their own fields."""

    # Set by each subclass; names the process in logs and health.
    service_name: ClassVar[str] = "service"

    app_env: Environment = setting(Environment.DEVELOPMENT, "APP_ENV")
    # Everything a process writes goes under here (or the system's temporary directory).
    data_dir: Path = setting(VAR_DIR, "DATA_DIR")
    log_level: LogLevel = setting(LogLevel.INFO, "LOG_LEVEL")
    # JSON wherever a machine reads the logs; `make run` asks for console (localmesh).
    log_format: LogFormat = setting(LogFormat.JSON, "LOG_FORMAT")
    grpc_host: str = setting("0.0.0.0", "GRPC_HOST")
    amqp_url: str = setting("amqp://guest:guest@127.0.0.1:5672/", "AMQP_URL")
    # Prefixes the exchange and queue names: separate meshes can share one broker.
    amqp_namespace: str = setting("", "AMQP_NAMESPACE", pattern=r"^[A-Za-z0-9_-]*$")
    redis_url: str | None = setting(None, "REDIS_URL")
    jwt_issuer: str = setting("ecommerce-mesh", "JWT_ISSUER")
    jwt_audience: str = setting("ecommerce-api", "JWT_AUDIENCE")
    # Outgoing gRPC calls with no inbound deadline to inherit get this one.
    rpc_timeout_seconds: float = setting(5.0, "RPC_TIMEOUT_SECONDS", gt=0)
    # After health turns NOT_SERVING, in-flight calls get this long to finish.
    shutdown_grace_seconds: float = setting(5.0, "SHUTDOWN_GRACE_SECONDS", ge=0)
    # A service still shutting down this long after SIGTERM logs what is stuck and exits 1.
    shutdown_deadline_seconds: float = setting(15.0, "SHUTDOWN_DEADLINE_SECONDS", gt=0)
    user_service_addr: str = setting("127.0.0.1:50052", "USER_SERVICE_ADDR")
    product_service_addr: str = setting("127.0.0.1:50051", "PRODUCT_SERVICE_ADDR")
    order_service_addr: str = setting("127.0.0.1:50053", "ORDER_SERVICE_ADDR")
    payment_service_addr: str = setting("127.0.0.1:50054", "PAYMENT_SERVICE_ADDR")
    notification_service_addr: str = setting("127.0.0.1:50055", "NOTIFICATION_SERVICE_ADDR")

    def problems(self) -> list[str]:
        found = super().problems()
        if self.shutdown_deadline_seconds <= self.shutdown_grace_seconds:
            found.append(
                "SHUTDOWN_DEADLINE_SECONDS must exceed SHUTDOWN_GRACE_SECONDS: closing "
                "connections takes time after the grace for in-flight calls"
            )
        return found

    def secret_problems(self) -> list[str]:
        found = super().secret_problems()
        if self.app_env is not Environment.DEVELOPMENT:
            insecure = [
                env_name(type(self), field.name)
                for field in dataclasses.fields(self)
                if isinstance(value := getattr(self, field.name), Secret)
                and value.get_secret_value().startswith(INSECURE_DEFAULT_PREFIX)
            ]
            if insecure:
                found.append(
                    f"{', '.join(insecure)} still hold development defaults; "
                    f"set real secrets when APP_ENV={self.app_env.value}"
                )
        return found

    @property
    def is_development(self) -> bool:
        return self.app_env is Environment.DEVELOPMENT


DEFAULT_DB_POOL_SIZE = 10


class ServiceSettings(CommonSettings):
    """Settings of a gRPC service that owns a database."""

    grpc_port: int = setting(0, "GRPC_PORT", ge=0, le=65535)
    # Empty: SQLite under var/, named after the service.
    database_url: str = setting("", "DATABASE_URL")
    migrate_on_start: bool = setting(True, "MIGRATE_ON_START")
    # Connections per process: the pool, plus as many again under bursts, plus half as many
    # on the driver's own pool (on PostgreSQL: event handling, the outbox relay, hot reads).
    # Mind the server's max_connections across every replica of every service sharing it.
    db_pool_size: int = setting(DEFAULT_DB_POOL_SIZE, "DB_POOL_SIZE", ge=1, le=100)
    # Where /metrics is served for Prometheus; 0 turns it off.
    metrics_port: int = setting(0, "METRICS_PORT", ge=0, le=65535)
    # This service's secret for client-credentials service tokens (client id: its name).
    service_client_secret: Secret = setting(
        Secret(INSECURE_DEFAULT_PREFIX + "service-secret"), "SERVICE_CLIENT_SECRET"
    )
    # Event consumers retry a failing handler with exponential backoff between these bounds,
    # until the queue's delivery limit moves the message to the dead-letter queue.
    consumer_retry_base_seconds: float = setting(0.2, "CONSUMER_RETRY_BASE_SECONDS", gt=0)
    consumer_retry_max_seconds: float = setting(5.0, "CONSUMER_RETRY_MAX_SECONDS", gt=0)
    # A handler failing because a dependency is down (`meshkit.failures`) is retried
    # through the retry queues for this long from its first such failure, without spending
    # those deliveries; after it, it is treated as any other failure.
    consumer_outage_window_seconds: float = setting(3600.0, "CONSUMER_OUTAGE_WINDOW_SECONDS", gt=0)
    # At most this many messages, those that arrived while one was being handled, share one
    # transaction (`meshkit.messaging.batches`); 1 gives each its own.
    consumer_batch_limit: int = setting(32, "CONSUMER_BATCH_LIMIT", ge=1, le=1000)
    # A batch lasts this long from its first handler's start; the messages whose turn has not
    # come by then go on in the next one.
    consumer_batch_seconds: float = setting(0.05, "CONSUMER_BATCH_SECONDS", ge=0, le=10)
    # Signs page tokens so a client cannot forge a cursor.
    page_token_secret: Secret = setting(
        Secret(INSECURE_DEFAULT_PREFIX + "page-tokens"), "PAGE_TOKEN_SECRET"
    )
    # Health reports NOT_SERVING while the database or the broker does not answer: checked
    # this often, a check slower than the timeout counting as no answer.
    readiness_interval_seconds: float = setting(2.0, "READINESS_INTERVAL_SECONDS", gt=0)
    readiness_check_timeout_seconds: float = setting(
        1.0, "READINESS_CHECK_TIMEOUT_SECONDS", gt=0, le=60
    )
    # A client's connection is closed (GOAWAY) after about this long, so that it reconnects
    # and spreads its calls over the replicas there are now; 0 keeps connections for ever.
    grpc_max_connection_age_seconds: float = setting(30.0, "GRPC_MAX_CONNECTION_AGE_SECONDS", ge=0)

    def __post_init__(self) -> None:
        if not self.database_url:
            self.database_url = self.sqlite_default()

    def sqlite_default(self) -> str:
        return f"sqlite+aiosqlite:///{self.data_dir / (self.service_name + '.db')}"


S = TypeVar("S", bound=Settings)

# The default `.env`: the one in the working directory, as `make run` starts the processes.
DOT_ENV = Path(".env")


def load_settings(settings_cls: type[S], *, env_file: Path | None = DOT_ENV, **overrides: Any) -> S:
    """Settings from `overrides` (by field or variable name), the environment, then
    `env_file`; raises ConfigurationError naming every bad variable at once."""
    return _load(settings_cls, env_file, overrides, require_secrets=True)


def load_migration_settings(
    settings_cls: type[S], *, env_file: Path | None = DOT_ENV, **overrides: Any
) -> S:
    """`load_settings` for a process that only migrates the database: it is not refused for
    serving secrets it never uses, so a migration Job need not be handed them."""
    return _load(settings_cls, env_file, overrides, require_secrets=False)


def _load(
    settings_cls: type[S],
    env_file: Path | None,
    overrides: Mapping[str, Any],
    *,
    require_secrets: bool,
) -> S:
    source = _upper_keys(dotenv_values(env_file) if env_file and env_file.is_file() else {})
    source.update(_upper_keys(os.environ))
    given = {key.upper(): value for key, value in overrides.items()}
    fields = dataclasses.fields(settings_cls)  # type: ignore[arg-type]
    known = {
        name
        for field in fields
        for name in (field.name.upper(), *env_names(settings_cls, field.name))
    }
    if unknown := sorted(set(given) - known):
        raise TypeError(f"{settings_cls.__name__} has no setting {', '.join(unknown)}")
    hints = typing.get_type_hints(settings_cls)
    values: dict[str, Any] = {}
    problems: list[str] = []
    for field in fields:
        names = env_names(settings_cls, field.name)
        raw = _first(given, (field.name.upper(), *names))
        if raw is _ABSENT:
            raw = _first(source, names)
        if raw is _ABSENT:
            continue
        try:
            values[field.name] = _checked(_read(raw, hints[field.name]), field.metadata)
        except (ValueError, TypeError) as exc:
            shown = "" if _is_secret(hints[field.name]) else f" (got {raw!r})"
            problems.append(f"{' or '.join(names)}: {exc}{shown}")
    if problems:
        raise ConfigurationError(problems)
    settings = settings_cls(**values)
    problems = settings.problems()
    if require_secrets:
        problems += settings.secret_problems()
    if problems:
        raise ConfigurationError(problems)
    return settings


_ABSENT: Any = object()


def _upper_keys(values: Mapping[str, str | None]) -> dict[str, Any]:
    return {key.upper(): value for key, value in values.items() if value is not None}


def _first(source: Mapping[str, Any], names: Iterable[str]) -> Any:
    for name in names:
        if name in source:
            return source[name]
    return _ABSENT


def _is_secret(kind: Any) -> bool:
    return Secret in (kind, *typing.get_args(kind))


def _read(raw: Any, kind: Any) -> Any:
    """The value of type `kind` that `raw` (a variable's text, or a value given) stands for."""
    if isinstance(kind, types.UnionType):
        options = [option for option in typing.get_args(kind) if option is not type(None)]
        if raw is None:
            return None
        return _read(raw, options[0])
    origin = typing.get_origin(kind)
    if origin is dict:
        _, value_kind = typing.get_args(kind)
        try:
            parsed = json.loads(raw) if isinstance(raw, str) else raw
        except json.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            raise ValueError("must be a JSON object")
        return {str(key): _read(value, value_kind) for key, value in parsed.items()}
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise ValueError("must be true or false")
    if kind is int:
        if isinstance(raw, bool) or not isinstance(raw, int | str):
            raise ValueError("must be a whole number")
        try:
            return int(raw)
        except ValueError:
            raise ValueError("must be a whole number") from None
    if kind is float:
        try:
            return float(raw)
        except (TypeError, ValueError):
            raise ValueError("must be a number") from None
    if isinstance(kind, type) and issubclass(kind, Enum):
        try:
            return kind(raw)
        except ValueError:
            allowed = ", ".join(str(member.value) for member in kind)
            raise ValueError(f"must be one of {allowed}") from None
    if kind is Secret:
        return raw if isinstance(raw, Secret) else Secret(str(raw))
    if kind is Path:
        return Path(raw)
    if kind is str:
        if not isinstance(raw, str):
            raise ValueError("must be text")
        return raw
    raise TypeError(f"settings of type {kind!r} are not supported")


def _checked(value: Any, metadata: Mapping[str, Any]) -> Any:
    bounds = metadata.get("bounds", {})
    if "ge" in bounds and value < bounds["ge"]:
        raise ValueError(f"must be at least {bounds['ge']:g}")
    if "gt" in bounds and value <= bounds["gt"]:
        raise ValueError(f"must be greater than {bounds['gt']:g}")
    if "le" in bounds and value > bounds["le"]:
        raise ValueError(f"must be at most {bounds['le']:g}")
    pattern = metadata.get("pattern")
    if pattern is not None and not re.fullmatch(pattern, value):
        raise ValueError(f"must match {pattern}")
    return value
