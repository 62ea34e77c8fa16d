"""Matching for the conformance servers: the sandbox's engine and simulated market
(framework/sandbox), addressed by each exchange's own symbols.

The conformance servers check the wire (signatures, nonces, envelopes, limits); orders, fills
and balances come from the one engine the paper sandbox uses, so a bot run against a
conformance server sees real fills. Futures are settled as spot trades (no positions, margin
or funding): enough to drive order lifecycles, not a model of a perpetual.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from framework.clock import Clock
from framework.sandbox.auth import KrakenFailure
from framework.sandbox.market import Market, MarketRules
from framework.sandbox.matching import MatchingEngine, OrderRules, SimOrder

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
        self.engine = MatchingEngine(self.market, OrderRules(balances=BALANCES))

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
    ) -> SimOrder:
        """Place one order (side "buy"/"sell"; a price makes it a limit order); raises
        KrakenFailure with the engine's reason."""
        pair = self.symbols.get(symbol)
        if pair is None:
            raise KrakenFailure("EQuery:Unknown asset pair")
        body: dict[str, Any] = {"pair": pair, "type": side, "volume": str(volume)}
        if price is None:
            body["ordertype"] = "market"
        else:
            body.update(ordertype="limit", price=str(price))
        if post_only:
            body["oflags"] = "post"
        txid = self.engine.add_order(key, body)["txid"][0]
        return self.engine.orders[txid]

    def order(self, txid: str) -> SimOrder:
        self.engine.sync()
        return self.engine.orders[txid]

    def cancel(self, key: str, txid: str) -> bool:
        """Cancel one open order; False if it is not open (filled, cancelled, unknown)."""
        try:
            self.engine.cancel_order(key, {"txid": txid})
        except KrakenFailure:
            return False
        return True

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
