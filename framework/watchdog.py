"""Says when something blocks the event loop. A hook that calls ``time.sleep``, does long
CPU work or blocking I/O stops every other part of the bot while it runs: the lane, the
streams, the polls, the dead-man switch's refresh (past its timeout the exchange cancels
every order of the key). ``hook_timeout_s`` cannot cut it short: asyncio can only cancel a
hook where it awaits. The watchdog sleeps a quarter of ``limit_s`` at a time; when it wakes
at least ``limit_s`` late, the loop was blocked that long, and it says so (each time in the
JSON log as ``event_loop_blocked``, once per hook on the terminal), naming the hook or timer
that ran during the block, if one did. It reads real time, not the bot's clock: what it
measures is the loop itself."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from framework.log import get_logger

log = get_logger("framework.watchdog")

#: The hook or timer that ran last: (name, monotonic start, monotonic end or None if running).
LastHook = Callable[[], tuple[str, float, float | None] | None]


async def watch_loop(limit_s: float, last_hook: LastHook, say: Callable[[str], None]) -> None:
    period = limit_s / 4
    told: set[str] = set()
    while True:
        asleep = time.monotonic()
        await asyncio.sleep(period)
        woke = time.monotonic()
        blocked = woke - asleep - period
        if blocked < limit_s:
            continue
        hook = last_hook()
        ran = hook is not None and (hook[2] is None or hook[2] > asleep + period)
        name = hook[0] if hook is not None and ran else None
        log.warning("event_loop_blocked", blocked_s=round(blocked, 3), hook=name)
        if (name or "") not in told:
            told.add(name or "")
            during = f"while {name} ran" if name else "outside the strategy's hooks"
            say(
                f"the event loop was blocked {blocked:.1f} s {during}: nothing else ran "
                "meanwhile (orders, streams, the dead-man switch). A hook must await, not "
                "block: asyncio.sleep, not time.sleep; CPU work in asyncio.to_thread "
                "(repeats: event_loop_blocked in the JSON log)"
            )
