"""Says when something blocks the event loop. A hook that calls ``time.sleep``, does long
CPU work or blocking I/O stops every other part of the bot while it runs: the lane, the
streams, the polls, the dead-man switch's refresh (past its timeout the exchange cancels
every order of the key). ``hook_timeout_s`` cannot cut it short: asyncio can only cancel a
hook where it awaits. The watchdog sleeps a quarter of ``limit_s`` at a time; when it wakes
at least ``limit_s`` late, the loop was blocked that long, and it says so (each time in the
JSON log as ``event_loop_blocked``, once per hook on the terminal), naming the hook or timer
that ran during the block, if one did, and the line it was blocked at: a thread of the
watchdog's own looks at the loop's thread while the loop is late (the innermost frame of
code that is not Python's, a library's or Orderly's: the strategy's own line, as a rule).
It reads real time, not the bot's clock: what it measures is the loop itself."""

from __future__ import annotations

import asyncio
import os
import sys
import sysconfig
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from framework.log import get_logger

log = get_logger("framework.watchdog")

#: The hook or timer that ran last: (name, monotonic start, monotonic end or None if running).
LastHook = Callable[[], tuple[str, float, float | None] | None]


#: Where code that is not the strategy's lives: Python's own, installed packages, Orderly.
_NOT_OURS = tuple(
    path + os.sep
    for path in {
        sysconfig.get_path(name) for name in ("stdlib", "platstdlib", "purelib", "platlib")
    }
    | {str(Path(__file__).resolve().parent)}
)


def blocked_at(frame: FrameType | None) -> str | None:
    """``path:line in function`` of the innermost frame of the strategy's own code (of the
    innermost frame, if none is), the path relative to the working directory if under it."""
    innermost = frame
    while frame is not None and frame.f_code.co_filename.startswith(_NOT_OURS):
        frame = frame.f_back
    frame = frame or innermost
    if frame is None:
        return None
    path = frame.f_code.co_filename
    if path.startswith(os.getcwd() + os.sep):
        path = os.path.relpath(path)
    return f"{path}:{frame.f_lineno} in {frame.f_code.co_name}"


class Sampler(threading.Thread):
    """Looks at the loop's thread from outside, once per block, while the loop is late."""

    def __init__(self, period_s: float, late_s: float) -> None:
        super().__init__(name="orderly-watchdog", daemon=True)
        self.loop_thread = threading.get_ident()
        self.period_s, self.late_s = period_s, late_s
        self.beat = time.monotonic()  # the loop's last sign of life
        self.where: str | None = None
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.period_s):
            if self.where is None and time.monotonic() - self.beat > self.late_s:
                self.where = blocked_at(sys._current_frames().get(self.loop_thread))


async def watch_loop(limit_s: float, last_hook: LastHook, say: Callable[[str], None]) -> None:
    period = limit_s / 4
    told: set[str] = set()
    sampler = Sampler(period, period + limit_s / 2)
    sampler.start()
    try:
        while True:
            asleep = sampler.beat = time.monotonic()
            sampler.where = None
            await asyncio.sleep(period)
            woke = time.monotonic()
            blocked = woke - asleep - period
            if blocked < limit_s:
                continue
            hook = last_hook()
            ran = hook is not None and (hook[2] is None or hook[2] > asleep + period)
            name = hook[0] if hook is not None and ran else None
            at = sampler.where
            log.warning("event_loop_blocked", blocked_s=round(blocked, 3), hook=name, at=at)
            if (name or "") not in told:
                told.add(name or "")
                during = f"while {name} ran" if name else "outside the strategy's hooks"
                line = f", at {at}" if at else ""
                say(
                    f"the event loop was blocked {blocked:.1f} s {during}{line}: nothing else "
                    "ran meanwhile (orders, streams, the dead-man switch). A hook must await, "
                    "not block: asyncio.sleep, not time.sleep; CPU work in asyncio.to_thread "
                    "(repeats: event_loop_blocked in the JSON log)"
                )
    finally:
        sampler.done.set()
