"""Work that must finish once begun, whoever awaits it: what follows a commit."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

# The loop keeps only weak references to tasks: these are kept here until they finish.
_running: set[asyncio.Task[Any]] = set()


async def finish(work: Coroutine[Any, Any, T]) -> T:
    """`work`, run to its end even when the caller is cancelled meanwhile (the caller still
    is): a request whose client gave up after its change committed must not take the change's
    announcement with it."""
    task = asyncio.create_task(work)
    _running.add(task)
    task.add_done_callback(_running.discard)
    return await asyncio.shield(task)
