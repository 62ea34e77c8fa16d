"""The runner's event queue: fills and order updates are never dropped, ticks never pile up.

    put(event)      any event, in the order it happened
    await get()     the oldest event; None once closed and empty

A ``Ticker`` is conflated: at most one is pending per pair, and a newer one replaces it in
place (the newest price wins, at the place in line of the first one not yet delivered). A
strategy whose ``on_tick`` is slower than the ticker poll therefore always sees a price at
most one poll old, instead of working through a backlog of stale ones. Every other event is
delivered, in order.
"""

from __future__ import annotations

import asyncio
from collections import deque

from framework.events import Ticker


class _TickSlot:
    """The place in line of the pending ticker of one pair."""

    __slots__ = ("pair",)

    def __init__(self, pair: str) -> None:
        self.pair = pair


class Inbox:
    def __init__(self) -> None:
        self._line: deque[object] = deque()
        self._tickers: dict[str, Ticker] = {}
        self._ready = asyncio.Event()
        self._closed = False
        #: Tickers replaced by a newer one before delivery.
        self.conflated = 0

    def put(self, event: object) -> None:
        if isinstance(event, Ticker):
            if event.pair in self._tickers:
                self.conflated += 1
            else:
                self._line.append(_TickSlot(event.pair))
            self._tickers[event.pair] = event
        else:
            self._line.append(event)
        self._ready.set()

    def close(self) -> None:
        """No more events: ``get`` returns None once the queue is empty."""
        self._closed = True
        self._ready.set()

    def __len__(self) -> int:
        return len(self._line)

    async def get(self) -> object | None:
        while not self._line:
            if self._closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        item = self._line.popleft()
        if isinstance(item, _TickSlot):
            return self._tickers.pop(item.pair)
        return item
