"""Announces changes on a Redis channel, for the `InvalidatedCache`s that listen there.

Besides what changed, an announcer says every second that it is there (`HEARTBEAT`): a cache
that must hear its writers (the gateway's, of answers that another service's writes change)
keeps nothing while no writer is heard, so a writer configured without Redis, or with
another Redis, leaves the cache empty rather than stale.

Redis is never fatal here: a change that could not be announced is logged, and the next
announcement that goes through is preceded by `ALL`, which empties every listening cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from contextlib import AsyncExitStack

from redis.asyncio import Redis
from redis.exceptions import RedisError

from meshkit.invalidation import ALL, HEARTBEAT
from meshkit.redisconn import connect_redis

logger = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_SECONDS = 1.0
# Warnings about announcements that failed: at most one per this many seconds.
WARNING_INTERVAL_SECONDS = 30.0


class ChangeAnnouncer:
    def __init__(self, redis: Redis, channel: str, *, timeout_seconds: float = 0.2) -> None:
        self.redis = redis
        self.channel = channel
        self.timeout = timeout_seconds
        self._missed = False
        self._last_warning = float("-inf")
        self._heartbeat: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._heartbeat = asyncio.create_task(self._beat(), name=f"heartbeat on {self.channel}")

    async def aclose(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        # Changes already committed are still announced.
        while self._pending:
            await asyncio.wait(set(self._pending))

    async def changed(self, message: str) -> None:
        """Announce a committed change, before answering whoever made it: their next read,
        wherever it goes, then finds every cache already told."""
        try:
            async with asyncio.timeout(self.timeout):
                if self._missed:
                    await self.redis.publish(self.channel, ALL)
                    self._missed = False
                await self.redis.publish(self.channel, message)
        except (RedisError, OSError, TimeoutError) as error:
            self._missed = True
            now = time.monotonic()
            if now - self._last_warning >= WARNING_INTERVAL_SECONDS:
                self._last_warning = now
                logger.warning(
                    "a change could not be announced on %s (%s); caches listening there are "
                    "emptied once Redis answers again",
                    self.channel,
                    type(error).__name__,
                )

    def changed_soon(self, message: str) -> None:
        """`changed`, from code that cannot wait (a transaction's after-commit callbacks)."""
        task = asyncio.create_task(self.changed(message))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _beat(self) -> None:
        while True:
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                async with asyncio.timeout(self.timeout):
                    await self.redis.publish(self.channel, HEARTBEAT)
            await asyncio.sleep(HEARTBEAT_INTERVAL_SECONDS)


def open_announcer(
    redis_url: str | None, channel: str, stack: AsyncExitStack, *, timeout_seconds: float = 0.2
) -> ChangeAnnouncer | None:
    """An announcer on `channel`, beating until `stack` closes; none without Redis."""
    if not redis_url:
        return None
    redis = connect_redis(redis_url, timeout_seconds)
    stack.push_async_callback(redis.aclose)
    announcer = ChangeAnnouncer(redis, channel, timeout_seconds=timeout_seconds)
    announcer.start()
    stack.push_async_callback(announcer.aclose)
    return announcer
