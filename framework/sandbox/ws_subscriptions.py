"""The sandbox WebSocket's subscriptions: tokens, channels and their acks, and the
snapshots that follow a subscribe. Mixed into :class:`~framework.sandbox.ws.SandboxWebSocket`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from framework.sandbox import ws_messages as msg
from framework.sandbox.market import INTERVALS, Market
from framework.sandbox.matching import MatchingEngine
from framework.sandbox.ws_methods import Refusal

if TYPE_CHECKING:
    from framework.sandbox.ws import Connection

PUBLIC = ("ticker", "book", "trade", "ohlc", "instrument")
PRIVATE = ("executions", "balances")
DEPTHS = (10, 25, 100, 500, 1000)


class Subscriptions:
    engine: MatchingEngine
    market: Market

    def _authorise(self, conn: Connection, params: dict[str, Any]) -> str:
        token = params.get("token")
        if conn.account is not None and token is not None and str(token) == conn.token:
            return conn.account  # its own token: good while it stays connected, as on Kraken
        held = self.engine.ws_tokens.get(str(token)) if token is not None else None
        if held is None or held[1] < self.market.now():
            raise Refusal("EAPI:Invalid token")
        conn.account, conn.token = held[0], str(token)
        return held[0]

    def _pairs(self, params: dict[str, Any]) -> list[str]:
        symbols = params.get("symbol")
        if not isinstance(symbols, list) or not symbols:
            raise Refusal("Missing field: symbol")
        unknown = [s for s in symbols if s not in msg.SYMBOLS]
        if unknown:
            raise Refusal(f"Currency pair not supported {unknown[0]}")
        return [msg.SYMBOLS[s] for s in symbols]

    def _subscription(self, conn: Connection, method: str, params: dict[str, Any]) -> list[Any]:
        channel = params.get("channel")
        if channel not in PUBLIC + PRIVATE:
            raise Refusal(f"Channel {channel} not found")
        subscribing = method == "subscribe"
        subs = conn.channels.setdefault(str(channel), set())
        if channel in PRIVATE:
            self._authorise(conn, params)
            (subs.add if subscribing else subs.discard)(None)
            return [{"channel": channel, "snapshot": params.get("snapshot", True)}]
        if channel == "instrument":
            (subs.add if subscribing else subs.discard)(None)
            return [{"channel": channel, "snapshot": params.get("snapshot", True)}]
        pairs = self._pairs(params)
        results: list[Any] = []
        for pair in pairs:
            result: dict[str, Any] = {"channel": channel, "symbol": msg.SYMBOL_OF[pair]}
            key: Any = pair
            if channel == "book":
                depth = int(params.get("depth", 10))
                if depth not in DEPTHS:
                    raise Refusal(f"Invalid depth {depth}")
                result.update(depth=depth, snapshot=params.get("snapshot", True))
                if subscribing:
                    conn.books[pair] = (depth, [], [])
                else:
                    conn.books.pop(pair, None)
            elif channel == "ohlc":
                interval = int(params.get("interval", 1))
                if interval not in INTERVALS:
                    raise Refusal(f"Invalid interval {interval}")
                key = (pair, interval)
                result.update(interval=interval, snapshot=params.get("snapshot", True))
            elif channel == "ticker":
                trigger = params.get("event_trigger", "trades")
                if trigger not in ("trades", "bbo"):
                    raise Refusal(f"Invalid event_trigger {trigger}")
                result.update(event_trigger=trigger, snapshot=params.get("snapshot", True))
            else:
                result.update(snapshot=params.get("snapshot", False))
            (subs.add if subscribing else subs.discard)(key)
            results.append(result)
        return results

    def _snapshots(self, conn: Connection, params: dict[str, Any]) -> None:
        channel = params["channel"]
        if params.get("snapshot", True) is False and channel != "book":
            return
        if channel == "instrument":
            conn.send({"channel": "instrument", "type": "snapshot", "data": msg.instrument()})
        elif channel == "ticker":
            for pair in self._pairs(params):
                data = [msg.ticker(self.market, pair)]
                conn.send({"channel": "ticker", "type": "snapshot", "data": data})
        elif channel == "book":
            for pair in self._pairs(params):
                depth = conn.books[pair][0]
                bids, asks = msg.levels(self.market, pair, depth)
                conn.books[pair] = (depth, bids, asks)
                snapshot = {
                    "symbol": msg.SYMBOL_OF[pair],
                    "bids": [{"price": p, "qty": q} for p, q in bids],
                    "asks": [{"price": p, "qty": q} for p, q in asks],
                    "checksum": msg.book_checksum(bids, asks),
                }
                conn.send({"channel": "book", "type": "snapshot", "data": [snapshot]})
        elif channel == "ohlc":
            for pair in self._pairs(params):
                rows = msg.candles(self.market, pair, int(params.get("interval", 1)))
                conn.send({"channel": "ohlc", "type": "snapshot", "data": rows})
        elif channel == "executions" and conn.account is not None:
            now = self.market.now()
            data = []
            if params.get("snap_orders", True):
                data = [
                    msg.execution("new", o, None, now)
                    for o in self.engine.open.values()
                    if o.key == conn.account
                ]
            if params.get("snap_trades", False):
                data += [
                    msg.execution("trade", self.engine.orders[f.txid], f, now)
                    for f in self.engine.fills_of(conn.account)[-50:]
                ]
            conn.send({"channel": "executions", "type": "snapshot", "data": data})
        elif channel == "balances" and conn.account is not None:
            held = self.engine.balances(conn.account)
            conn.send({"channel": "balances", "type": "snapshot", "data": msg.balances(held)})
