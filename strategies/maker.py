"""A two-sided market maker: one post-only bid and one post-only ask around the mid, moved
with ``ctx.amend`` when the mid has moved ``requote_bps`` away from them (Kraken: +1 engine
point an amend, where cancel and place cost up to +9), shifted against the inventory, and
with no new quote on a side whose fills would carry the position past ``max_position``.

Prices go on the pair's step with ``ctx.market`` (a bid rounds down, an ask up): a price
computed from the mid has more decimals than the exchange takes. ``position`` counts the
fills of this run (after a restart the inherited quotes are adopted, the position starts
at 0).

    [strategy]
    class = "strategies/maker.py:Maker"
    pairs = ["XBTUSD"]
    [strategy.params]
    half_spread_bps = 5     # each quote this far from the mid
    volume = "0.001"        # size of each quote (base currency)
    max_position = "0.01"   # no bid at +0.01 or more, no ask at -0.01 or less
    requote_bps = 2         # move a quote once the mid is this far from where it was set
    skew_bps = 3            # at max_position, both quotes shift this far against it
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from framework import Fill, LimitOrder, Market, OrderState, OrderUpdate, Started, Strategy, Ticker
from framework.orders import Side

SIDES: tuple[Side, Side] = ("buy", "sell")


def quote_price(mid: Decimal, side: Side, params: Maker.Params, position: Decimal) -> Decimal:
    """Where ``side``'s quote belongs: ``half_spread_bps`` from the mid, both quotes shifted
    by up to ``skew_bps`` against the position (long: lower, to sell more and buy less)."""
    p = params
    skew = -p.skew_bps * max(Decimal(-1), min(Decimal(1), position / p.max_position))
    offset = p.half_spread_bps if side == "sell" else -p.half_spread_bps
    return mid * (1 + (offset + skew) / Decimal(10_000))


class Maker(Strategy):
    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

        half_spread_bps: Decimal = Field(Decimal(5), gt=0)
        volume: Decimal = Field(Decimal("0.001"), gt=0)
        max_position: Decimal = Field(Decimal("0.01"), gt=0)
        requote_bps: Decimal = Field(Decimal(2), ge=0)
        skew_bps: Decimal = Field(Decimal(3), ge=0)

    params: Params

    async def on_start(self, event: Started) -> None:
        self.pair = self.ctx.pairs[0]
        self.position = Decimal(0)
        self.quotes: dict[Side, OrderUpdate] = {}
        for order in event.inherited:  # a restart: keep one quote a side, cancel the rest
            side: Side = "buy" if order.side == "buy" else "sell"
            if order.pair == self.pair and side not in self.quotes:
                self.quotes[side] = order
            else:
                await self.ctx.cancel(order)

    async def on_fill(self, fill: Fill) -> None:
        if fill.pair == self.pair:
            self.position += fill.volume if fill.side == "buy" else -fill.volume

    async def on_tick(self, ticker: Ticker) -> None:
        if ticker.pair != self.pair:
            return
        market = await self.ctx.market(self.pair)
        for side in SIDES:
            await self.requote(side, ticker.mid, market)

    def live(self, side: Side) -> OrderUpdate | None:
        """``side``'s quote as last seen, if it is still open."""
        quote = self.quotes.get(side)
        open_now = {o.cl_ord_id: o for o in self.ctx.open_orders()}
        return open_now.get(quote.cl_ord_id) if quote is not None else None

    async def requote(self, side: Side, mid: Decimal, market: Market) -> None:
        p, quote = self.params, self.live(side)
        signed = p.volume if side == "buy" else -p.volume
        if abs(self.position + signed) > p.max_position:  # a fill would pass the limit
            if quote is not None:
                await self.ctx.cancel(quote)
            return
        price = market.round_price(quote_price(mid, side, p, self.position), side)
        if quote is not None and quote.price is not None:
            if abs(quote.price - price) * 10_000 < p.requote_bps * mid:
                return  # near enough: leave it its place in the queue
            if not self.ctx.can_amend:
                await self.ctx.cancel(quote)
            elif await self.ctx.amend(quote, price=price) or self.live(side) is not None:
                return  # moved; or refused while it rests (the next tick tries again)
        placed = await self.ctx.place(LimitOrder(self.pair, side, p.volume, price, post_only=True))
        if placed.state is not OrderState.REJECTED:
            self.quotes[side] = placed
