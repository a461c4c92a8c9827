"""Announces changes on a Redis channel, for the `InvalidatedCache`s that listen there.

Besides what changed, a writer says every second that it is there (`HEARTBEAT`): a cache
that must hear its writers (the gateway's, of answers that another service's writes change)
keeps nothing while no writer is heard, so a writer configured without Redis, or with
another Redis, leaves the cache empty rather than stale.

Redis is never fatal here: a change that could not be announced is logged, and the next
message that goes through, a heartbeat within a second, is preceded by `ALL`, which empties
every listening cache (a heartbeat already under way when the change failed may arrive
before it). A writer that cannot reach Redis at all sends no heartbeat either, and the
caches that must hear it turn off within seconds, unless another replica of the same
service is still heard: a cache knows that some writer is there, not that all are.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

from redis.asyncio import Redis
from redis.exceptions import RedisError

from meshkit.caching.invalidation import ALL, HEARTBEAT
from meshkit.caching.redis_clients import connect_redis

logger = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_SECONDS = 1.0
# Warnings about announcements that failed: at most one per this many seconds.
WARNING_INTERVAL_SECONDS = 30.0


class Heartbeat:
    """Calls `beat` every `HEARTBEAT_INTERVAL_SECONDS` until closed; a failed beat is skipped
    (the beat itself says whether it failed)."""

    def __init__(self, beat: Callable[[], Awaitable[object]], name: str) -> None:
        self.beat = beat
        self.name = name
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.beat()
            except Exception:
                # A heartbeat missed is a cache turned off for a while, never a dead writer.
                logger.exception("%s failed", self.name)
            await asyncio.sleep(HEARTBEAT_INTERVAL_SECONDS)


class ChangeAnnouncer:
    """Publishes a writer's changes, and its heartbeat, on one channel."""

    def __init__(self, redis: Redis, channel: str, *, timeout_seconds: float = 0.2) -> None:
        self.redis = redis
        self.channel = channel
        self.timeout = timeout_seconds
        # Failed announcements, and how many of them an `ALL` that went through covered.
        self._misses = 0
        self._covered = 0
        self._last_warning = float("-inf")
        self._pending: set[asyncio.Task[None]] = set()

    async def aclose(self) -> None:
        """Once the changes already committed are announced."""
        while self._pending:
            await asyncio.wait(set(self._pending))

    async def changed(self, message: str) -> None:
        """Announce a committed change, before answering whoever made it: their next read,
        wherever it goes, then finds every cache already told. Shielded: a caller that gives
        up meanwhile does not take the announcement with it."""
        task = asyncio.create_task(self._publish(message))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        await asyncio.shield(task)

    def changed_soon(self, message: str) -> None:
        """`changed`, from code that cannot wait (a transaction's after-commit callbacks)."""
        task = asyncio.create_task(self._publish(message))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def beat(self) -> None:
        await self._publish(HEARTBEAT)

    async def _publish(self, message: str) -> None:
        misses = self._misses
        try:
            async with asyncio.timeout(self.timeout):
                if misses != self._covered:
                    await self.redis.publish(self.channel, ALL)
                    # Only what had failed before: a failure meanwhile needs an ALL of its own.
                    self._covered = max(self._covered, misses)
                await self.redis.publish(self.channel, message)
        except (RedisError, OSError, TimeoutError) as error:
            if message == HEARTBEAT:
                return  # no change lost: the listening caches turn off if beats stay away
            self._misses += 1
            now = time.monotonic()
            if now - self._last_warning >= WARNING_INTERVAL_SECONDS:
                self._last_warning = now
                logger.warning(
                    "a change could not be announced on %s (%s); caches listening there are "
                    "emptied once Redis answers again",
                    self.channel,
                    type(error).__name__,
                )
        except BaseException:
            if message != HEARTBEAT:
                self._misses += 1
            raise


def open_announcer(
    redis_url: str | None, channel: str, stack: AsyncExitStack, *, timeout_seconds: float = 0.2
) -> ChangeAnnouncer | None:
    """An announcer on `channel`, beating until `stack` closes; none without Redis."""
    if not redis_url:
        return None
    redis = connect_redis(redis_url, timeout_seconds)
    stack.push_async_callback(redis.aclose)
    announcer = ChangeAnnouncer(redis, channel, timeout_seconds=timeout_seconds)
    stack.push_async_callback(announcer.aclose)
    heartbeat = Heartbeat(announcer.beat, f"heartbeat on {channel}")
    heartbeat.start()
    stack.push_async_callback(heartbeat.aclose)
    return announcer
