"""The sandbox's simulated market: a seeded price path per pair, and Kraken's public data.

The mid price takes one geometric random-walk step every ``step_s`` seconds of the sandbox
clock. The path depends only on the seed and the step number, not on when requests arrive,
so a seeded paper run is reproducible. Bid and ask sit ``spread_bps`` apart around the mid,
rounded to the pair's tick. Minute candles are kept (bounded) for OHLC, with 12 hours of
history before the start.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from email.utils import formatdate
from typing import Any

from framework.clock import Clock


@dataclass(frozen=True, slots=True)
class PairInfo:
    """A tradable pair, in Kraken's AssetPairs terms."""

    altname: str  # XBTUSD: what clients send
    name: str  # XXBTZUSD: the key Kraken answers with
    wsname: str
    base: str
    quote: str
    pair_decimals: int
    lot_decimals: int
    ordermin: str
    costmin: str
    start_price: str

    @property
    def tick(self) -> Decimal:
        return Decimal(1).scaleb(-self.pair_decimals)

    def too_fine(self, volume: Decimal) -> bool:
        """Whether ``volume`` has more decimals than the pair's lot."""
        return -volume.as_tuple().exponent > self.lot_decimals  # type: ignore[operator]

    def asset_pair(self) -> dict[str, Any]:
        return {
            "altname": self.altname,
            "wsname": self.wsname,
            "aclass_base": "currency",
            "base": self.base,
            "aclass_quote": "currency",
            "quote": self.quote,
            "pair_decimals": self.pair_decimals,
            "cost_decimals": 5,
            "lot_decimals": self.lot_decimals,
            "lot_multiplier": 1,
            "ordermin": self.ordermin,
            "costmin": self.costmin,
            "tick_size": str(self.tick),
            "status": "online",
            "fees": [[0, 0.26]],
            "fees_maker": [[0, 0.16]],
        }


PAIRS: dict[str, PairInfo] = {
    p.altname: p
    for p in (
        PairInfo("XBTUSD", "XXBTZUSD", "XBT/USD", "XXBT", "ZUSD", 1, 8, "0.0001", "0.5", "60000.0"),
        PairInfo("ETHUSD", "XETHZUSD", "ETH/USD", "XETH", "ZUSD", 2, 8, "0.002", "0.5", "3000.00"),
    )
}
#: Kraken's Assets answer for the sandbox's assets.
ASSETS: dict[str, dict[str, Any]] = {
    name: {
        "aclass": "currency",
        "altname": altname,
        "decimals": decimals,
        "display_decimals": display,
        "status": "enabled",
    }
    for name, altname, decimals, display in (
        ("XXBT", "XBT", 10, 5),
        ("XETH", "ETH", 10, 5),
        ("ZUSD", "USD", 4, 2),
    )
}
INTERVALS = (1, 5, 15, 30, 60, 240, 1440, 10080, 21600)
#: Kraken accepts a pair by its altname (XBTUSD) or its name (XXBTZUSD).
ALIASES = {n: p.altname for p in PAIRS.values() for n in (p.altname, p.name)}


#: Minutes of candles the market has before it starts: a paper strategy's indicators have
#: a history from its first tick (no trades then: their volume is 0).
HISTORY_MINUTES = 720
_DRAWS = 6  # price draws per minute of that history


@dataclass(frozen=True, slots=True)
class MarketRules:
    """How the simulated market moves. Sandbox settings, not Kraken facts."""

    seed: int = 1
    step_s: float = 0.25
    volatility: float = 0.0002  # standard deviation of one step's log return
    spread_bps: float = 2.0
    start_prices: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True)
class Candle:
    minute: int
    open: float
    high: float
    low: float
    close: float
    volume: float = 0.0


@dataclass(slots=True)
class PricePath:
    """One pair's path."""

    pair: PairInfo
    mid: float
    rng: random.Random
    candles: deque[Candle] = field(default_factory=lambda: deque(maxlen=50_000))
    volume_today: float = 0.0
    trades_today: int = 0


class Market:
    """All pairs' paths, advanced lazily to the clock's time."""

    def __init__(self, rules: MarketRules, clock: Clock) -> None:
        self.rules = rules
        self.clock = clock
        starts = dict(rules.start_prices)
        self.paths = {
            name: PricePath(
                info,
                float(starts.get(name, info.start_price)),
                random.Random(f"{rules.seed}:{name}"),
            )
            for name, info in PAIRS.items()
        }
        self._origin = clock.wall_ns() / 1e9
        self.step = 0
        for path in self.paths.values():  # a past, then the current minute's candle
            self._history(path)
            self._candle(path, self._origin)

    def _history(self, path: PricePath) -> None:
        """:data:`HISTORY_MINUTES` minute candles ending at the start price, as Kraken's OHLC
        and its ``ohlc`` snapshot give a history: a walk backwards from the start on a random
        stream of its own, so the path forward (every seeded run) is what it was."""
        rng = random.Random(f"{self.rules.seed}:{path.pair.altname}:history")
        sigma = self.rules.volatility * math.sqrt(60 / self.rules.step_s / _DRAWS)
        first = int(self._origin // 60)
        close, bars = path.mid, []
        for minute in range(first - 1, first - 1 - HISTORY_MINUTES, -1):
            prices = [close]
            for _ in range(_DRAWS):
                prices.append(prices[-1] * math.exp(-rng.gauss(0.0, sigma)))
            bars.append(Candle(minute, prices[-1], max(prices), min(prices), close))
            close = prices[-1]  # this minute's open: the close of the one before
        path.candles.extend(reversed(bars))

    def now(self) -> float:
        return self.clock.wall_ns() / 1e9

    def due_steps(self) -> int:
        """How many steps the clock says should have happened and have not."""
        target = int((self.now() - self._origin) / self.rules.step_s)
        return max(0, target - self.step)

    def advance_one(self) -> None:
        """Take one step on every pair."""
        self.step += 1
        at = self._origin + self.step * self.rules.step_s
        for path in self.paths.values():
            shock = path.rng.gauss(0.0, self.rules.volatility)
            path.mid *= math.exp(shock - self.rules.volatility**2 / 2)
            self._candle(path, at)

    def _candle(self, path: PricePath, at: float) -> None:
        minute = int(at // 60)
        last = path.candles[-1] if path.candles else None
        if last is None or last.minute != minute:
            path.candles.append(Candle(minute, path.mid, path.mid, path.mid, path.mid))
        else:
            last.high, last.low, last.close = (
                max(last.high, path.mid),
                min(last.low, path.mid),
                path.mid,
            )

    def record_trade(self, pair: str, volume: Decimal) -> None:
        path = self.paths[pair]
        path.volume_today += float(volume)
        path.trades_today += 1
        if path.candles:
            path.candles[-1].volume += float(volume)

    def quote(self, pair: str) -> tuple[Decimal, Decimal]:
        """(bid, ask), rounded outwards to the tick."""
        path = self.paths[pair]
        half = path.mid * self.rules.spread_bps / 20_000
        tick = path.pair.tick
        bid = Decimal(repr(path.mid - half)).quantize(tick, rounding=ROUND_DOWN)
        ask = Decimal(repr(path.mid + half)).quantize(tick, rounding=ROUND_UP)
        return bid, (ask if ask > bid else bid + tick)

    def last(self, pair: str) -> Decimal:
        return Decimal(repr(self.paths[pair].mid)).quantize(self.paths[pair].pair.tick)

    # --- Kraken's public shapes -----------------------------------------------------------

    def time(self) -> dict[str, Any]:
        now = self.now()
        return {"unixtime": int(now), "rfc1123": formatdate(now, usegmt=True)}

    def ticker(self, pair: str) -> dict[str, Any]:
        path = self.paths[pair]
        bid, ask = self.quote(pair)
        last = str(self.last(pair))
        candles = list(path.candles)[-1440:] or [Candle(0, path.mid, path.mid, path.mid, path.mid)]
        low = str(Decimal(repr(min(c.low for c in candles))).quantize(path.pair.tick))
        high = str(Decimal(repr(max(c.high for c in candles))).quantize(path.pair.tick))
        opened = str(Decimal(repr(candles[0].open)).quantize(path.pair.tick))
        volume = f"{path.volume_today:.8f}"
        return {
            "a": [str(ask), "1", "1.000"],
            "b": [str(bid), "1", "1.000"],
            "c": [last, "0.00000000"],
            "v": [volume, volume],
            "p": [last, last],
            "t": [path.trades_today, path.trades_today],
            "l": [low, low],
            "h": [high, high],
            "o": opened,
        }

    def depth(self, pair: str, count: int) -> dict[str, Any]:
        bid, ask = self.quote(pair)
        tick = PAIRS[pair].tick
        rng = random.Random(f"{self.rules.seed}:{pair}:{self.step}")
        ts = int(self.now())
        asks = [[str(ask + tick * i), f"{rng.uniform(0.01, 2):.8f}", ts] for i in range(count)]
        bids = [[str(bid - tick * i), f"{rng.uniform(0.01, 2):.8f}", ts] for i in range(count)]
        return {PAIRS[pair].name: {"asks": asks, "bids": bids}}

    def ohlc(self, pair: str, interval: int, since: int | None) -> dict[str, Any]:
        path = self.paths[pair]
        groups = _grouped(path.candles, interval)
        if since is not None:
            groups = [g for g in groups if g.minute * 60 > since]
        rows = [self._row(g, path.pair.tick) for g in groups[-720:]]
        last = rows[-2][0] if len(rows) > 1 else (rows[-1][0] if rows else 0)
        return {PAIRS[pair].name: rows, "last": last}

    def running(self, pair: str, interval: int) -> list[Any] | None:
        """The running candle's row (an ``ohlc`` update), from its own minutes only."""
        path = self.paths[pair]
        if not path.candles:
            return None
        start = path.candles[-1].minute // interval * interval
        tail = list(itertools.takewhile(lambda c: c.minute >= start, reversed(path.candles)))
        return self._row(_grouped(reversed(tail), interval)[-1], path.pair.tick)

    @staticmethod
    def _row(c: Candle, tick: Decimal) -> list[Any]:
        def q(value: float) -> str:
            return str(Decimal(repr(value)).quantize(tick))

        return [
            c.minute * 60,
            q(c.open),
            q(c.high),
            q(c.low),
            q(c.close),
            q(c.close),
            f"{c.volume:.8f}",
            0,
        ]


def _grouped(candles: Iterable[Candle], interval: int) -> list[Candle]:
    """Minute candles merged into ``interval``-minute ones (new objects), oldest first."""
    groups: list[Candle] = []
    for c in candles:
        bucket = c.minute // interval * interval
        if not groups or groups[-1].minute != bucket:
            groups.append(Candle(bucket, c.open, c.high, c.low, c.close, c.volume))
        else:
            group = groups[-1]
            group.high, group.low = max(group.high, c.high), min(group.low, c.low)
            group.close = c.close
            group.volume += c.volume
    return groups
