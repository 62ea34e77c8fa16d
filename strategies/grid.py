"""A grid market-maker: a ladder of bids below the mid and asks above it, refreshed with
``place_batch`` so each refresh costs one exchange call (one nonce) per side-chunk.

Copy this file, change Params and the two hooks, point a config's ``[strategy] class`` at it.

    [strategy]
    class = "strategies/grid.py:Grid"
    pairs = ["XBTUSD"]
    [strategy.params]
    levels = 4            # orders per side
    spacing_bps = 8       # distance between levels, in basis points of the mid
    volume = "0.002"      # size of each order (base currency)
    refresh_s = 5         # re-centre the ladder this often
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

from pydantic import BaseModel, ConfigDict, Field

from framework import LimitOrder, OrderState, OrderUpdate, Started, Strategy, Ticker


def ladder(
    pair: str, mid: Decimal, levels: int, step: Decimal, volume: Decimal, tick: Decimal
) -> list[LimitOrder]:
    """``levels`` bids ``step`` apart below ``mid`` and as many asks above it, nearest level
    first (bid, ask, bid, ...), prices rounded down to the pair's ``tick``."""
    return [
        LimitOrder(
            pair=pair,
            side=side,
            volume=volume,
            price=((mid + sign * step * level) / tick).to_integral_value(ROUND_DOWN) * tick,
        )
        for level in range(1, levels + 1)
        for side, sign in (("buy", -1), ("sell", 1))
    ]


class Grid(Strategy):
    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

        levels: int = Field(4, ge=1, le=15)
        spacing_bps: Decimal = Field(Decimal(8), gt=0)
        volume: Decimal = Field(Decimal("0.002"), gt=0)
        refresh_s: float = Field(5.0, gt=0)
        tick: Decimal = Field(Decimal("0.1"), gt=0, description="price tick of the pair")

    params: Params

    async def on_start(self, event: Started) -> None:
        self.pair = self.ctx.pairs[0]
        self.every(self.params.refresh_s, self.refresh)

    async def on_tick(self, ticker: Ticker) -> None:
        if not self.ctx.open_orders():  # first tick, or everything filled: lay the ladder
            await self.lay(ticker)

    async def refresh(self) -> None:
        """Cancel the ladder and lay it again around the current mid."""
        ticker = self.ctx.ticker(self.pair)
        if ticker is None:
            return
        for order in self.ctx.open_orders():
            await self.ctx.cancel(order)
        await self.lay(ticker)

    async def lay(self, ticker: Ticker) -> None:
        p = self.params
        step = ticker.mid * p.spacing_bps / Decimal(10_000)
        orders = ladder(self.pair, ticker.mid, p.levels, step, p.volume, p.tick)
        placed = await self.ctx.place_batch(orders)  # one AddOrderBatch per side-chunk
        refused = [u for u in placed if u.state is OrderState.REJECTED]
        if refused:
            self.ctx.log.warning(
                "grid_orders_refused", count=len(refused), reason=refused[0].reason
            )

    async def on_order(self, update: OrderUpdate) -> None:
        if update.state is OrderState.FILLED:
            self.ctx.log.info("grid_level_filled", side=update.side, price=str(update.avg_price))
