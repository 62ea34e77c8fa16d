"""Time as an object, so tests can step it instead of sleeping.

``wall_ns`` is the calendar time (it may jump backwards when the OS clock is corrected);
``monotonic`` never goes backwards and is used for durations and cool-downs.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def wall_ns(self) -> int:
        """Unix time in nanoseconds."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin; never decreases."""
        ...


class SystemClock:
    """The real clocks of the machine."""

    def wall_ns(self) -> int:
        return time.time_ns()

    def monotonic(self) -> float:
        return time.monotonic()

    def __repr__(self) -> str:
        return "SystemClock()"


class ManualClock:
    """A clock that moves only when told to; for tests."""

    def __init__(self, wall_ns: int = 1_700_000_000_000_000_000, monotonic: float = 0.0) -> None:
        self._wall_ns = wall_ns
        self._monotonic = monotonic

    def wall_ns(self) -> int:
        return self._wall_ns

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float) -> None:
        """Move both clocks forward."""
        self._wall_ns += int(seconds * 1e9)
        self._monotonic += seconds

    def step_wall(self, seconds: float) -> None:
        """Jump the wall clock only (negative = backwards), as an NTP correction does."""
        self._wall_ns += int(seconds * 1e9)

    def __repr__(self) -> str:
        return f"ManualClock(wall_ns={self._wall_ns}, monotonic={self._monotonic})"


SYSTEM_CLOCK = SystemClock()
