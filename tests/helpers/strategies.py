"""Strategies used by the runner tests."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from framework import (
    Fill,
    LimitOrder,
    MarketOrder,
    OrderState,
    OrderUpdate,
    Started,
    Stopping,
    Strategy,
    Ticker,
)
from strategies.grid import ladder

TICK = Decimal("0.1")  # XBTUSD's price tick


class Seen(list[object]):
    """What the last Recorder saw, for the test to read; ``changed`` is set on each event."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = asyncio.Event()

    def append(self, item: object) -> None:
        super().append(item)
        self.changed.set()

    def clear(self) -> None:
        """Forget everything; a fresh event for the next test's loop."""
        super().clear()
        self.changed = asyncio.Event()


SEEN = Seen()


class Recorder(Strategy):
    """Places a resting limit buy, a market buy and an over-sized order; cancels the
    resting one once the market buy is filled. Records every event in order."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)
        fail_on_tick: bool = False
        cancel_on_fill: bool = True

    params: Params

    async def on_start(self, event: Started) -> None:
        SEEN.append(event)
        self.placed = False

    async def on_tick(self, ticker: Ticker) -> None:
        SEEN.append(ticker)
        if self.params.fail_on_tick:
            raise RuntimeError("strategy bug in on_tick")
        if self.placed:
            return
        self.placed = True
        pair = ticker.pair
        far = (ticker.bid * Decimal("0.5")).quantize(Decimal("0.1"))
        self.resting = await self.ctx.place(
            LimitOrder(pair=pair, side="buy", volume=Decimal("0.01"), price=far)
        )
        await self.ctx.place(MarketOrder(pair=pair, side="buy", volume=Decimal("0.01")))
        await self.ctx.place(MarketOrder(pair=pair, side="buy", volume=Decimal("1000")))

    async def on_order(self, update: OrderUpdate) -> None:
        SEEN.append(update)

    async def on_fill(self, fill: Fill) -> None:
        SEEN.append(fill)
        if self.params.cancel_on_fill and self.resting.state.is_open:
            await self.ctx.cancel(self.resting)

    async def on_stop(self, event: Stopping) -> None:
        SEEN.append(event)


class Busy(Strategy):
    """Heavy order flow: every 50 ms a batch of 6 limit orders around the mid, and a cancel
    of the oldest open ones. With ``slow_stop``, ``on_stop`` takes 8 s."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)
        slow_stop: bool = False

    params: Params

    async def on_stop(self, event: Stopping) -> None:
        if self.params.slow_stop:
            await asyncio.sleep(8)

    async def on_start(self, event: Started) -> None:
        self.every(0.05, self.churn)

    async def churn(self) -> None:
        ticker = self.ctx.ticker("XBTUSD")
        if ticker is None:
            return
        orders = ladder("XBTUSD", ticker.mid, 3, ticker.mid / 1000, Decimal("0.001"), TICK)
        await self.ctx.place_batch(orders)
        for order in self.ctx.open_orders()[:4]:
            if order.state is not OrderState.SUBMITTED:
                await self.ctx.cancel(order)


class SlowTicker(Strategy):
    """An ``on_tick`` slower than the ticker poll; records each ticker with its age."""

    async def on_tick(self, ticker: Ticker) -> None:
        SEEN.append((ticker, self.ctx.clock.wall_ns() / 1e9 - ticker.time))
        await asyncio.sleep(0.3)


class Blocker(Strategy):
    """Blocks the event loop in its first ``on_tick`` (what ``time.sleep`` in a hook does)."""

    async def on_tick(self, ticker: Ticker) -> None:
        if not SEEN:
            time.sleep(0.4)  # noqa: ASYNC251 (the mistake under test)
        SEEN.append(ticker)


class Taker(Strategy):
    """A market buy on every tick, so fills are always on their way; records fills."""

    async def on_tick(self, ticker: Ticker) -> None:
        order = MarketOrder(pair=ticker.pair, side="buy", volume=Decimal("0.001"))
        SEEN.append(await self.ctx.place(order))

    async def on_fill(self, fill: Fill) -> None:
        SEEN.append(fill)

    async def on_stop(self, event: Stopping) -> None:
        SEEN.append(event)


class Writer(Strategy):
    """A strategy of the process tests: it writes what it saw to files ``<out>.<name>``."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)
        out: str

    params: Params

    def _write(self, name: str, line: str) -> None:
        with open(f"{self.params.out}.{name}", "a", encoding="utf-8") as file:
            file.write(line + "\n")


class Keeper(Writer):
    """Keeps four far resting buys open, takes a market buy on every tick and amends one
    resting buy's price and volume. Writes each fill's trade id, what it inherited at start
    and its count of fills in ``ctx.state`` at the stop, to files next to its log."""

    async def on_start(self, event: Started) -> None:
        self._write("inherited", str(len(event.inherited)))
        self.ticks = 0

    async def on_tick(self, ticker: Ticker) -> None:
        resting = [o for o in self.ctx.open_orders() if o.price is not None]
        far = (ticker.bid * Decimal("0.5")).quantize(Decimal("0.1"))
        wanted = [
            LimitOrder(pair=ticker.pair, side="buy", volume=Decimal("0.001"), price=far - n)
            for n in range(4 - len(resting))
        ]
        await self.ctx.place_batch(
            [*wanted, MarketOrder(pair=ticker.pair, side="buy", volume=Decimal("0.001"))]
        )
        self.ticks += 1
        if resting and self.ctx.can_amend:  # terms that change across a kill: see test_journal
            volume = Decimal("0.001") + Decimal("0.0001") * (self.ticks % 3)
            await self.ctx.amend(resting[0], price=far - 10 - self.ticks % 7, volume=volume)

    async def on_fill(self, fill: Fill) -> None:
        self._write("fills", fill.trade_id)
        state = self.ctx.state  # kept across the kill: each fill counted once
        state["fills"] = state.get("fills", 0) + 1
        state["volume"] = state.get("volume", Decimal(0)) + fill.volume

    async def on_stop(self, event: Stopping) -> None:
        self._write("state", f"{self.ctx.state.get('fills', 0)}")


class StreamGrid(Strategy):
    """Two bids and two asks a few ticks from the mid, each filled one laid again; records
    fills and the live book it reads from ``ctx.book`` (tests/test_streams.py)."""

    async def on_start(self, event: Started) -> None:
        SEEN.append(event)

    async def on_tick(self, ticker: Ticker) -> None:
        book = self.ctx.book(ticker.pair, depth=10)
        if book is not None:
            SEEN.append(book)
        if len(self.ctx.open_orders()) >= 4:
            return
        await self.ctx.place_batch(
            ladder(ticker.pair, ticker.mid, 2, 3 * TICK, Decimal("0.001"), TICK)
        )

    async def on_fill(self, fill: Fill) -> None:
        SEEN.append(fill)

    async def on_stop(self, event: Stopping) -> None:
        SEEN.append(event)


class Flattener(Strategy):
    """Buys at market on the first tick; once that fill came, sells what it holds at market
    and asks the bot to stop (``ctx.stop``), then keeps working in the same hook. Records
    every fill, its position at ``on_stop``, and whether the hook ran to its end."""

    async def on_start(self, event: Started) -> None:
        self.position = Decimal(0)
        self.bought = self.sold = False

    async def on_tick(self, ticker: Ticker) -> None:
        if not self.bought:
            self.bought = True
            await self.ctx.place(MarketOrder(pair=ticker.pair, side="buy", volume=Decimal("0.002")))

    async def on_fill(self, fill: Fill) -> None:
        SEEN.append(fill)
        self.position += fill.volume if fill.side == "buy" else -fill.volume
        if fill.side == "buy" and not self.sold:
            self.sold = True
            sell = MarketOrder(pair=fill.pair, side="sell", volume=self.position)
            self.ctx.stop("flat: position closed")
            SEEN.append(await self.ctx.place(sell))  # still sent: the stop waits for this hook
            await asyncio.sleep(0.05)
            SEEN.append("hook ran to its end")

    async def on_stop(self, event: Stopping) -> None:
        SEEN.append(("position at stop", self.position, event.reason))


class LateCloser(Strategy):
    """Tries to close a position in ``on_stop``, as some frameworks allow; records the
    answer."""

    async def on_stop(self, event: Stopping) -> None:
        close = MarketOrder(pair="XBTUSD", side="sell", volume=Decimal("0.001"))
        SEEN.append(await self.ctx.place(close))


class Rester(Writer):
    """Rests one far buy (placed once), and writes what it inherited at start and its
    orders' client ids to ``<out>.inherited`` / ``<out>.placed``."""

    async def on_start(self, event: Started) -> None:
        self._write("inherited", " ".join(sorted(o.cl_ord_id for o in event.inherited)))
        self.placed = bool(event.inherited)

    async def on_tick(self, ticker: Ticker) -> None:
        if not self.placed:
            self.placed = True
            far = (ticker.bid * Decimal("0.5")).quantize(TICK)
            update = await self.ctx.place(LimitOrder(ticker.pair, "buy", Decimal("0.001"), far))
            self._write("placed", update.cl_ord_id)
