"""Revocations through a real Redis: announced, heard, caught up after a gap, and retried
while Redis is away."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack

import pytest
from redis.asyncio import Redis

from localmesh.faultproxy import FaultyProxy, Mode
from meshkit.caching import connect_redis, connect_subscriber
from meshkit.context import Principal, Role
from meshkit.identity import TokenRevoked
from meshkit.identity.revocations import (
    MAX_TOKEN_LIFETIME_SECONDS,
    REVOKED_KEY,
    RevocationAnnouncer,
    RevocationListener,
    RevokedTokens,
    decode,
    encode,
    hear_revocations,
    open_revocation_announcer,
)
from tests.conftest import REDIS_URL
from tests.support import eventually

TOKEN_LIFETIME = 900.0


def _principal(subject: str, issued_at: float) -> Principal:
    return Principal(subject=subject, role=Role.CUSTOMER, token="t", issued_at=issued_at)


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    await client.delete(REVOKED_KEY)
    yield client
    await client.delete(REVOKED_KEY)
    await client.aclose()


def test_a_token_issued_before_its_users_revocation_is_refused() -> None:
    revoked = RevokedTokens()
    revoked.revoke("u1", 100.0)
    with pytest.raises(TokenRevoked):
        revoked.check(_principal("u1", 99.999))
    assert revoked.check(_principal("u1", 100.0)).subject == "u1"
    assert revoked.check(_principal("u2", 1.0)).subject == "u2"
    # An older moment heard late (a reload, a retried message) never undoes a later one.
    revoked.revoke("u1", 50.0)
    assert revoked.revoked_before("u1") == 100.0
    # A reload forgets what no live token can predate any more.
    revoked.load([("u2", 1_000_000.0)], now=100.0 + MAX_TOKEN_LIFETIME_SECONDS + 1)
    assert revoked.revoked_before("u1") is None
    assert revoked.revoked_before("u2") == 1_000_000.0


def test_messages_round_trip_and_garbage_is_ignored() -> None:
    assert decode(encode("u1", 1765000000.123)) == ("u1", 1765000000.123)
    assert decode(b"u1 1765000000.5") == ("u1", 1765000000.5)
    for garbage in (b"", b"u1", b"u1 soon", b" 12", b"\xff\xfe"):
        assert decode(garbage) is None


async def test_a_revocation_reaches_every_listener_within_a_second(redis: Redis) -> None:
    async with AsyncExitStack() as stack:
        listeners = [hear_revocations(REDIS_URL, stack) for _ in range(3)]
        own = RevokedTokens()
        announcer = open_revocation_announcer(own, REDIS_URL, stack, keep_seconds=TOKEN_LIFETIME)
        # The listeners are subscribed once a revocation made now would reach them.
        await eventually(_subscribed(redis), timeout=5, message="three subscriptions")
        before = time.time()
        started = time.monotonic()
        await announcer.announce("user-1", before)
        assert own.revoked_before("user-1") == before  # at once, here
        for revoked in listeners:
            await eventually(
                _knows(revoked, "user-1", before),
                timeout=1.0,
                interval=0.01,
                message="the revocation heard",
            )
        assert time.monotonic() - started < 1.0
        stored = await redis.zscore(REVOKED_KEY, "user-1")
        assert stored == pytest.approx(before)


async def test_a_listener_catches_up_on_what_it_missed(redis: Redis) -> None:
    async with FaultyProxy("127.0.0.1", 6379) as proxy, AsyncExitStack() as stack:
        database = REDIS_URL.rsplit("/", 1)[1]
        revoked = hear_revocations(f"redis://{proxy.endpoint}/{database}", stack)
        announcer = open_revocation_announcer(
            RevokedTokens(), REDIS_URL, stack, keep_seconds=TOKEN_LIFETIME
        )
        await announcer.announce("early", 10.0 + time.time())
        # Made before the listener first subscribed: read from the set once it does.
        await eventually(_knows(revoked, "early"), timeout=5, message="loaded")
        # Cut off: the message is lost to this listener, and found on its way back.
        proxy.set_mode(Mode.RESET)
        await announcer.announce("missed", time.time())
        assert revoked.revoked_before("missed") is None
        proxy.set_mode(Mode.FORWARD)
        await eventually(_knows(revoked, "missed"), timeout=10, message="caught up")


async def test_an_announcement_redis_refused_is_retried_until_taken(redis: Redis) -> None:
    async with FaultyProxy("127.0.0.1", 6379) as proxy:
        proxy.set_mode(Mode.RESET)
        database = REDIS_URL.rsplit("/", 1)[1]
        own = RevokedTokens()
        async with AsyncExitStack() as stack:
            announcer = open_revocation_announcer(
                own, f"redis://{proxy.endpoint}/{database}", stack, keep_seconds=TOKEN_LIFETIME
            )
            before = time.time()
            await announcer.announce("user-2", before)
            # Refused by Redis, still revoked in the process that made the change.
            assert own.revoked_before("user-2") == before
            assert await redis.zscore(REVOKED_KEY, "user-2") is None
            proxy.set_mode(Mode.FORWARD)

            async def taken() -> bool:
                return await redis.zscore(REVOKED_KEY, "user-2") is not None

            await eventually(taken, timeout=10, message="the retried announcement")


async def test_revocations_older_than_a_token_lives_are_dropped_from_redis(
    redis: Redis,
) -> None:
    announcer = RevocationAnnouncer(
        RevokedTokens(), redis, "identity:revocations@test", keep_seconds=60
    )
    await announcer.announce("old", time.time() - 120)
    await announcer.announce("new", time.time())
    assert await redis.zscore(REVOKED_KEY, "old") is None
    assert await redis.zscore(REVOKED_KEY, "new") is not None


def _knows(
    revoked: RevokedTokens, user_id: str, before: float | None = None
) -> Callable[[], Awaitable[bool]]:
    """A probe: whether `revoked` knows of `user_id`'s revocation (at `before`, if given)."""

    async def probe() -> bool:
        known = revoked.revoked_before(user_id)
        return known is not None and (before is None or known == before)

    return probe


def _subscribed(redis: Redis, count: int = 3) -> Callable[[], Awaitable[bool]]:
    async def probe() -> bool:
        channel = "identity:revocations@" + REDIS_URL.rsplit("/", 1)[1]
        counts = dict(await redis.pubsub_numsub(channel))
        return int(counts.get(channel.encode(), 0)) >= count

    return probe


async def test_a_listener_that_never_heard_redis_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="meshkit.identity.revocations")
    async with FaultyProxy("127.0.0.1", 6379) as proxy:
        proxy.set_mode(Mode.RESET)
        url = f"redis://{proxy.endpoint}/0"
        listener = RevocationListener(
            RevokedTokens(), connect_subscriber(url), connect_redis(url, 1.0), "channel"
        )
        attempts = 0
        follow = listener._follow

        async def counted() -> None:
            nonlocal attempts
            attempts += 1
            await follow()

        listener._follow = counted  # type: ignore[method-assign]
        listener.start()
        try:

            async def tried_thrice() -> bool:
                return attempts >= 3

            await eventually(tried_thrice, timeout=10, message="three attempts")
        finally:
            await listener.aclose()
    warnings = [r.getMessage() for r in caplog.records if r.name.endswith("revocations")]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("revocations unavailable")
