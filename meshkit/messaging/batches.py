"""Deliveries handled together, in one transaction and one commit.

The messages that arrive while one is being handled share its transaction. Each message
keeps its own task (the consumer's callback), and so its own span, ids and ack: the members
of a batch run their handlers one after another in the batch's unit of work, and the last one
to finish commits for all of them. A message arriving while nothing is being handled is a
batch of one, at once: batching adds no wait. Under load, what queued up behind the running
handler goes in the next transaction together, which saves a connection, a BEGIN and a
COMMIT (and its flush to disk) per message.

Handlers run one at a time in a batch, so a batch lasts `budget_seconds` from its first
handler's start: a member whose turn has not come by then leaves it for the next batch, which
starts at once beside it. A slow handler (a lookup over the network) holds up the members
behind it for that long at most, and a batch's locks are held about that long.

A batch either commits every member's effects and inbox rows, or none of them. A member that
fails ends the batch: nothing of it commits, its error is its own (a poison message runs once
per delivery, as it would alone), and every other member is handled alone: one poison message
costs the others a second run and nothing else. So a handler's effects outside the database
must bear running again, as they must already for a crash before a commit. A deadlock or a
serialization failure in a batch of several is nobody's own fault: every member goes alone.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from meshkit.data.unit_of_work import UnitOfWork
from meshkit.shielding import finish

logger = logging.getLogger(__name__)

UnitOfWorkT = TypeVar("UnitOfWorkT", bound=UnitOfWork)
T = TypeVar("T")

# PostgreSQL's deadlock_detected and serialization_failure: transactions in each other's way,
# which a batch holding more rows for longer meets more often than its members alone would.
_CONTENTION = frozenset({"40P01", "40001"})


class Verdict(enum.Enum):
    """What became of a member's message in its batch (`DeliveryBatch.run`)."""

    COMMITTED = "committed"
    ALONE = "alone"
    LATE = "late"


class DeliveryBatch(Generic[UnitOfWorkT]):
    """One unit of work that up to `limit` messages join while it runs."""

    def __init__(self, unit_of_work: UnitOfWorkT, limit: int, budget_seconds: float) -> None:
        self.uow = unit_of_work
        self.limit = limit
        self.budget = budget_seconds
        self.joined = 0
        self.finished = 0
        # Settling (committing or rolling back): no one joins any more; nor once it failed or
        # its budget is spent (`open`).
        self.closed = False
        self.failed = False
        self._began = 0.0
        self._entered = False
        self._turn = asyncio.Lock()
        self._committed: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    @property
    def open(self) -> bool:
        return not (self.closed or self.failed or self._spent()) and self.joined < self.limit

    def _spent(self) -> bool:
        return self._entered and time.monotonic() - self._began > self.budget

    async def run(self, work: Callable[[UnitOfWorkT], Awaitable[T]]) -> tuple[Verdict, T | None]:
        """Run `work` in its turn, and say what became of it: COMMITTED with its result once
        the batch committed; ALONE when the batch did not commit through no fault of `work`
        (another member failed, or the commit did): nothing of it stayed, and the caller
        handles its message alone; LATE when its turn did not come within the budget: it did
        not run, and the caller joins the next batch. What `work` raises itself is raised,
        once the batch has rolled back."""
        assert self.open, "join an open batch only"
        self.joined += 1
        result: T | None = None
        error: Exception | None = None
        late = False
        try:
            try:
                # Not past the budget: a slow handler ahead does not hold this one up longer.
                async with asyncio.timeout(self._time_left()):
                    await self._turn.acquire()
            except TimeoutError:
                late = True
            else:
                try:
                    if self.failed:
                        pass
                    elif self._spent():
                        late = True
                    else:
                        result = await self._run_in_turn(work)
                finally:
                    self._turn.release()
        except _Aborted:
            pass
        except Exception as exc:
            if self.joined == 1 or not _contention(exc):
                error = exc
        finally:
            self.finished += 1
            if self.finished == self.joined:
                # The last member settles for all. Decided in the same step as the count, so
                # no message joins a batch that is committing.
                self.closed = True
                await finish(self._settle())
        if late:
            return Verdict.LATE, None
        committed = await asyncio.shield(self._committed)
        if error is not None:
            raise error
        return (Verdict.COMMITTED, result) if committed else (Verdict.ALONE, None)

    def _time_left(self) -> float | None:
        if not self._entered:
            return None
        return max(0.0, self._began + self.budget - time.monotonic())

    async def _run_in_turn(self, work: Callable[[UnitOfWorkT], Awaitable[T]]) -> T:
        try:
            if not self._entered:
                self._entered = True
                self._began = time.monotonic()
                await self.uow.__aenter__()
            elif getattr(self.uow.tx, "failed", False):
                # A member before swallowed a failed statement: not this one's fault.
                raise _Aborted
            return await work(self.uow)
        except BaseException:
            self.failed = True
            raise

    async def _settle(self) -> None:
        committed = False
        try:
            if not self._entered:
                return
            try:
                if not self.failed:
                    await self.uow.commit()
                    committed = True
            except Exception as exc:
                # Each member goes alone, where its inbox row tells whether this commit took
                # after all.
                logger.warning("a batch of %d messages did not commit: %r", self.joined, exc)
            finally:
                # Rolled back for a reason, not a forgotten commit(): the unit of work is told.
                rolled_back = None if committed else _RolledBack()
                try:
                    await self.uow.__aexit__(
                        type(rolled_back) if rolled_back else None, rolled_back, None
                    )
                except Exception as exc:  # releasing the connection: the outcome stands
                    logger.warning("closing a batch's unit of work failed: %r", exc)
        finally:
            self._committed.set_result(committed)


class _RolledBack(Exception):
    """Why a batch's unit of work ends without its commit: a member failed, or the commit."""


class _Aborted(Exception):
    """The batch's transaction was lost before this member's turn."""


def _contention(error: BaseException) -> bool:
    """Whether `error`, or one it was raised from, is PostgreSQL's deadlock or serialization
    failure."""
    seen: BaseException | None = error
    while seen is not None:
        if getattr(seen, "sqlstate", None) in _CONTENTION:
            return True
        seen = seen.__cause__ or seen.__context__
    return False
