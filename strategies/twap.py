"""A TWAP / DCA executor: buy (or sell) a total volume in equal slices at a fixed interval,
as limit orders at the touch so each slice pays the maker fee when it can. A slice not
filled by the next one is cancelled and its remainder carried over. Once the total has
filled, or one interval after the last slice, the bot stops (``ctx.stop``) unless
``stop_when_done = false``. The run's progress is kept in ``ctx.state``: a bot restarted
mid-run (after a crash, or a stop) goes on with it.

    [strategy]
    class = "strategies/twap.py:Twap"
    pairs = ["XBTUSD"]
    [strategy.params]
    side = "buy"
    total = "0.05"        # base currency, over the whole run
    slices = 10
    interval_s = 6        # one slice every interval_s: 10 slices -> one minute
    stop_when_done = true # stop the bot when the total has filled or the slices are over
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from framework import Fill, LimitOrder, OrderState, OrderUpdate, Started, Stopping, Strategy


class Twap(Strategy):
    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

        side: Literal["buy", "sell"] = "buy"
        total: Decimal = Field(Decimal("0.05"), gt=0)
        slices: int = Field(10, ge=1)
        interval_s: float = Field(6.0, gt=0)
        lot: Decimal | None = Field(
            None, gt=0, description="volume step; default: the exchange's (ctx.market)"
        )
        stop_when_done: bool = True

    params: Params

    async def on_start(self, event: Started) -> None:
        # A run in progress is kept in ctx.state (saved with each fill): a bot restarted
        # after a crash or a stop goes on with it; other params, or a finished run, start anew.
        run = self.params.model_dump_json()
        if self.ctx.state.get("run") != run:
            self.ctx.state.clear()
            self.ctx.state.update(run=run, done=Decimal(0), sent=0)
        self.working = event.inherited[-1] if event.inherited else None  # a resting slice
        self.lot = self.params.lot
        self.every(self.params.interval_s, self.next_slice)

    @property
    def done(self) -> Decimal:
        """Filled so far."""
        return Decimal(self.ctx.state["done"])

    async def next_slice(self) -> None:
        p, state = self.params, self.ctx.state
        if self.working is not None and self.working.state.is_open:
            await self.ctx.cancel(self.working)  # unfilled part rolls into the next slice
        remaining = p.total - self.done
        if state["sent"] >= p.slices or remaining <= 0:
            self.finished()
            return
        slices_left = p.slices - state["sent"]
        if self.lot is None:  # asked once; 1e-8 where the exchange does not state one
            market = await self.ctx.market(self.ctx.pairs[0])
            self.lot = market.volume_step or Decimal("0.00000001")
        volume = (remaining / slices_left).quantize(self.lot, rounding=ROUND_DOWN)
        ticker = self.ctx.ticker(self.ctx.pairs[0])
        if ticker is None or volume <= 0:
            return
        price = ticker.bid if p.side == "buy" else ticker.ask
        self.working = await self.ctx.place(
            LimitOrder(pair=self.ctx.pairs[0], side=p.side, volume=volume, price=price)
        )
        state["sent"] += 1
        self.ctx.log.info(
            "twap_slice",
            n=state["sent"],
            volume=str(volume),
            price=str(price),
            state=self.working.state.value,
        )

    async def on_order(self, update: OrderUpdate) -> None:
        if self.working is not None and update.cl_ord_id == self.working.cl_ord_id:
            self.working = update
        if update.state is OrderState.REJECTED:
            self.ctx.log.warning("twap_slice_refused", reason=update.reason)

    async def on_fill(self, fill: Fill) -> None:
        self.ctx.state["done"] = self.done + fill.volume
        if self.done >= self.params.total:
            self.finished()

    def finished(self) -> None:
        if self.params.stop_when_done:
            self.ctx.stop(f"twap finished: {self.done} of {self.params.total} filled")
            self.ctx.state["run"] = None  # the next start is a new run

    async def on_stop(self, event: Stopping) -> None:
        self.ctx.log.info("twap_stopped", filled=str(self.done), of=str(self.params.total))
