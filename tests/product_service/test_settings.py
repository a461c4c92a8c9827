"""The product service's cache settings: names, defaults, and refusals."""

from __future__ import annotations

import pytest

from meshkit.settings import ConfigurationError, load_settings
from product_service.settings import ProductSettings

CACHE_VARIABLES = (
    "REDIS_URL",
    "PRODUCT_CACHE_TTL_SECONDS",
    "LISTING_CACHE_TTL_SECONDS",
    "POPULAR_PRODUCT_TTL_SECONDS",
    "POPULAR_PRODUCT_READS",
    "CACHE_TIMEOUT_SECONDS",
    "CACHE_RETRY_AFTER_SECONDS",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CACHE_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_defaults() -> None:
    settings = load_settings(ProductSettings, env_file=None)
    assert settings.redis_url is None
    assert (
        settings.product_cache_ttl_seconds,
        settings.listing_cache_ttl_seconds,
        settings.popular_product_ttl_seconds,
        settings.popular_product_reads,
        settings.cache_timeout_seconds,
        settings.cache_retry_after_seconds,
    ) == (60, 30, 600, 20, 0.2, 5.0)


def test_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    values = dict(
        zip(CACHE_VARIABLES, ("redis://cache:6379/0", "5", "7", "9", "3", "0.1", "2"), strict=True)
    )
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(ProductSettings, env_file=None)
    assert settings.redis_url == "redis://cache:6379/0"
    assert settings.listing_cache_ttl_seconds == 7
    assert settings.cache_retry_after_seconds == 2


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PRODUCT_CACHE_TTL_SECONDS", "0"),
        ("CACHE_TIMEOUT_SECONDS", "0"),
        ("POPULAR_PRODUCT_READS", "0"),
        ("POPULAR_PRODUCT_TTL_SECONDS", "30"),  # shorter than a normal entry's 60
    ],
)
def test_bad_values_are_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as raised:
        load_settings(ProductSettings, env_file=None)
    assert name in str(raised.value)
