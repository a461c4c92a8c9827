"""The breaker that leaves a failing Redis alone for a while, longer while it stays down."""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]

# How long Redis is first left alone after a failure (`CircuitBreaker`).
FIRST_PAUSE_SECONDS = 0.5


class CircuitBreaker:
    """Closed while Redis works; open (skip Redis) for a pause after a failure.

    When the pause is over, one caller probes Redis while the others keep skipping it; the
    probe's success closes the breaker, its failure opens it again for twice as long, up to
    `retry_after`. The first pause is short: under load a Redis that stalls for a few hundred
    milliseconds times out a burst of reads at once, and five seconds of every read going to
    the database (as one fixed pause had it) hurt more than the stall; a Redis that stays
    down is probed less and less often. Failures of calls made before the breaker opened do
    not lengthen its pause. The clock is injectable so tests move time instead of sleeping.
    """

    def __init__(
        self,
        retry_after: float,
        clock: Clock = time.monotonic,
        *,
        first_pause: float = FIRST_PAUSE_SECONDS,
    ) -> None:
        self.retry_after = retry_after
        self.clock = clock
        self.first_pause = min(first_pause, retry_after)
        self.pause = self.first_pause
        self._open_until: float | None = None
        self._probing = False

    @property
    def is_open(self) -> bool:
        return self._open_until is not None

    def allow(self) -> bool:
        if self._open_until is None:
            return True
        now = self.clock()
        if now < self._open_until:
            return False
        self._open_until = now + self.pause  # the others wait for this probe
        self._probing = True
        return True

    def record_success(self) -> bool:
        """Close; True when it was open (Redis is back)."""
        was_open, self._open_until = self._open_until is not None, None
        self._probing, self.pause = False, self.first_pause
        return was_open

    def record_failure(self) -> None:
        if self._open_until is not None and not self._probing:
            return  # a call made before it opened: the pause under way stands
        if self._probing:
            self.pause = min(self.pause * 2, self.retry_after)
        self._open_until = self.clock() + self.pause
        self._probing = False
