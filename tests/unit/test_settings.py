"""Settings: bad values fail fast naming the variable; default secrets only in development."""

from __future__ import annotations

from typing import ClassVar

import pytest
from pydantic import Field, SecretStr

from meshkit.settings import (
    VAR_DIR,
    CommonSettings,
    ConfigurationError,
    ServiceSettings,
    load_settings,
    service_field,
)


class ExampleSettings(ServiceSettings):
    service_name: ClassVar[str] = "example_service"

    grpc_port: int = service_field(50999, "EXAMPLE_SERVICE_GRPC_PORT", ge=0, le=65535)
    database_url: str = service_field("", "EXAMPLE_SERVICE_DATABASE_URL")
    signing_secret: SecretStr = Field(
        SecretStr("insecure-dev-signing"), validation_alias="EXAMPLE_SIGNING_SECRET"
    )


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("APP_ENV", "LOG_LEVEL", "GRPC_PORT", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


def load(**overrides: object) -> ExampleSettings:
    return load_settings(ExampleSettings, _env_file=None, **overrides)


def test_defaults_give_sqlite_under_var() -> None:
    settings = load()
    assert settings.grpc_port == 50999
    assert settings.database_url == f"sqlite+aiosqlite:///{VAR_DIR / 'example_service.db'}"


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
        load_settings(CommonSettings, _env_file=None)
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
        settings = load_settings(settings_cls, _env_file=example)
        assert settings.amqp_url.startswith("amqp://")
    assert load_settings(ProductSettings, _env_file=example).grpc_port == 50051
    assert load_settings(UserSettings, _env_file=example).grpc_port == 50052
