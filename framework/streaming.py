"""Streams: what a venue pushes in real time, applied to the bot as polling would.

A venue that streams (Kraken over WebSocket v2, and so the sandbox) runs
``venue.stream(feed, pairs)`` for the life of the bot and pushes into a :class:`Feed`:

    ticker(t)           remembered for ctx.ticker, delivered to on_tick (conflated)
    book(pair, top)     ctx.book(pair); None while a book that failed its checksum is rebuilt
    candle(c)           ctx.candles(pair, interval)
    fill(txid, f)       once per trade id (the order book's de-duplication, shared with the
                        REST poll), then the order's state; one for an order whose own
                        answer is not in yet is left to the next poll (a gap)
    order(reported)     a final state (filled, cancelled, expired); the same
    gap(why)            a subscription came back or a message was missed: reconcile by
                        REST at once (fills since the last one the poll saw, states of
                        open orders)
    up(purpose, live)   whether "market" / "orders" data is flowing

Polling stays: tickers are polled only while the market stream is down; fills and states
every ``[runner].stream_poll_s`` while the orders stream is up (a safety net), and every
``order_poll_s`` while it is down or while an order is UNKNOWN.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from framework.clock import Clock
from framework.errors import OrderlyError, StateError
from framework.events import BookTop, Candle, Fill, OrderState, Ticker
from framework.execution import Execution
from framework.log import get_logger
from framework.strategy import Context
from framework.venue import Venue, VenueOrder

log = get_logger("framework.streaming")


class Feed:
    """The runner's side of a venue's streams."""

    def __init__(
        self,
        execution: Execution,
        ctx: Context,
        emit: Callable[[object], None],
        *,
        clock: Clock,
        safety_poll_s: float,
    ) -> None:
        self.execution = execution
        self.ctx = ctx
        self.emit = emit
        self.clock = clock
        self.safety_poll_s = safety_poll_s
        self.live: dict[str, bool] = {}
        self._gap = False
        self._last_poll = float("-inf")
        self._waiting: set[str] = set()  # our orders the stream reported before their answer
        self._wake = asyncio.Event()  # a gap was told: repair it now
        self._polling = asyncio.Lock()

    # --- what a venue pushes --------------------------------------------------------------

    def up(self, purpose: str, live: bool) -> None:
        if self.live.get(purpose) != live:
            log.info("stream_state", purpose=purpose, live=live)
        self.live[purpose] = live

    def ticker(self, ticker: Ticker) -> None:
        self.ctx._remember(ticker)
        self.emit(ticker)

    def book(self, pair: str, top: BookTop | None) -> None:
        self.ctx._remember_book(pair, top)

    def candle(self, candle: Candle) -> None:
        self.ctx._remember_candle(candle)

    def fill(self, txid: str, fill: Fill) -> None:
        if not self.execution.tracker.take_fill(txid, fill):
            self._unmatched(txid, fill.cl_ord_id)

    def order(self, reported: VenueOrder) -> None:
        if not self.execution.tracker.finish(reported):
            self._unmatched(reported.txid, reported.cl_ord_id)

    def _unmatched(self, txid: str, cl_ord_id: str | None) -> None:
        """A trade or final state of an order not known by that exchange id: another
        strategy's, or one of ours whose own answer has not arrived (streams can be faster
        than it). Ours is settled by the next poll, in order (accepted, then its fills)."""
        if cl_ord_id and self.execution.book.get(cl_ord_id) is not None:
            self._waiting.add(cl_ord_id)
            self.gap(f"stream ahead of the answer for {txid}")

    def gap(self, why: str) -> None:
        log.info("stream_gap", why=why)
        self._gap = True
        self._wake.set()

    # --- what the runner asks -------------------------------------------------------------

    async def run(self, venue: Venue, pairs: Sequence[str], say: Callable[[str], None]) -> None:
        """The venue's streams. If they stop (they cannot start: a pair the exchange cannot
        name; or a bug), the bot carries on polling: nothing of theirs is needed to trade."""
        repair = asyncio.create_task(self._repair_gaps(), name="stream-gaps")
        try:
            await venue.stream(self, pairs)
        except Exception as exc:  # never fatal: polling covers everything streams bring
            log.error("streams_failed", exc_info=exc)
            say(f"streaming stopped ({exc}); polling instead")
        finally:
            repair.cancel()
            await asyncio.gather(repair, return_exceptions=True)
        self.live.clear()

    async def _repair_gaps(self) -> None:
        """Reconcile by REST as soon as a gap is told (the orders loop would within
        ``order_poll_s``); a failure is tried again a second later; never raises."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.poll_orders()
            except StateError:  # the orders loop meets it too, and stops the bot
                return
            except Exception as exc:  # the exchange, or a bug: the orders loop still polls
                log.warning("gap_repair_failed", error=str(exc)[:200])
                await self.clock.sleep(1.0)
                self._wake.set()

    @property
    def market_live(self) -> bool:
        return self.live.get("market", False)

    async def poll_orders(self) -> None:
        """The orders loop's action: poll now if a gap asks for it, if the orders stream
        is down, if an order is still UNKNOWN (each poll looks for it again, as without
        streams), or if the safety-net period has passed; otherwise nothing."""
        if self.execution.broken is not None:  # nothing can be sent: say so, stop
            raise self.execution.broken
        async with self._polling:  # the orders loop and the gap repair, one at a time
            now = self.clock.monotonic()
            due = now - self._last_poll >= self.safety_poll_s
            unknown = any(o.state is OrderState.UNKNOWN for o in self.execution.book.open())
            if not (self._gap or due or unknown or not self.live.get("orders", False)):
                return
            gap, self._gap = self._gap, False
            try:
                await self.execution.poll()
            except OrderlyError:
                self._gap = self._gap or gap  # a reconciliation still owed is tried again
                raise
            self._last_poll = now
            book = self.execution.book
            self._waiting = {  # still without their answer: the orders loop asks again
                c
                for c in self._waiting
                if (o := book.get(c)) is not None and o.txid is None and o.state.is_open
            }
            self._gap = self._gap or bool(self._waiting)
