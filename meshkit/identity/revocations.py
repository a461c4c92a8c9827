"""Access tokens revoked before they expire: announced by the user service, heard by every
verifier, checked on every call.

An access token is a signed statement that lives its whole lifetime. When the user service
deactivates an account, changes its role or its password, every token of that user issued
before that moment must stop working everywhere, at once, not when it expires:
- the user service keeps the moment in its database, in the change's transaction, then adds
  it to a sorted set in Redis (user id → moment, the latest kept) and publishes it on a
  channel (`RevocationAnnouncer`); an announcement Redis refused is retried until it is taken;
- every verifier (the gateway and each service) keeps the set in memory (`RevokedTokens`),
  reads it whole each time its subscription is confirmed, so that what it missed while away
  is caught up, and applies each message as it arrives, a millisecond after the change
  (`RevocationListener`). A check is a dictionary lookup.

Without Redis, only the user service's own checks see a revocation; the other processes
accept a revoked token until it expires, so keep `ACCESS_TOKEN_TTL_SECONDS` short there.
A verifier that loses its subscription logs a warning and keeps what it knew: it catches up
when the subscription is back, and meanwhile behaves as if Redis were not configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AsyncExitStack
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from meshkit.caching.invalidation import database_of
from meshkit.caching.redis_clients import connect_redis, connect_subscriber
from meshkit.caching.subscription import follow
from meshkit.context import Principal
from meshkit.failures import FailureStreak
from meshkit.identity.errors import TokenRevoked

logger = logging.getLogger(__name__)

# The sorted set of every revocation still worth knowing: member user id, score the moment.
REVOKED_KEY = "identity:revoked-before"
RETRY_AFTER_SECONDS = 1.0
# The longest an access token may live (`ACCESS_TOKEN_TTL_SECONDS` allows no more).
MAX_TOKEN_LIFETIME_SECONDS = 86_400


def revocations_channel(redis_url: str | None) -> str:
    """The channel of revocations, named after the database (channels are server-wide)."""
    return f"identity:revocations@{database_of(redis_url)}"


def encode(user_id: str, before: float) -> str:
    return f"{user_id} {before!r}"


def decode(message: bytes | str) -> tuple[str, float] | None:
    """The user id and moment a message names; None for anything else."""
    text = message.decode(errors="replace") if isinstance(message, bytes) else message
    user_id, _, before = text.partition(" ")
    try:
        return (user_id, float(before)) if user_id else None
    except ValueError:
        return None


class RevokedTokens:
    """Per user, the moment before which its access tokens are void."""

    def __init__(self) -> None:
        self._before: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._before)

    def revoke(self, user_id: str, before: float) -> None:
        """Void `user_id`'s tokens issued before `before`; a later moment than one known wins."""
        if before > self._before.get(user_id, float("-inf")):
            self._before[user_id] = before

    def load(self, revocations: Iterable[tuple[str, float]], *, now: float) -> None:
        """Everything known, from the set in Redis, merged with what this process heard; a
        revocation older than any token can live is forgotten (the user service keeps Redis's
        set as short, by its own token lifetime)."""
        for user_id, before in revocations:
            self.revoke(user_id, before)
        oldest = now - MAX_TOKEN_LIFETIME_SECONDS
        for user_id in [user for user, before in self._before.items() if before < oldest]:
            del self._before[user_id]

    def revoked_before(self, user_id: str) -> float | None:
        return self._before.get(user_id)

    def check(self, principal: Principal) -> Principal:
        """`principal`, unless its token was issued before its user's tokens were revoked."""
        before = self._before.get(principal.subject)
        if before is not None and principal.issued_at < before:
            raise TokenRevoked(
                "This token was revoked: the account was deactivated, or its role or password "
                "changed. Sign in again."
            )
        return principal


class RevocationListener:
    """Keeps a `RevokedTokens` current from Redis until closed."""

    def __init__(
        self, revoked: RevokedTokens, subscriber: Redis, reader: Redis, channel: str
    ) -> None:
        self.revoked = revoked
        self.subscriber = subscriber
        self.reader = reader
        self.channel = channel
        self._task: asyncio.Task[None] | None = None
        self._hearing = False
        self._warned = False
        self.confirmed = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="revocation listener")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _listen(self) -> None:
        while True:
            try:
                await self._follow()
            except (RedisError, OSError, TimeoutError) as error:
                self._lost(type(error).__name__)
            except Exception:
                logger.exception("the revocation listener failed")
                self._lost("a failure")
            await asyncio.sleep(RETRY_AFTER_SECONDS)

    def _lost(self, why: str) -> None:
        """Once per loss (or at start, when Redis never answered): a warning."""
        self.confirmed.clear()
        if self._hearing or not self._warned:
            self._hearing, self._warned = False, True
            logger.warning(
                "revocations unavailable (%s): tokens revoked meanwhile work until they "
                "expire, or until Redis answers again",
                why,
            )

    async def _follow(self) -> None:
        await follow(self.subscriber, self.channel, self._handle)

    async def _handle(self, message: Mapping[str, Any] | None, now: float) -> None:
        if message is None:
            return
        if message["type"] == "subscribe":
            # Subscribed first, read after: a revocation made in between is in both.
            stored = await self.reader.zrange(REVOKED_KEY, 0, -1, withscores=True)
            self.revoked.load(_revocations(stored), now=time.time())
            if not self._hearing:
                logger.info("hearing revocations (%d known)", len(self.revoked))
            self._hearing, self._warned = True, False
            self.confirmed.set()
        elif message["type"] == "message":
            revocation = decode(message["data"])
            if revocation is not None:
                self.revoked.revoke(*revocation)


def _revocations(stored: Iterable[Any]) -> Iterator[tuple[str, float]]:
    """The (user id, moment) pairs of the sorted set as `zrange` gives them with scores."""
    for member, score in stored:
        yield (member.decode() if isinstance(member, bytes) else str(member)), float(score)


class RevocationAnnouncer:
    """The user service's side: apply a revocation here, then tell every other process.

    `keep_seconds` is the longest an access token lives: a revocation older than that
    concerns no live token, and is dropped from Redis.
    """

    def __init__(
        self,
        revoked: RevokedTokens,
        redis: Redis | None,
        channel: str,
        *,
        keep_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.revoked = revoked
        self.redis = redis
        self.channel = channel
        self.keep_seconds = keep_seconds
        self.clock = clock
        self._unsent: dict[str, float] = {}
        self._retrying: asyncio.Task[None] | None = None
        self._failures = FailureStreak()

    async def aclose(self) -> None:
        if self._retrying is not None:
            self._retrying.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retrying
            self._retrying = None

    async def announce(self, user_id: str, before: float) -> None:
        """Revoke here at once, and in Redis before returning if it answers; otherwise keep
        trying in the background."""
        await self.restore({user_id: before})

    async def restore(self, revocations: Mapping[str, float]) -> None:
        """Announce every revocation given (those a restart finds in the database)."""
        for user_id, before in revocations.items():
            self.revoked.revoke(user_id, before)
            if self.redis is not None and before > self._unsent.get(user_id, float("-inf")):
                self._unsent[user_id] = before
        if not self._unsent:
            return
        if not await self._send():
            self._retry_soon()

    async def _send(self) -> bool:
        assert self.redis is not None
        unsent = dict(self._unsent)
        try:
            async with asyncio.timeout(1.0), self.redis.pipeline(transaction=True) as pipe:
                pipe.zadd(REVOKED_KEY, unsent, gt=True)
                pipe.zremrangebyscore(REVOKED_KEY, "-inf", self.clock() - self.keep_seconds)
                for user_id, before in unsent.items():
                    pipe.publish(self.channel, encode(user_id, before))
                await pipe.execute()
        except (RedisError, OSError, TimeoutError) as error:
            logger.log(
                self._failures.failed(),
                "%d revocation(s) not announced yet (%s); retrying",
                len(unsent),
                type(error).__name__,
            )
            return False
        if failed := self._failures.ended():
            logger.warning("revocations announced again after %d failures", failed)
        for user_id, before in unsent.items():
            if self._unsent.get(user_id) == before:
                del self._unsent[user_id]
        return True

    def _retry_soon(self) -> None:
        if self._retrying is None or self._retrying.done():
            self._retrying = asyncio.create_task(self._retry(), name="revocation retry")

    async def _retry(self) -> None:
        while self._unsent:
            await asyncio.sleep(RETRY_AFTER_SECONDS)
            await self._send()


def hear_revocations(redis_url: str | None, stack: AsyncExitStack) -> RevokedTokens:
    """A set of revocations kept current from Redis while `stack` is open; without Redis,
    one that stays empty."""
    revoked = RevokedTokens()
    if not redis_url:
        return revoked
    subscriber, reader = connect_subscriber(redis_url), connect_redis(redis_url, 1.0)
    stack.push_async_callback(subscriber.aclose)
    stack.push_async_callback(reader.aclose)
    listener = RevocationListener(revoked, subscriber, reader, revocations_channel(redis_url))
    listener.start()
    stack.push_async_callback(listener.aclose)
    return revoked


def open_revocation_announcer(
    revoked: RevokedTokens, redis_url: str | None, stack: AsyncExitStack, *, keep_seconds: float
) -> RevocationAnnouncer:
    """The user service's announcer, open while `stack` is; without Redis it only revokes in
    this process."""
    redis = None
    if redis_url:
        redis = connect_redis(redis_url, 1.0)
        stack.push_async_callback(redis.aclose)
    announcer = RevocationAnnouncer(
        revoked, redis, revocations_channel(redis_url), keep_seconds=keep_seconds
    )
    stack.push_async_callback(announcer.aclose)
    return announcer
