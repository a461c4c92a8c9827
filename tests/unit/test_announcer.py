"""The announcer's bookkeeping, on a stand-in for Redis whose publishes fail or wait on
command: an ALL before anything heard after a lost change, however calls interleave; a
change finished whoever gave up on it; a heartbeat that survives its failures."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from meshkit.caching import ChangeAnnouncer, Heartbeat
from meshkit.caching.invalidation import ALL, HEARTBEAT
from tests.support import eventually


class StandInRedis:
    """Records what was published; fails what is sent while `down`; holds each publish while
    `held` is clear (one sent while up still goes through when released)."""

    def __init__(self) -> None:
        self.published: list[str] = []
        self.down = False
        self.held = asyncio.Event()
        self.held.set()

    async def publish(self, channel: str, message: str) -> int:
        failing = self.down
        await self.held.wait()
        if failing:
            raise RedisConnectionError("down")
        self.published.append(message)
        return 1


def announcer(redis: StandInRedis) -> ChangeAnnouncer:
    return ChangeAnnouncer(cast(Redis, redis), "orders:invalidations@0", timeout_seconds=5)


async def test_after_a_lost_change_everything_heard_comes_after_an_all() -> None:
    redis = StandInRedis()
    changes = announcer(redis)
    redis.down = True
    await changes.changed("order:o-1")
    redis.down = False
    await changes.beat()
    await changes.changed("order:o-2")
    assert redis.published == [ALL, HEARTBEAT, "order:o-2"]


async def test_a_change_lost_while_an_all_was_under_way_gets_an_all_of_its_own() -> None:
    redis = StandInRedis()
    changes = announcer(redis)
    redis.down = True
    await changes.changed("order:o-1")
    redis.down = False
    redis.held.clear()
    catching_up = asyncio.create_task(changes.beat())  # ALL for o-1, held
    await asyncio.sleep(0)
    redis.down = True
    losing = asyncio.create_task(changes.changed("order:o-2"))
    await asyncio.sleep(0)
    redis.held.set()
    await asyncio.gather(catching_up, losing)  # o-2 is lost; the ALL covered o-1 only
    redis.down = False
    redis.published.clear()
    await changes.beat()
    assert redis.published == [ALL, HEARTBEAT]


async def test_a_failed_heartbeat_costs_no_all() -> None:
    redis = StandInRedis()
    changes = announcer(redis)
    redis.down = True
    await changes.beat()
    redis.down = False
    await changes.beat()
    assert redis.published == [HEARTBEAT]


async def test_a_change_is_announced_even_when_its_caller_gives_up() -> None:
    redis = StandInRedis()
    changes = announcer(redis)
    redis.held.clear()
    caller = asyncio.create_task(changes.changed("order:o-1"))
    await asyncio.sleep(0)
    caller.cancel()
    await asyncio.gather(caller, return_exceptions=True)
    redis.held.set()
    await changes.aclose()  # once the announcements under way are made
    assert redis.published == ["order:o-1"]


async def test_the_heartbeat_keeps_beating_through_unexpected_failures() -> None:
    beats: list[int] = []

    async def beat() -> None:
        beats.append(len(beats))
        if len(beats) == 1:
            raise RuntimeError("a bug, say")

    heartbeat = Heartbeat(beat, "test heartbeat")
    heartbeat.start()
    try:

        async def beat_again() -> Any:
            return len(beats) >= 2

        await eventually(beat_again, timeout=5, message="a second beat")
    finally:
        await heartbeat.aclose()
