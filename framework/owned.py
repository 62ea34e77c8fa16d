"""Work that must finish whoever asked for it: the order manager's sends, reconciliations
and cancels run as tasks owned here, and the caller only awaits the result. Cancelling the
caller (a hook over its time limit) never cancels the work; the runner drains it when the
bot stops and cancels only what outlives the drain."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from framework.clock import Clock
from framework.errors import OrderlyError
from framework.log import get_logger

log = get_logger("framework.execution")

T = TypeVar("T")


class OwnedWork:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._tasks: set[asyncio.Task[Any]] = set()

    def start(self, work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run ``work`` as an owned task (:meth:`drain` waits for it)."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._forget)
        return task

    async def run(self, work: Coroutine[Any, Any, T]) -> T:
        """:meth:`start`, awaited; cancelling the caller leaves the task running to its end."""
        return await asyncio.shield(self.start(work))

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        exc = None if task.cancelled() else task.exception()  # retrieved: the caller may be gone
        if exc is not None and not isinstance(exc, OrderlyError):
            log.error("order_work_failed", exc_info=exc)

    async def drain(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """Wait (at most ``timeout`` s of the clock) for every owned task, and the work they
        start meanwhile. Returns whether all ended."""
        timer = asyncio.ensure_future(self.clock.sleep(timeout if timeout is not None else 1e9))
        try:
            while self._tasks and not timer.done():
                await asyncio.wait([*self._tasks, timer], return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
        return not self._tasks

    async def close(self) -> None:
        """Cancel what :meth:`drain` left running."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def __len__(self) -> int:
        return len(self._tasks)
