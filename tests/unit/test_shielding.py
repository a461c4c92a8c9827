"""`finish`: work begun runs to its end though its caller is cancelled, and the caller is."""

from __future__ import annotations

import asyncio

import pytest

from meshkit.shielding import finish


async def test_work_runs_to_its_end_when_its_caller_is_cancelled() -> None:
    go_on, done = asyncio.Event(), asyncio.Event()

    async def work() -> None:
        await go_on.wait()
        done.set()

    caller = asyncio.create_task(finish(work()))
    await asyncio.sleep(0)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    go_on.set()
    await asyncio.wait_for(done.wait(), timeout=5)


async def test_the_result_and_the_errors_of_the_work_are_the_callers() -> None:
    async def answer() -> int:
        return 42

    async def fail() -> None:
        raise LookupError("gone")

    assert await finish(answer()) == 42
    with pytest.raises(LookupError):
        await finish(fail())
