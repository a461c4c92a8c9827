"""Deliveries handled together: the messages that arrive while one is being handled share its
transaction, and commit with it.

Each message keeps its own task (the consumer's callback), and so its own span, ids and ack:
the members of a batch run their handlers one after another in the batch's unit of work, and
the last one to finish commits for all of them. A message arriving while nothing is being
handled is a batch of one, at once: batching adds no wait. Under load, what queued up behind
the running handler goes in the next transaction together, which saves a connection, a BEGIN
and a COMMIT (and its flush to disk) per message.

A batch either commits every member's effects and inbox rows, or none of them. A member that
fails ends the batch: nothing of it commits, its error is its own (a poison message runs once
per delivery, as it would alone), and every other member is handled alone, as if it had come
alone: one poison message costs the others a second run and nothing else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from meshkit.data.unit_of_work import UnitOfWork
from meshkit.shielding import finish

UnitOfWorkT = TypeVar("UnitOfWorkT", bound=UnitOfWork)
T = TypeVar("T")


class DeliveryBatch(Generic[UnitOfWorkT]):
    """One unit of work that up to `limit` messages join while it runs."""

    def __init__(self, unit_of_work: UnitOfWorkT, limit: int) -> None:
        self.uow = unit_of_work
        self.limit = limit
        self.joined = 0
        self.finished = 0
        # Settling (committing or rolling back): no one joins any more.
        self.closed = False
        self.failed = False
        self._entered = False
        self._turn = asyncio.Lock()
        self._committed: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    @property
    def open(self) -> bool:
        return not (self.closed or self.failed) and self.joined < self.limit

    async def run(self, work: Callable[[UnitOfWorkT], Awaitable[T]]) -> tuple[bool, T | None]:
        """Run `work` in its turn; (True, its result) once the batch committed, (False, None)
        when the batch did not through no fault of `work` (another member failed, or the
        commit did): nothing of `work` stayed, and the caller handles its message alone.
        What `work` raises itself is raised, once the batch has rolled back."""
        assert self.open, "join an open batch only"
        self.joined += 1
        result: T | None = None
        error: Exception | None = None
        try:
            async with self._turn:
                if not self.failed:
                    try:
                        if not self._entered:
                            self._entered = True
                            await self.uow.__aenter__()
                        elif _aborted(self.uow):
                            # A member before swallowed a failed statement: not this one's fault.
                            self.failed = True
                            raise _Aborted
                        result = await work(self.uow)
                    except BaseException:
                        self.failed = True
                        raise
        except _Aborted:
            pass
        except Exception as exc:
            error = exc
        finally:
            self.finished += 1
            if self.finished == self.joined:
                # The last member settles for all. Decided in the same step as the count, so
                # no message joins a batch that is committing.
                self.closed = True
                await finish(self._settle())
        committed = await asyncio.shield(self._committed)
        if error is not None:
            raise error
        return (True, result) if committed else (False, None)

    async def _settle(self) -> None:
        committed = False
        try:
            if self._entered:
                try:
                    if not self.failed:
                        await self.uow.commit()
                        committed = True
                finally:
                    await self.uow.__aexit__(None, None, None)
        except Exception:
            committed = False  # a failed commit: each member finds out alone, by its inbox row
        finally:
            self._committed.set_result(committed)


class _Aborted(Exception):
    """The batch's transaction was lost before this member's turn."""


def _aborted(uow: UnitOfWork) -> bool:
    return bool(getattr(uow.tx, "failed", False))
