"""Matching for the conformance servers: the sandbox's engine and simulated market
(framework/sandbox), addressed by each exchange's own symbols.

The conformance servers check the wire (signatures, nonces, envelopes, limits); orders, fills
and balances come from the one engine the paper sandbox uses (framework/sandbox/engine.py,
in Orderly's types: no Kraken request or error string on the way), so a bot run against a
conformance server sees real fills. A refusal is :class:`Rejected` with a reason each
server turns into its exchange's error. Futures are settled as spot trades (no positions, margin
or funding): enough to drive order lifecycles, not a model of a perpetual.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from framework.clock import Clock
from framework.events import Fill
from framework.sandbox import engine as matching
from framework.sandbox.engine import EngineRules, SimOrder
from framework.sandbox.engine import Refused as Rejected
from framework.sandbox.market import PAIRS, Market, MarketRules

UNKNOWN_SYMBOL = "unknown_symbol"
INVALID = "invalid"  # a side, size or price that is not one
TOO_PRECISE = "too_precise"  # a size with more decimals than the pair's lot
BELOW_MINIMUM = "below_minimum"
OFF_TICK = "off_tick"
#: A reduce-only order that would not make the position smaller: the position (the net of
#: the key's fills of the pair) is flat or on the order's side, or smaller than the order.
#: The exchanges' exact rules beyond "only reduces" are not in protocols.md: this is ours.
NOT_REDUCING = "not_reducing"
# and the engine's own: framework.sandbox.engine.INSUFFICIENT_FUNDS, DUPLICATE_CLIENT_ID;
# every refusal is the engine's Refused (imported here as Rejected: the servers have a
# Refused of their own, an exchange error with its code)


def _number(value: Any) -> Decimal | None:
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() and number > 0 else None


BALANCES = (("ZUSD", "100000"), ("XXBT", "10"), ("XETH", "100"))


def lose_answer(request: Any) -> None:
    """Drop the connection of a request that has been executed: the client never hears the
    answer (what a timeout or a reset after the exchange acted looks like)."""
    if request.transport is not None:
        request.transport.close()


class Engine:
    """The sandbox engine behind an exchange's symbol names (``symbols``: exchange symbol ->
    sandbox pair, e.g. ``BTCUSDT`` -> ``XBTUSD``)."""

    def __init__(self, symbols: dict[str, str], clock: Clock, seed: int | None = None) -> None:
        self.symbols = symbols
        self.pair_symbol = {pair: symbol for symbol, pair in symbols.items()}
        self.market = Market(MarketRules(seed=seed or 1, step_s=0.05), clock)
        self.engine = matching.Engine(self.market, EngineRules(balances=BALANCES))

    def pair(self, symbol: str) -> str | None:
        return self.symbols.get(symbol)

    def place(
        self,
        key: str,
        symbol: str,
        *,
        side: str,
        volume: Any,
        price: Any | None,
        post_only: bool = False,
        timeinforce: str = "GTC",
        reduce_only: bool = False,
    ) -> SimOrder:
        """Place one order (side "buy"/"sell"; a price makes it a limit order) after the
        pair's size and price rules; raises :class:`Rejected`."""
        pair = self.symbols.get(symbol)
        if pair is None:
            raise Rejected(UNKNOWN_SYMBOL)
        info = PAIRS[pair]
        size = _number(volume)
        if side not in ("buy", "sell") or size is None:
            raise Rejected(INVALID)
        if info.too_fine(size):
            raise Rejected(TOO_PRECISE)
        if size < Decimal(info.ordermin):
            raise Rejected(BELOW_MINIMUM)
        limit = None if price is None else _number(price)
        if price is not None and limit is None:
            raise Rejected(INVALID)
        if limit is not None and limit % info.tick != 0:
            raise Rejected(OFF_TICK)
        self.engine.sync()
        if reduce_only:
            position = sum(
                (f.volume if f.side == "buy" else -f.volume)
                for f in self.engine.fills_of(key)
                if f.pair == pair
            )
            reduces = position < 0 if side == "buy" else position > 0
            if not reduces or size > abs(position):
                raise Rejected(NOT_REDUCING)
        return self.engine.place(
            key, pair, side, size, limit, post_only=post_only, timeinforce=timeinforce
        )

    def order(self, txid: str) -> SimOrder:
        self.engine.sync()
        return self.engine.orders[txid]

    def cancel(self, key: str, txid: str) -> bool:
        """Cancel one open order; False if it is not open (filled, cancelled, unknown)."""
        self.engine.sync()
        order = self.engine.open.get(txid)
        if order is None or order.key != key:
            return False
        return self.engine.cancel([order]) == 1

    def fills_of(self, key: str) -> list[Fill]:
        """Every fill of ``key``'s orders, oldest first."""
        self.engine.sync()
        return self.engine.fills_of(key)

    def quote(self, symbol: str) -> tuple[Decimal, Decimal, Decimal]:
        """(bid, ask, last) of a symbol."""
        pair = self.symbols[symbol]
        self.engine.sync()
        bid, ask = self.market.quote(pair)
        return bid, ask, self.market.last(pair)

    def quote_balance(self, key: str) -> Decimal:
        """The key's quote-currency (USD) balance."""
        self.engine.sync()
        return self.engine.balances(key).get("ZUSD", Decimal(0))
