"""Time as an object, so tests can step or speed it instead of waiting.

``wall_ns`` is the calendar time (it may jump backwards when the OS clock is corrected);
``monotonic`` never goes backwards and is used for durations and cool-downs; ``sleep``
waits on the same clock. Everything that waits or reads the time in Orderly (lanes, order
manager, reconciliation, polls, timers, the sandbox) takes a clock, so:

    SystemClock   the machine's clocks and asyncio.sleep (production)
    ManualClock   moves only when told to; ``sleep`` moves it (unit tests)
    ScaledClock   virtual time running ``rate`` times faster than real time, shared by a
                  client and the in-process sandbox, so deadlines of seconds pass in
                  tenths of a second over real HTTP (fault tests)
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def wall_ns(self) -> int:
        """Unix time in nanoseconds."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin; never decreases."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...


def wall(clock: Clock) -> float:
    """Unix time in seconds from ``clock``."""
    return clock.wall_ns() / 1e9


class SystemClock:
    """The real clocks of the machine (the functions themselves: no Python frame per read,
    and a lane reads the clock several times a call)."""

    wall_ns = staticmethod(time.time_ns)
    monotonic = staticmethod(time.monotonic)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def __repr__(self) -> str:
        return "SystemClock()"


class ManualClock:
    """A clock that moves only when told to (or slept on); for tests."""

    def __init__(self, wall_ns: int = 1_700_000_000_000_000_000, monotonic: float = 0.0) -> None:
        self._wall_ns = wall_ns
        self._monotonic = monotonic

    def wall_ns(self) -> int:
        return self._wall_ns

    def monotonic(self) -> float:
        return self._monotonic

    async def sleep(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` at once, then let other tasks run."""
        if seconds > 0:
            self.advance(seconds)
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> None:
        """Move both clocks forward."""
        self._wall_ns += int(seconds * 1e9)
        self._monotonic += seconds

    def step_wall(self, seconds: float) -> None:
        """Jump the wall clock only (negative = backwards), as an NTP correction does."""
        self._wall_ns += int(seconds * 1e9)

    def __repr__(self) -> str:
        return f"ManualClock(wall_ns={self._wall_ns}, monotonic={self._monotonic})"


class ScaledClock:
    """Virtual time that runs ``rate`` times faster than the machine's, from now on.

    Every reader of one ScaledClock agrees on the time, so a client and an in-process
    sandbox sharing it see the same deadlines; only what is not on the clock (socket
    timeouts, CPU time) stays real, and it looks ``rate`` times longer."""

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive; got {rate}")
        self.rate = rate
        self._start_ns = time.time_ns()
        self._start_mono = time.monotonic()

    def _elapsed(self) -> float:
        return (time.monotonic() - self._start_mono) * self.rate

    def wall_ns(self) -> int:
        return self._start_ns + int(self._elapsed() * 1e9)

    def monotonic(self) -> float:
        return self._elapsed()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.rate)

    def __repr__(self) -> str:
        return f"ScaledClock(rate={self.rate})"


SYSTEM_CLOCK = SystemClock()
