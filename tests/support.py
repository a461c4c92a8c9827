"""Helpers the tests share: free ports and waiting on a condition with a deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aio_pika
import httpx

from localmesh.launcher import free_port

__all__ = ["eventually", "free_port", "queue_counts"]

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T | None]],
    *,
    timeout: float = 10.0,
    interval: float = 0.05,
    message: str = "condition",
) -> T:
    """Await `probe` until it returns a truthy value, failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            last = await probe()
            if last:
                return last
        except AssertionError as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message} not met within {timeout}s; last: {last!r}")
        await asyncio.sleep(interval)


async def queue_counts(
    connection: aio_pika.abc.AbstractConnection, name: str
) -> tuple[int, int] | None:
    """(messages ready, consumers) of a queue on the broker, or None while it does not exist.

    A channel of its own: a passive declaration of a missing queue closes its channel.
    """
    channel = await connection.channel()
    try:
        queue = await channel.declare_queue(name, passive=True)
    except aio_pika.exceptions.ChannelClosed:
        return None
    finally:
        if not channel.is_closed:
            await channel.close()
    result = queue.declaration_result
    return result.message_count or 0, result.consumer_count or 0


PROBLEM_JSON = "application/problem+json"


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The body of a problem+json answer with `status`, as the gateway writes every error."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
