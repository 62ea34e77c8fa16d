"""The Strategy base class users subclass, and the Context it acts through.

    class Grid(Strategy):
        class Params(BaseModel):            # typed [strategy.params]; unknown keys refused
            levels: int = 5

        async def on_start(self, event: Started) -> None:
            self.every(30, self.refresh)

        async def on_fill(self, fill: Fill) -> None:
            self.ctx.log.info("filled", price=str(fill.price))

Hooks (all ``async``, all default to doing nothing, each given one frozen event):

=================  ==============================================================
``on_start``       once, before any other hook (``Started``)
``on_tick``        the newest ticker of each pair in ``[strategy].pairs`` (``Ticker``);
                   ticks are conflated: a hook slower than the poll gets the newest
                   price, never a backlog of stale ones
``on_order``       each change of state of one of its orders, or of its price or
                   volume (an amend) (``OrderUpdate``)
``on_fill``        once per trade of one of its orders (``Fill``), before the order's
                   ``on_order`` for the state that fill caused
``on_stop``        once, when the bot stops (``Stopping``), after every fill and order
                   update that happened until then (and after ``cancel_on_stop``)
=================  ==============================================================

Hooks run one at a time, in the order their events happened, so a hook never races
another. A hook may ``await`` the context (placing orders waits for the exchange) but must
not block the event loop (no ``time.sleep``, no heavy CPU work). A hook that runs longer
than ``[runner].hook_timeout_s`` is cancelled. A hook that raises is logged
(``strategy_hook_failed``, with the traceback) and ``[runner].on_hook_error`` decides:
keep running, pause the strategy (no more hooks or timers but ``on_stop``), or stop the bot.
A strategy ends the bot itself with ``self.ctx.stop(reason)`` (after the asking hook).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from framework.clock import SYSTEM_CLOCK, Clock
from framework.errors import InvalidArguments, UsageError
from framework.events import BookTop, Candle, Fill, OrderUpdate, Started, Stopping, Ticker
from framework.execution import Execution
from framework.log import get_logger
from framework.market import Market
from framework.orders import Order

log = get_logger("framework.strategy")

Timer = Callable[[], Awaitable[None]]


class NoParams(BaseModel):
    """A strategy without parameters: ``[strategy.params]`` must be empty."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Context:
    """What a strategy may do. Lifecycle state lives in the runner, not here."""

    def __init__(
        self,
        execution: Execution,
        *,
        name: str,
        pairs: Sequence[str] = (),
        clock: Clock = SYSTEM_CLOCK,
        stop: Callable[[str], None] | None = None,
    ) -> None:
        self._execution = execution
        self._stop = stop
        #: The pairs of ``[strategy].pairs``: their tickers arrive in ``on_tick``.
        self.pairs = tuple(pairs)
        self._tickers: dict[str, Ticker] = {}
        self._books: dict[str, BookTop] = {}
        self._candles: dict[tuple[str, int], dict[float, Candle]] = {}
        self._timers: list[tuple[float, Timer]] = []
        self._start_timer: Callable[[float, Timer], None] | None = None
        self.clock = clock
        self.name = name
        self.log = get_logger(f"strategy.{name}").bind(strategy=name)
        #: Kept across restarts (framework/strategy_state.py): written to the order journal
        #: after every hook that changed it, with the fill that ``on_fill`` was given.
        self.state: dict[str, Any] = {}

    async def place(self, order: Order) -> OrderUpdate:
        """Send one order. Returns its state once the exchange answered: ACCEPTED (or
        already FILLED for a market order later), or REJECTED with ``reason``. Never
        raises for an exchange refusal; raises ``InvalidArguments`` if ``order`` is not a
        LimitOrder or MarketOrder (nothing is recorded then). The send belongs to the
        framework: if this hook is cancelled (its time limit), the order still reaches a
        known state and its events still come."""
        return await self._execution.place(order)

    async def place_batch(self, orders: Sequence[Order]) -> list[OrderUpdate]:
        """Send several orders, one exchange batch per pair and chunk (Kraken: 15, one
        nonce each). One update per order, in order."""
        return await self._execution.place_batch(orders)

    async def cancel(self, order: OrderUpdate | str) -> bool:
        """Cancel an order (an update or its client order id). False if it was not open."""
        return await self._execution.cancel(order)

    async def amend(
        self,
        order: OrderUpdate | str,
        *,
        price: Decimal | str | int | None = None,
        volume: Decimal | str | int | None = None,
    ) -> bool:
        """Change an open limit order's price and/or whole volume in place (Kraken: same ids,
        its place in the queue kept where it can be, cheaper in rate points than cancel and
        place). True once the exchange has it; False if the order was no longer open or the
        exchange refused the change. :class:`UsageError` on an exchange that cannot amend."""
        return await self._execution.amend(order, price=price, volume=volume)

    async def cancel_all(self) -> int:
        """Cancel every open order on the key (including ones this strategy did not place)."""
        return await self._execution.cancel_all()

    async def balances(self) -> dict[str, Decimal]:
        """Balances by the exchange's asset names (ZUSD, XXBT, ...)."""
        return await self._execution.venue.balances()

    async def market(self, pair: str) -> Market:
        """``pair``'s price step, volume step and smallest volume, with rounding to them
        (``market.round_price(price, "buy")``); asked of the exchange once, then kept."""
        return await self._execution.venue.market(pair)

    def stop(self, reason: str = "the strategy asked to stop") -> None:
        """Stop the bot as a signal would (exit code 0), once the hook or timer that asks
        returns: what it still does is done (an order it places is sent), then every fill
        and update reaches the strategy, then ``on_stop``. ``reason`` goes to the terminal
        and the log."""
        if self._stop is None:
            raise UsageError("ctx.stop stops the bot that runs this strategy: none does")
        self._stop(" ".join(str(reason).split())[:200] or "the strategy asked to stop")

    @property
    def can_amend(self) -> bool:
        """Whether :meth:`amend` works on this venue (Kraken and the sandbox: yes)."""
        return self._execution.venue.can_amend

    def open_orders(self) -> list[OrderUpdate]:
        """This strategy's unfinished orders, as last seen. One that finishes on its own
        stays listed (in its final state) until its final ``on_order``, after its fills."""
        return self._execution.open_orders()

    def ticker(self, pair: str) -> Ticker | None:
        """The newest ticker polled for ``pair`` (None before the first poll)."""
        return self._tickers.get(pair)

    def tickers(self) -> dict[str, Ticker]:
        """The newest ticker of every watched pair."""
        return dict(self._tickers)

    def book(self, pair: str, depth: int | None = None) -> BookTop | None:
        """The live book of ``pair`` (its best ``depth`` levels a side; all kept if None),
        from the exchange's stream, checksum-verified. None when the venue does not stream,
        before the first snapshot, or while a book that failed its checksum is rebuilt."""
        top = self._books.get(pair)
        if top is None or depth is None:
            return top
        return BookTop(top.pair, top.bids[:depth], top.asks[:depth], top.time)

    def candles(self, pair: str, interval: int = 1) -> list[Candle]:
        """Recent bars of ``pair`` (``interval`` minutes: the stream's snapshot, then its
        updates; at most the last 720), oldest first. Empty when the venue does not stream."""
        return sorted(self._candles.get((pair, interval), {}).values(), key=lambda c: c.begin)

    def every(self, seconds: float, callback: Timer) -> None:
        """Call ``await callback()`` every ``seconds``, through the same guard as hooks."""
        if not seconds > 0:
            raise InvalidArguments(f"a timer's period must be positive seconds; got {seconds!r}")
        if not inspect.iscoroutinefunction(callback):
            raise InvalidArguments(f"a timer must be an async function; got {callback!r}")
        if self._start_timer is not None:
            self._start_timer(seconds, callback)
        else:
            self._timers.append((seconds, callback))

    # --- for the runner -----------------------------------------------------------------

    def _remember(self, ticker: Ticker) -> None:
        self._tickers[ticker.pair] = ticker

    def _remember_book(self, pair: str, top: BookTop | None) -> None:
        if top is None:
            self._books.pop(pair, None)
        else:
            self._books[pair] = top

    def _remember_candle(self, candle: Candle) -> None:
        bars = self._candles.setdefault((candle.pair, candle.interval), {})
        bars[candle.begin] = candle
        while len(bars) > 720:
            del bars[min(bars)]

    def _attach_timers(self, start: Callable[[float, Timer], None]) -> None:
        """From now on ``every`` starts timers at once; those registered before start now."""
        self._start_timer = start
        for seconds, callback in self._timers:
            start(seconds, callback)
        self._timers.clear()


class Strategy:
    """Subclass this. Do not override ``__init__`` without calling ``super().__init__()``."""

    #: The model of ``[strategy.params]``; ``self.params`` is an instance of it.
    Params: ClassVar[type[BaseModel]] = NoParams

    params: Any

    def __init__(self) -> None:
        self.name = type(self).__name__

    @property
    def ctx(self) -> Context:
        """All the strategy acts through; the runner gives it after ``__init__``."""
        try:
            return self._ctx
        except AttributeError:
            raise UsageError(
                f"{type(self).__name__}.ctx is given after __init__: use it from on_start on"
            ) from None

    @ctx.setter
    def ctx(self, ctx: Context) -> None:
        self._ctx = ctx

    def every(self, seconds: float, callback: Timer) -> None:
        """Shorthand for ``self.ctx.every``."""
        self.ctx.every(seconds, callback)

    async def on_start(self, event: Started) -> None:
        """Once, before any other hook. Set up timers and initial orders here."""

    async def on_tick(self, ticker: Ticker) -> None:
        """Each ticker poll of each watched pair."""

    async def on_order(self, update: OrderUpdate) -> None:
        """Each change of state of one of this strategy's orders."""

    async def on_fill(self, fill: Fill) -> None:
        """Once per trade of one of this strategy's orders."""

    async def on_stop(self, event: Stopping) -> None:
        """Once, as the bot stops. New orders are refused from now on."""
