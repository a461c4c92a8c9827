"""Following one Redis channel: every message handed on as it comes, and a connection that
has gone quiet without an error noticed by pinging it."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from redis.asyncio import Redis

# How often the subscription is pinged when quiet, and how long without any answer means
# the connection is dead although no error says so.
PING_INTERVAL_SECONDS = 1.0
SILENCE_LIMIT_SECONDS = 3.0

# Given each message (a subscription's confirmation included) and when it came; or None and
# the time, at each wake-up with nothing to read.
Handler = Callable[[Mapping[str, Any] | None, float], Awaitable[None]]


async def follow(subscriber: Redis, channel: str, handle: Handler) -> None:
    """Subscribe to `channel` and hand on what comes until the connection fails: a Redis
    error, or TimeoutError once it answered nothing, not even a ping, for
    `SILENCE_LIMIT_SECONDS`. Every confirmation of the subscription (a client's silent
    reconnection included) follows a gap in which messages may have been missed."""
    async with subscriber.pubsub() as pubsub:
        await pubsub.subscribe(channel)
        heard = time.monotonic()
        while True:
            message = await pubsub.get_message(timeout=PING_INTERVAL_SECONDS)
            now = time.monotonic()
            await handle(message, now)
            if message is not None:
                heard = now
                continue
            if now - heard > SILENCE_LIMIT_SECONDS:
                raise TimeoutError("no answer from Redis on the subscription")
            await pubsub.ping()
