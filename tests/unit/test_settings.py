"""Settings: bad values fail fast naming the variable; default secrets only in development."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest

from meshkit.settings import (
    VAR_DIR,
    CommonSettings,
    ConfigurationError,
    LogLevel,
    Secret,
    ServiceSettings,
    load_migration_settings,
    load_settings,
    service_setting,
    setting,
)


class ExampleSettings(ServiceSettings):
    service_name: ClassVar[str] = "example_service"

    grpc_port: int = service_setting(50999, "EXAMPLE_SERVICE_GRPC_PORT", ge=0, le=65535)
    database_url: str = service_setting("", "EXAMPLE_SERVICE_DATABASE_URL")
    signing_secret: Secret = setting(Secret("insecure-dev-signing"), "EXAMPLE_SIGNING_SECRET")
    clients: dict[str, Secret] = setting(env="EXAMPLE_CLIENTS", default_factory=dict)
    keys_dir: Path | None = setting(None, "EXAMPLE_KEYS_DIR")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "APP_ENV",
        "LOG_LEVEL",
        "GRPC_PORT",
        "DATABASE_URL",
        "MIGRATE_ON_START",
        "DATA_DIR",
        "JWT_KEYS_DIR",
    ):
        monkeypatch.delenv(name, raising=False)


def load(**overrides: object) -> ExampleSettings:
    return load_settings(ExampleSettings, env_file=None, **overrides)


def test_defaults_give_sqlite_under_var() -> None:
    settings = load()
    assert settings.grpc_port == 50999
    assert settings.database_url == f"sqlite+aiosqlite:///{VAR_DIR / 'example_service.db'}"


def test_data_dir_moves_everything_a_service_writes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A container's root filesystem is read-only: one variable must move every default write.
    from user_service.settings import UserSettings

    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    assert load().database_url == f"sqlite+aiosqlite:///{tmp_path / 'example_service.db'}"
    users = load_settings(UserSettings, env_file=None)
    assert users.keys_dir == tmp_path / "jwt-keys"
    monkeypatch.setenv("JWT_KEYS_DIR", "/run/keys")
    assert load_settings(UserSettings, env_file=None).keys_dir == Path("/run/keys")


def test_bad_port_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXAMPLE_SERVICE_GRPC_PORT", "eighty")
    with pytest.raises(ConfigurationError) as raised:
        load()
    message = str(raised.value.code)
    assert "EXAMPLE_SERVICE_GRPC_PORT" in message
    assert "'eighty'" in message


def test_every_bad_variable_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_LEVEL", "LOUD")
    monkeypatch.setenv("RPC_TIMEOUT_SECONDS", "-1")
    with pytest.raises(ConfigurationError) as raised:
        load_settings(CommonSettings, env_file=None)
    names = " ".join(raised.value.problems)
    assert "LOG_LEVEL" in names
    assert "RPC_TIMEOUT_SECONDS" in names


def test_a_shutdown_deadline_within_the_grace_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHUTDOWN_GRACE_SECONDS", "10")
    monkeypatch.setenv("SHUTDOWN_DEADLINE_SECONDS", "10")
    with pytest.raises(ConfigurationError) as raised:
        load()
    assert "SHUTDOWN_DEADLINE_SECONDS must exceed SHUTDOWN_GRACE_SECONDS" in str(raised.value.code)
    monkeypatch.setenv("SHUTDOWN_DEADLINE_SECONDS", "12")
    assert load().shutdown_deadline_seconds == 12


def test_service_specific_variable_wins_over_generic(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://generic/db")
    assert load().database_url == "postgresql+asyncpg://generic/db"
    monkeypatch.setenv("EXAMPLE_SERVICE_DATABASE_URL", "postgresql+asyncpg://own/db")
    assert load().database_url == "postgresql+asyncpg://own/db"


@pytest.mark.parametrize("env", ["test", "production"])
def test_default_secret_refused_outside_development(
    monkeypatch: pytest.MonkeyPatch, env: str
) -> None:
    monkeypatch.setenv("APP_ENV", env)
    with pytest.raises(ConfigurationError) as raised:
        load()
    assert "EXAMPLE_SIGNING_SECRET" in str(raised.value.code)


def test_a_migration_needs_no_serving_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A migration Job is handed the database only; the serving secrets would stay at their
    # defaults, and must not stop it.
    from user_service.settings import UserSettings

    monkeypatch.setenv("APP_ENV", "production")
    assert load_migration_settings(ExampleSettings, env_file=None).app_env.value == "production"
    with pytest.raises(ConfigurationError, match="SERVICE_CLIENTS"):
        load_settings(UserSettings, env_file=None)
    load_migration_settings(UserSettings, env_file=None)
    # Settings wrong for every purpose are still refused.
    monkeypatch.setenv("SHUTDOWN_GRACE_SECONDS", "60")
    with pytest.raises(ConfigurationError, match="SHUTDOWN_DEADLINE_SECONDS"):
        load_migration_settings(ExampleSettings, env_file=None)


def test_real_secret_accepted_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("EXAMPLE_SIGNING_SECRET", "a-long-random-value")
    monkeypatch.setenv("PAGE_TOKEN_SECRET", "another-long-random-value")
    monkeypatch.setenv("SERVICE_CLIENT_SECRET", "a-third-long-random-value")
    assert load().signing_secret.get_secret_value() == "a-long-random-value"


def test_unknown_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "staging")
    with pytest.raises(ConfigurationError, match="APP_ENV"):
        load()


def test_the_example_configuration_loads_for_every_process(monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.settings import GatewaySettings
    from meshkit.settings import PROJECT_ROOT
    from notification_service.settings import NotificationSettings
    from order_service.settings import OrderSettings
    from payment_service.settings import PaymentSettings
    from product_service.settings import ProductSettings
    from user_service.settings import UserSettings

    example = PROJECT_ROOT / ".env.example"
    for settings_cls in (
        GatewaySettings,
        UserSettings,
        ProductSettings,
        OrderSettings,
        PaymentSettings,
        NotificationSettings,
    ):
        settings = load_settings(settings_cls, env_file=example)
        assert settings.amqp_url.startswith("amqp://")
    assert load_settings(ProductSettings, env_file=example).grpc_port == 50051
    assert load_settings(UserSettings, env_file=example).grpc_port == 50052


def test_each_type_is_read_from_its_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_LEVEL", "debug")
    monkeypatch.setenv("MIGRATE_ON_START", "off")
    monkeypatch.setenv("RPC_TIMEOUT_SECONDS", "2.5")
    monkeypatch.setenv("EXAMPLE_CLIENTS", '{"order_service": "s3cret"}')
    monkeypatch.setenv("EXAMPLE_KEYS_DIR", "/etc/keys")
    settings = load()
    assert settings.log_level is LogLevel.DEBUG
    assert settings.migrate_on_start is False
    assert settings.rpc_timeout_seconds == 2.5
    assert settings.clients == {"order_service": Secret("s3cret")}
    assert settings.keys_dir == Path("/etc/keys")


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("MIGRATE_ON_START", "maybe", "must be true or false"),
        ("EXAMPLE_SERVICE_GRPC_PORT", "80.5", "must be a whole number"),
        ("EXAMPLE_SERVICE_GRPC_PORT", "70000", "must be at most 65535"),
        ("SHUTDOWN_GRACE_SECONDS", "-1", "must be at least 0"),
        ("AMQP_NAMESPACE", "a b", "must match"),
        ("EXAMPLE_CLIENTS", "[1, 2]", "must be a JSON object"),
        ("EXAMPLE_CLIENTS", "{not json", "must be a JSON object"),
    ],
)
def test_a_bad_value_says_what_is_expected(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, says: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as raised:
        load()
    [problem] = raised.value.problems
    assert problem.startswith(name) and says in problem


def test_a_secret_is_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXAMPLE_CLIENTS", "hunter2-not-json")
    with pytest.raises(ConfigurationError) as raised:
        load()
    assert "hunter2" not in str(raised.value.code)
    monkeypatch.delenv("EXAMPLE_CLIENTS")
    settings = load_settings(ExampleSettings, env_file=None, EXAMPLE_SIGNING_SECRET="hunter2")
    assert "hunter2" not in repr(settings)


def test_the_environment_wins_over_the_env_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("example_service_grpc_port=50100\nRPC_TIMEOUT_SECONDS=3\n")
    assert load_settings(ExampleSettings, env_file=env_file).grpc_port == 50100
    monkeypatch.setenv("EXAMPLE_SERVICE_GRPC_PORT", "50200")
    settings = load_settings(ExampleSettings, env_file=env_file)
    assert (settings.grpc_port, settings.rpc_timeout_seconds) == (50200, 3)
    # Values given in code win over both, by field or by variable name.
    assert load_settings(ExampleSettings, env_file=env_file, grpc_port=1).grpc_port == 1
    assert load_settings(ExampleSettings, env_file=env_file, GRPC_PORT=2).grpc_port == 2


def test_an_unknown_setting_given_in_code_is_a_mistake() -> None:
    with pytest.raises(TypeError, match="GRPC_PROT"):
        load_settings(ExampleSettings, env_file=None, grpc_prot=1)
