"""Readiness: whether a service reaches what it cannot serve without, checked on an interval."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

logger = logging.getLogger(__name__)

# Returns when the dependency answers; raises (anything) when it does not.
Check = Callable[[], Awaitable[None]]

# Told whether the service is ready, each time that changes.
Report = Callable[[bool], Awaitable[None]]


@dataclass(frozen=True)
class Dependency:
    """Something a service cannot serve without ("database", "broker") and how to check it.

    A check must be cheap: it runs every READINESS_INTERVAL_SECONDS in every replica.
    """

    name: str
    check: Check


class ReadinessWatcher:
    """Checks every dependency, logs each one going away and coming back once, and reports
    readiness (every dependency answered its last check) whenever it changes."""

    def __init__(
        self, dependencies: Sequence[Dependency], *, interval: float, timeout: float
    ) -> None:
        self.dependencies = tuple(dependencies)
        self.interval = interval
        self.timeout = timeout
        # Names of the dependencies whose last check failed.
        self.unreachable: set[str] = set()

    @property
    def ready(self) -> bool:
        return not self.unreachable

    async def check(self) -> bool:
        """Check every dependency at once; True when each answered within the timeout."""
        outcomes = await asyncio.gather(
            *(self._check_one(dependency) for dependency in self.dependencies)
        )
        for dependency, failure in zip(self.dependencies, outcomes, strict=True):
            self._note(dependency.name, failure)
        return self.ready

    async def watch(self, report: Report) -> None:
        """Check every `interval` seconds for ever, calling `report` on each change.

        The first check is the caller's (`check()`), made before serving. What it found is
        reported again first, so a watcher restarted after a failure leaves nothing unsaid.
        """
        reported = self.ready
        await report(reported)
        while True:
            await asyncio.sleep(self.interval)
            ready = await self.check()
            if ready != reported:
                await report(ready)
                reported = ready

    async def _check_one(self, dependency: Dependency) -> str | None:
        """None when the dependency answered, else why not."""
        try:
            async with asyncio.timeout(self.timeout):
                await dependency.check()
        except TimeoutError:
            return f"no answer within {self.timeout:g}s"
        except Exception as error:
            return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        return None

    def _note(self, name: str, failure: str | None) -> None:
        if failure is not None and name not in self.unreachable:
            self.unreachable.add(name)
            logger.warning(
                "%s is out of reach (%s): health reports NOT_SERVING until it is back",
                name,
                failure,
                extra={"dependency": name},
            )
        elif failure is None and name in self.unreachable:
            self.unreachable.discard(name)
            logger.info(
                "%s is reachable again%s",
                name,
                "" if self.unreachable else ": health reports SERVING",
                extra={"dependency": name},
            )
