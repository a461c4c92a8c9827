"""Login and write rate limits, in memory and in Redis, and in memory while Redis is down."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import redis.asyncio as redis
from fastapi import FastAPI, Request
from prometheus_client import CollectorRegistry

from gateway.middleware import install_middleware
from gateway.problems import install_problem_handlers
from gateway.ratelimit import MemoryCounters, RateLimits, RedisCounters
from gateway.settings import GatewaySettings
from meshkit.errors import ResourceExhausted
from meshkit.settings import load_settings
from tests.conftest import REDIS_URL
from tests.support import FakeClock, free_port

WINDOW = 60


LimitsFactory = Callable[..., RateLimits]


@pytest.fixture
def clock() -> FakeClock:
    # Wall time: the Redis counters' windows are in seconds since the epoch.
    return FakeClock(1_700_000_000.25)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
async def backend_url(request: pytest.FixtureRequest) -> str | None:
    """None for in-memory counters, or the URL of a freshly flushed Redis database."""
    if request.param == "memory":
        return None
    client = redis.Redis.from_url(REDIS_URL)
    try:
        await client.flushdb()
    finally:
        await client.aclose()
    return REDIS_URL


@pytest.fixture
async def make_limits(
    backend_url: str | None, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[LimitsFactory]:
    """Builds RateLimits on the backend under test; closes them all afterwards."""
    built: list[RateLimits] = []

    def make(**limits: Any) -> RateLimits:
        settings = load_settings(
            GatewaySettings,
            env_file=None,
            redis_url=backend_url,
            login_window_seconds=WINDOW,
            write_window_seconds=WINDOW,
            **limits,
        )
        built.append(RateLimits.from_settings(settings, clock=clock))
        return built[-1]

    yield make
    for limits in built:
        await limits.close()
    if backend_url is not None:
        # The in-memory fallback would pass every test too: prove Redis did the counting.
        fallbacks = [
            r.getMessage() for r in caplog.get_records("call") if r.name == "gateway.ratelimit"
        ]
        assert fallbacks == []
        client = redis.Redis.from_url(backend_url)
        try:
            assert await client.keys("ratelimit:*"), "nothing was counted in Redis"
        finally:
            await client.aclose()


def build_app(limits: RateLimits) -> FastAPI:
    settings = load_settings(GatewaySettings, env_file=None, redis_url=None)
    app = FastAPI()
    install_problem_handlers(app)
    app.state.rate_limits = limits
    install_middleware(app, settings, limits, CollectorRegistry())

    @app.post("/v1/items", status_code=201)
    async def create_item() -> dict[str, str]:
        return {"id": "item-1"}

    @app.get("/v1/items")
    async def list_items() -> list[str]:
        return []

    @app.post("/v1/auth/login")
    async def login(request: Request, body: dict[str, str]) -> dict[str, str]:
        client = request.client.host if request.client else "unknown"
        await request.app.state.rate_limits.check_login(client, body["email"])
        return {"access_token": "t"}

    return app


@asynccontextmanager
async def client_for(app: FastAPI, host: str = "10.0.0.1") -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(host, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield client


async def test_writes_over_the_limit_get_429(make_limits: LimitsFactory, clock: FakeClock) -> None:
    app = build_app(make_limits(write_limit_per_client=2))
    async with client_for(app) as client, client_for(app, "10.0.0.2") as neighbour:
        assert [(await client.post("/v1/items")).status_code for _ in range(2)] == [201, 201]

        limited = await client.post("/v1/items", headers={"X-Request-ID": "too-many"})
        assert limited.status_code == 429
        assert limited.headers["content-type"] == "application/problem+json"
        assert limited.headers["retry-after"] == str(WINDOW)
        assert limited.headers["x-request-id"] == "too-many"
        assert limited.json()["request_id"] == "too-many"
        assert (await client.put("/v1/items")).status_code == 429

        # Reads, the login route (it has its own limit) and other clients are not counted.
        assert (await client.get("/v1/items")).status_code == 200
        login = await client.post("/v1/auth/login", json={"email": "a@example.com"})
        assert login.status_code == 200
        assert (await neighbour.post("/v1/items")).status_code == 201

        clock.advance(20)
        assert (await client.post("/v1/items")).headers["retry-after"] == str(WINDOW - 20)
        clock.advance(WINDOW - 20)
        assert (await client.post("/v1/items")).status_code == 201


async def test_login_limit_per_client(make_limits: LimitsFactory, clock: FakeClock) -> None:
    limits = make_limits(login_limit_per_client=3, login_limit_per_account=100)
    for n in range(3):
        await limits.check_login("10.0.0.1", f"user{n}@example.com")

    with pytest.raises(ResourceExhausted) as raised:
        await limits.check_login("10.0.0.1", "someone-new@example.com")
    assert raised.value.message == "Too many login attempts; retry later."
    assert raised.value.retry_after == WINDOW
    await limits.check_login("10.0.0.2", "someone-new@example.com")

    clock.advance(45)
    with pytest.raises(ResourceExhausted) as raised:
        await limits.check_login("10.0.0.1", "someone-new@example.com")
    assert raised.value.retry_after == WINDOW - 45
    clock.advance(15)
    await limits.check_login("10.0.0.1", "someone-new@example.com")


async def test_login_limit_per_account(make_limits: LimitsFactory, clock: FakeClock) -> None:
    limits = make_limits(login_limit_per_client=100, login_limit_per_account=2)
    await limits.check_login("10.0.0.1", "Ann@Example.com")
    await limits.check_login("10.0.0.2", "ann@example.com")

    # Another address and another spelling of the same email count against the same account.
    with pytest.raises(ResourceExhausted) as raised:
        await limits.check_login("10.0.0.3", " ANN@example.COM ")
    assert raised.value.retry_after == WINDOW
    await limits.check_login("10.0.0.3", "bob@example.com")

    clock.advance(WINDOW)
    await limits.check_login("10.0.0.3", "ann@example.com")


async def test_login_limit_answers_429_with_retry_after(
    make_limits: LimitsFactory, clock: FakeClock
) -> None:
    app = build_app(make_limits(login_limit_per_account=1))
    async with client_for(app) as client:
        credentials = {"email": "ann@example.com"}
        assert (await client.post("/v1/auth/login", json=credentials)).status_code == 200
        clock.advance(10)
        limited = await client.post("/v1/auth/login", json=credentials)
    assert limited.status_code == 429
    assert limited.headers["content-type"] == "application/problem+json"
    assert limited.headers["retry-after"] == str(WINDOW - 10)
    assert "login" in limited.json()["detail"].lower()


@pytest.mark.integration
async def test_redis_counts_are_shared_between_gateways(clock: FakeClock) -> None:
    flusher = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    await flusher.flushdb()
    settings = load_settings(
        GatewaySettings, env_file=None, redis_url=REDIS_URL, login_limit_per_account=2
    )
    first = RateLimits.from_settings(settings, clock=clock)
    second = RateLimits.from_settings(settings, clock=clock)
    try:
        await first.check_login("10.0.0.1", "ann@example.com")
        await second.check_login("10.0.0.2", "ann@example.com")
        with pytest.raises(ResourceExhausted):
            await first.check_login("10.0.0.3", "ann@example.com")
        await second.check_write("10.0.0.1")
        keys = set(await flusher.keys("ratelimit:*"))
        assert {
            "ratelimit:login:account:ann@example.com",
            "ratelimit:login:client:10.0.0.1",
            "ratelimit:write:client:10.0.0.1",
        } <= keys
        assert 0 < await flusher.ttl("ratelimit:login:account:ann@example.com") <= 60
    finally:
        await first.close()
        await second.close()
        await flusher.aclose()


async def test_redis_down_limits_from_memory_and_warns_once(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.ratelimit")
    settings = load_settings(
        GatewaySettings,
        env_file=None,
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        write_limit_per_client=3,
        login_limit_per_account=2,
    )
    limits = RateLimits.from_settings(settings, clock=clock)
    try:
        async with client_for(build_app(limits)) as client:
            statuses = [(await client.post("/v1/items")).status_code for _ in range(5)]
        await limits.check_login("10.0.0.1", "ann@example.com")
        await limits.check_login("10.0.0.1", "ann@example.com")
        with pytest.raises(ResourceExhausted):
            await limits.check_login("10.0.0.1", "ann@example.com")
    finally:
        await limits.close()
    assert statuses == [201, 201, 201, 429, 429]
    warnings = [r for r in caplog.records if r.name == "gateway.ratelimit"]
    assert len(warnings) == 1
    assert "Redis is unavailable" in warnings[0].getMessage()


async def test_redis_counters_count_in_memory_while_redis_is_down() -> None:
    fallback = MemoryCounters()
    counters = RedisCounters.from_url(f"redis://127.0.0.1:{free_port()}/0", fallback)
    try:
        counts = [(await counters.hit("k", WINDOW, 100.0)).count for _ in range(3)]
    finally:
        await counters.close()
    assert counts == [1, 2, 3]


async def test_memory_counters_forget_closed_windows_and_stay_bounded() -> None:
    counters = MemoryCounters(max_keys=10, sweep_interval=1.0)
    for n in range(50):
        await counters.hit(f"client-{n}", WINDOW, 100.0)
    assert len(counters) <= 10
    late = await counters.hit("late", WINDOW, 100.0 + WINDOW + 1)
    assert late.count == 1
    assert len(counters) == 1
