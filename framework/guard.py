"""The Guard: calls every hook and timer of one strategy, one at a time, and contains its
failures (framework/strategy.py says what a strategy may do; this, what happens when it
does not: a hook that raises, overruns ``hook_timeout_s`` or asks to stop the bot)."""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from framework.events import Fill, OrderUpdate, Started, Stopping, Ticker
from framework.log import get_logger

if TYPE_CHECKING:
    from framework.strategy import Strategy, Timer

log = get_logger("framework.strategy")


class Lifecycle(enum.Enum):
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPING = "stopping"
    STOPPED = "stopped"


#: Which hook each event goes to: a lookup, not a ladder.
HOOKS: dict[type, str] = {
    Started: "on_start",
    Ticker: "on_tick",
    OrderUpdate: "on_order",
    Fill: "on_fill",
    Stopping: "on_stop",
}


class Guard:
    """Calls every hook and timer of one strategy, one at a time, and contains failures."""

    def __init__(
        self,
        strategy: Strategy,
        *,
        timeout: float,
        policy: str,
        on_stop_bot: Callable[[str], None],
        on_finish: Callable[[str], None] = lambda reason: None,
        after: Callable[[object], None] = lambda event: None,
        say: Callable[[str], None] = lambda text: None,
    ) -> None:
        self.strategy = strategy
        self.state = Lifecycle.CREATED
        self.failures = 0
        self._timeout = timeout
        self._policy = policy
        self._stop_bot = on_stop_bot
        self._finish = on_finish
        self._after = after  # a hook (or a timer: None) is over: its fill and state are kept
        self._finish_reason: str | None = None  # ctx.stop asked during a hook
        self._say = say  # the terminal: each kind of failure once
        self._told: set[tuple[str, str]] = set()
        self._lock = asyncio.Lock()
        #: The hook or timer that ran last: (name, monotonic start, end or None while it runs).
        self.last: tuple[str, float, float | None] | None = None

    def _allowed(self, hook: str) -> bool:
        if hook == "on_start":
            return self.state is Lifecycle.CREATED
        if hook == "on_stop":
            return self.state in (Lifecycle.RUNNING, Lifecycle.PAUSED, Lifecycle.STOPPING)
        if hook in ("on_fill", "on_order"):  # what happened before the stop is still told
            return self.state in (Lifecycle.RUNNING, Lifecycle.STOPPING)
        return self.state is Lifecycle.RUNNING

    async def deliver(self, event: object) -> None:
        """Run the hook for ``event`` (if the lifecycle allows it)."""
        hook = HOOKS[type(event)]
        async with self._lock:
            if not self._allowed(hook):
                self._kept(hook, event)  # its turn has passed: a fill is not told again
                return
            if hook == "on_start":
                self.state = Lifecycle.RUNNING
            await self._call(hook, getattr(self.strategy, hook), event)
            if hook == "on_stop":
                self.state = Lifecycle.STOPPED

    async def tick_timer(self, callback: Timer) -> None:
        async with self._lock:
            if self.state is Lifecycle.RUNNING:
                await self._call(getattr(callback, "__name__", "timer"), callback)

    def finish(self, reason: str) -> None:
        """``ctx.stop``: stop the bot once the hook in progress returns (at once if none);
        from then on no tick or timer reaches the strategy, only fills and order updates."""
        if self._lock.locked():
            self._finish_reason = self._finish_reason or reason
        else:
            self.stopping()
            self._finish(reason)

    async def _call(
        self, name: str, function: Callable[..., Awaitable[None]], *args: object
    ) -> None:
        limit = asyncio.timeout(self._timeout)
        started = time.monotonic()
        self.last = (name, started, None)
        try:
            async with limit:
                await function(*args)
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the bot is being cancelled: not the hook's fault
            self._failed(name, exc)  # the hook let a cancellation of its own escape
        except Exception as exc:
            # past its time limit: said so (the traceback still shows where it was waiting)
            overran = f"ran past hook_timeout_s ({self._timeout:g} s)" if limit.expired() else ""
            self._failed(name, exc, overran)
        finally:
            self.last = (name, started, time.monotonic())
            self._kept(name, args[0] if args else None)
            if (reason := self._finish_reason) is not None:  # the hook asked: now it may
                self._finish_reason = None
                self.stopping()
                self._finish(reason)

    def _kept(self, name: str, event: object) -> None:
        try:
            self._after(event)
        except Exception as exc:  # ctx.state holds what cannot be saved: the hook's failure
            self._failed(name, exc)

    def _failed(self, name: str, exc: BaseException, overran: str = "") -> None:
        """Log a hook's failure, tell the terminal (each kind once), apply the policy."""
        self.failures += 1
        reason = f"{overran} and was cancelled" if overran else f"{type(exc).__name__}: {exc}"
        log.error(
            "strategy_hook_failed",
            strategy=self.strategy.name,
            hook=name,
            policy=self._policy,
            reason=reason,
            exc_info=exc,
        )
        what = f"{name} {reason}" if overran else f"{name} failed: {reason}"
        if (name, reason) not in self._told and len(self._told) < 100:
            self._told.add((name, reason))
            self._say(
                f"{what} (traceback: strategy_hook_failed in the JSON log; repeats are counted "
                "in 'hook errors')"
            )
        if self._policy == "pause_strategy" and self.state is Lifecycle.RUNNING:
            self.state = Lifecycle.PAUSED
            log.warning("strategy_paused", strategy=self.strategy.name)
        elif self._policy == "stop_bot":
            self._stop_bot(what)

    def stopping(self) -> None:
        """No hook but ``on_stop`` from now on (and none at all if never started)."""
        if self.state is Lifecycle.CREATED:
            self.state = Lifecycle.STOPPED
        elif self.state in (Lifecycle.RUNNING, Lifecycle.PAUSED):
            self.state = Lifecycle.STOPPING
