"""A grid market-maker: a ladder of bids below the mid and asks above it, laid with
``place_batch`` (one exchange call, one nonce, per side-chunk) and moved to the mid every
``refresh_s`` by amending each resting order in place (Kraken: +1 engine point an order, where
cancel and place cost up to +9); levels whose order filled are placed again.

Copy this file, change Params and the two hooks, point a config's ``[strategy] class`` at it.

    [strategy]
    class = "strategies/grid.py:Grid"
    pairs = ["XBTUSD"]
    [strategy.params]
    levels = 4            # orders per side
    spacing_bps = 8       # distance between levels, in basis points of the mid
    volume = "0.002"      # size of each order (base currency)
    refresh_s = 5         # move the ladder to the mid this often
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

from pydantic import BaseModel, ConfigDict, Field

from framework import LimitOrder, OrderState, OrderUpdate, Started, Strategy, Ticker
from framework.orders import Side

SIDES: tuple[tuple[Side, int], ...] = (("buy", -1), ("sell", 1))


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
        for side, sign in SIDES
    ]


def moves(
    resting: list[OrderUpdate], targets: list[LimitOrder]
) -> tuple[list[tuple[OrderUpdate, Decimal]], list[OrderUpdate], list[LimitOrder]]:
    """How to turn the ``resting`` ladder into ``targets``, side by side, nearest level
    first: (order, its new price) to amend, orders to cancel (more than the levels), and
    orders to place (levels with no order left, e.g. filled)."""
    amends: list[tuple[OrderUpdate, Decimal]] = []
    cancels: list[OrderUpdate] = []
    places: list[LimitOrder] = []
    for side, _ in SIDES:
        want = [t for t in targets if t.side == side]
        have = sorted(  # nearest the mid first: the highest bid, the lowest ask
            (o for o in resting if o.side == side),
            key=lambda o: o.price or Decimal(0),
            reverse=side == "buy",
        )
        amends += [(o, t.price) for o, t in zip(have, want, strict=False) if o.price != t.price]
        cancels += have[len(want) :]
        places += want[len(have) :]
    return amends, cancels, places


class Grid(Strategy):
    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

        levels: int = Field(4, ge=1, le=15)
        spacing_bps: Decimal = Field(Decimal(8), gt=0)
        volume: Decimal = Field(Decimal("0.002"), gt=0)
        refresh_s: float = Field(5.0, gt=0)
        tick: Decimal | None = Field(
            None, gt=0, description="price step; default: the exchange's (ctx.market)"
        )

    params: Params
    tick: Decimal | None = None  # the price step in use (params, else the exchange's)

    async def on_start(self, event: Started) -> None:
        self.pair = self.ctx.pairs[0]
        self.tick = self.params.tick
        self.every(self.params.refresh_s, self.refresh)

    async def price_step(self) -> Decimal:
        """The pair's price step: the params' ``tick``, else the exchange's, asked once
        (0.01 where the exchange does not state one)."""
        if self.tick is None:
            self.tick = (await self.ctx.market(self.pair)).price_step or Decimal("0.01")
        return self.tick

    async def on_tick(self, ticker: Ticker) -> None:
        if not self.ctx.open_orders():  # first tick, or everything filled: lay the ladder
            await self.lay(ticker)

    async def refresh(self) -> None:
        """Move the ladder to the current mid: each resting order is amended to its level's
        new price (same order, one cheap call), levels left empty are placed anew. Where the
        venue cannot amend: cancel the ladder and lay it again."""
        ticker = self.ctx.ticker(self.pair)
        if ticker is None:
            return
        if not self.ctx.can_amend:
            for order in self.ctx.open_orders():
                await self.ctx.cancel(order)
            await self.lay(ticker)
            return
        targets = self.targets(ticker, await self.price_step())
        amends, cancels, places = moves(self.ctx.open_orders(), targets)
        for order, price in amends:
            if await self.ctx.amend(order, price=price):
                continue
            if order.cl_ord_id not in {o.cl_ord_id for o in self.ctx.open_orders()}:
                side: Side = "buy" if order.side == "buy" else "sell"  # it filled: lay it again
                places.append(LimitOrder(self.pair, side, self.params.volume, price))
        for order in cancels:
            await self.ctx.cancel(order)
        await self.lay(ticker, places)

    def targets(self, ticker: Ticker, tick: Decimal) -> list[LimitOrder]:
        p = self.params
        step = ticker.mid * p.spacing_bps / Decimal(10_000)
        return ladder(self.pair, ticker.mid, p.levels, step, p.volume, tick)

    async def lay(self, ticker: Ticker, orders: list[LimitOrder] | None = None) -> None:
        """Place ``orders`` (default: the whole ladder around the mid) in one batch call per
        side-chunk."""
        if orders is None:
            orders = self.targets(ticker, await self.price_step())
        if not orders:
            return
        placed = await self.ctx.place_batch(orders)  # one AddOrderBatch per side-chunk
        refused = [u for u in placed if u.state is OrderState.REJECTED]
        if refused:
            self.ctx.log.warning(
                "grid_orders_refused", count=len(refused), reason=refused[0].reason
            )

    async def on_order(self, update: OrderUpdate) -> None:
        if update.state is OrderState.FILLED:
            self.ctx.log.info("grid_level_filled", side=update.side, price=str(update.avg_price))
