"""Work that must finish once begun, whoever awaits it: what follows a commit, or what a
half-done change would leave inconsistent."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

from meshkit.errors import DomainError

T = TypeVar("T")

logger = logging.getLogger(__name__)

# The loop keeps only weak references to tasks: these are kept here until they finish.
_running: set[asyncio.Task[Any]] = set()


async def finish(work: Coroutine[Any, Any, T]) -> T:
    """`work`, run to its end even when the caller is cancelled meanwhile (the caller still
    is): a request whose client gave up after its change committed must not take the change's
    announcement with it, nor leave stock reserved for an order never saved."""
    task = asyncio.create_task(work)
    _running.add(task)
    task.add_done_callback(_running.discard)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(_report_unheard_failure)
        raise


def _report_unheard_failure(task: asyncio.Task[Any]) -> None:
    """An unexpected failure of work whose caller has gone is logged (and asyncio does not
    report it as never retrieved): nobody else will hear of it."""
    if task.cancelled():
        return
    error = task.exception()
    if error is not None and not isinstance(error, DomainError):
        logger.error("%s failed after its caller had gone", task.get_coro(), exc_info=error)
