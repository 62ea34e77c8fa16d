"""Kraken WebSocket v2 for the runner: one reconnecting connection per purpose.

- "market" (public URL): ``ticker``, ``book`` (kept by :class:`~.book.Book`, its checksum
  verified on every message; on a mismatch the book is hidden from the strategy and
  subscribed again for a fresh snapshot) and ``ohlc`` for the configured pairs.
- "orders" (private URL): ``executions``, with a token from ``GetWebSocketsToken``, a
  nonce-signed REST call that goes through the key's lane like any other. A fresh token is
  fetched before every connection (Kraken: use it within 15 minutes; it stays valid while
  subscribed), and again when the server answers ``EAPI:Invalid token``.

Executions become fills and final states. A fill's trade id is the trade event's ``exec_id``,
the id REST's TradesHistory keys the trade by (Kraken's documented example: a ``T…`` id
of that form); both also carry the pair's integer ``trade_id``, the fill's ``alt_id``, so a
trade seen both ways counts once even if the first ids differed.
Each time executions are (re)subscribed (the subscription is acknowledged) and on any missing
``sequence`` number the feed is told of a gap, and the runner reconciles by REST. A
connection silent past ``silence_s`` (the server sends a heartbeat every second) is made
again. Backoff: a connection that worked until it was lost reconnects at once (0.1 s, with
jitter); one refused or sending what cannot be read doubles the wait, up to 10 s.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import random
from collections.abc import Awaitable, Callable, Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp

from framework.clock import Clock, wall
from framework.errors import OrderlyError
from framework.events import BookTop, Candle, Fill, Ticker
from framework.exchanges.base import SHAPE_ERRORS, amount, venue_fill
from framework.exchanges.kraken.book import Book, BookOutOfSync
from framework.exchanges.kraken.client import DEFAULT_BASE_URL
from framework.exchanges.kraken.spec import KrakenSettings
from framework.log import get_logger
from framework.registry import settings_of
from framework.transport import decode_json
from framework.venue import VenueOrder

if TYPE_CHECKING:
    from framework.config import Config

log = get_logger("framework.exchanges.kraken.stream")

#: exec_type -> the status a VenueOrder reports (the events that end an order).
_FINAL = {"filled": "closed", "canceled": "canceled", "expired": "expired"}


KRAKEN_WS, KRAKEN_WS_AUTH = "wss://ws.kraken.com/v2", "wss://ws-auth.kraken.com/v2"


def ws_urls_of(config: Config) -> tuple[str, str]:
    """The WebSocket URLs (public, private) of ``config``: as given; else Kraken's for
    Kraken's REST; else ``ws://HOST:PORT/v2`` of ``base_url`` (an ``orderly sandbox``), so a
    bot never streams one market's prices while it trades on another."""
    settings = settings_of(config, KrakenSettings)
    base_url = (config.exchange.base_url or DEFAULT_BASE_URL).rstrip("/")
    if base_url == DEFAULT_BASE_URL:
        return settings.ws_url or KRAKEN_WS, settings.ws_auth_url or KRAKEN_WS_AUTH
    public = settings.ws_url or "ws" + base_url.removeprefix("http") + "/v2"
    return public, settings.ws_auth_url or public  # a sandbox: one path for both


class Sink(Protocol):
    """What the streams push into (the runner's :class:`~framework.streaming.Feed`)."""

    def up(self, purpose: str, live: bool) -> None: ...
    def ticker(self, ticker: Ticker) -> None: ...
    def book(self, pair: str, top: BookTop | None) -> None: ...
    def candle(self, candle: Candle) -> None: ...
    def fill(self, txid: str, fill: Fill) -> None: ...
    def order(self, reported: VenueOrder) -> None: ...
    def gap(self, why: str) -> None: ...


def ws_symbol(wsname: str) -> str:
    """v2's name of a pair from AssetPairs' ``wsname`` (v1 style): XBT/USD -> BTC/USD."""
    base, _, quote = wsname.partition("/")
    names = {"XBT": "BTC", "XDG": "DOGE"}
    return f"{names.get(base, base)}/{names.get(quote, quote)}"


def _time(stamp: Any) -> float:
    return dt.datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()


class KrakenStreams:
    """The market and orders connections of one bot."""

    def __init__(
        self,
        *,
        url: str,
        auth_url: str,
        symbols: dict[str, str],
        token: Callable[[], Awaitable[str]],
        clock: Clock,
        depth: int = 10,
        backoff: tuple[float, float] = (0.1, 10.0),
        silence_s: float = 5.0,
        token_interval_s: float = 5.0,
    ) -> None:
        self.url, self.auth_url = url, auth_url
        self.symbols = symbols  # v2 symbol -> Orderly's pair name
        self._token = token
        self.clock = clock
        self.depth = depth
        self.backoff = backoff
        self.silence_s = silence_s
        #: Least time between two tokens (each a private call with a rate cost): a server
        #: that drops the orders connection at once, again and again, costs at most one
        #: call per ``token_interval_s`` (0.2/s, under Kraken's slowest counter decay).
        self.token_interval_s = token_interval_s
        self._last_token = float("-inf")
        self.books = {symbol: Book(symbol, depth) for symbol in symbols}
        self.connections = 0
        self._sequence: int | None = None
        self._random = random.Random()
        self._heard: dict[str, bool] = {}  # whether the current connection brought anything

    async def run(self, sink: Sink) -> None:
        async with aiohttp.ClientSession() as http, asyncio.TaskGroup() as group:
            group.create_task(self._connect("market", http, sink))
            group.create_task(self._connect("orders", http, sink))

    # --- connections ----------------------------------------------------------------------

    async def _connect(self, purpose: str, http: aiohttp.ClientSession, sink: Sink) -> None:
        failures = 0
        while True:
            self._heard[purpose] = False
            worked = False
            try:
                await self._session(purpose, http, sink)
            except SHAPE_ERRORS as exc:  # a message it could not read: never a fast loop
                log.warning("stream_unreadable", purpose=purpose, error=str(exc)[:200])
            except (aiohttp.ClientError, OSError, TimeoutError, OrderlyError) as exc:
                log.warning("stream_lost", purpose=purpose, error=str(exc)[:200])
                worked = self._heard[purpose]
            # a connection that worked until it was lost starts the backoff over; one that
            # failed, was refused or sent what it could not read doubles it
            failures = 1 if worked else failures + 1
            sink.up(purpose, False)
            lo, hi = self.backoff
            delay = min(hi, lo * 2 ** min(failures - 1, 16))
            await self.clock.sleep(delay * (0.5 + self._random.random() / 2))

    async def _session(self, purpose: str, http: aiohttp.ClientSession, sink: Sink) -> None:
        private = purpose == "orders"
        if private:  # polling covers what this wait costs
            await self.clock.sleep(
                self._last_token + self.token_interval_s - self.clock.monotonic()
            )
        async with http.ws_connect(self.auth_url if private else self.url) as ws:
            self.connections += 1
            # the token only once connected: an unreachable host costs no private call
            token = None
            if private:
                self._last_token = self.clock.monotonic()
                token = await self._token()
            for request in self._subscriptions(purpose, token):
                await ws.send_str(json.dumps(request))
            if private:
                self._sequence = None
            while True:
                frame = await ws.receive(timeout=self.silence_s)
                if frame.type is not aiohttp.WSMsgType.TEXT:
                    raise ConnectionError(f"{purpose} stream closed ({frame.type.name})")
                message = decode_json(frame.data, decimals=True)
                if not isinstance(message, dict):  # not JSON, too deep, or not an object
                    raise ValueError(f"{purpose} stream sent what is not a JSON object")
                if not private:  # orders: live once executions are subscribed (below)
                    sink.up(purpose, True)
                self._heard[purpose] = True
                resubscribe = self._handle(message, sink)
                if resubscribe is not None:
                    await ws.send_str(json.dumps(resubscribe))

    def _subscriptions(self, purpose: str, token: str | None) -> list[dict[str, Any]]:
        symbols = list(self.symbols)
        if purpose == "orders":
            params = {"channel": "executions", "token": token, "snap_orders": False}
            return [{"method": "subscribe", "params": params}]
        for book in self.books.values():
            book.stale = True  # until its snapshot
        return [
            {  # bbo: on every change of the best bid or ask, not only on trades (the default)
                "method": "subscribe",
                "params": {"channel": "ticker", "symbol": symbols, "event_trigger": "bbo"},
            },
            {
                "method": "subscribe",
                "params": {"channel": "book", "symbol": symbols, "depth": self.depth},
            },
            {
                "method": "subscribe",
                "params": {"channel": "ohlc", "symbol": symbols, "interval": 1},
            },
        ]

    # --- messages -------------------------------------------------------------------------

    def _handle(self, message: dict[str, Any], sink: Sink) -> dict[str, Any] | None:
        """Apply one message; returns a request to send back (a book to subscribe again)."""
        if message.get("success") is False:
            error = str(message.get("error"))
            log.warning("stream_refused", method=message.get("method"), error=error[:200])
            if "Invalid token" in error:
                self._heard["orders"] = False  # refused: back off before the next token
                raise ConnectionError("the WebSocket token was refused: fetching a new one")
            return None
        result = message.get("result")
        if message.get("method") == "subscribe" and isinstance(result, dict):
            if result.get("channel") == "executions":  # acked: from here on it all streams
                self._sequence = None
                sink.up("orders", True)  # not before: heartbeats alone bring no fills
                sink.gap("executions subscribed")  # what passed before is asked of REST
            return None
        channel = message.get("channel")
        data = message.get("data")
        if channel == "executions":
            self._executions(message, sink)
        elif channel == "book" and isinstance(data, list):
            for entry in data:
                again = self._book(message.get("type"), entry, sink)
                if again is not None:
                    return again
        elif channel == "ticker" and isinstance(data, list):
            for pair, entry in self._entries(data):
                bid, ask, last = (amount(entry[f], f) for f in ("bid", "ask", "last"))
                sink.ticker(Ticker(pair, bid, ask, last, wall(self.clock)))
        elif channel == "ohlc" and isinstance(data, list):
            for pair, entry in self._entries(data):
                prices = (amount(entry[f], f) for f in ("open", "high", "low", "close", "volume"))
                begin = _time(entry["interval_begin"])
                sink.candle(Candle(pair, int(entry["interval"]), begin, *prices))
        return None

    def _entries(self, data: list[Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        """(pair, entry) for each entry of a message about a pair this stream follows."""
        for entry in data:
            pair = self.symbols.get(str(entry.get("symbol"))) if isinstance(entry, dict) else None
            if pair is not None:
                yield pair, entry

    def _book(self, kind: Any, entry: dict[str, Any], sink: Sink) -> dict[str, Any] | None:
        symbol = str(entry.get("symbol"))
        book, pair = self.books.get(symbol), self.symbols.get(symbol)
        if book is None or pair is None:
            return None
        try:
            if kind == "snapshot":
                book.load(entry["bids"], entry["asks"], entry.get("checksum"))
            elif not book.stale:
                book.apply(entry["bids"], entry["asks"], entry.get("checksum"))
            else:
                return None  # waiting for the snapshot asked for: nothing applied meanwhile
        except (BookOutOfSync, *SHAPE_ERRORS) as exc:
            book.stale = True
            log.warning("book_out_of_sync", pair=pair, error=str(exc)[:200])
            sink.book(pair, None)
            params = {"channel": "book", "symbol": [symbol], "depth": self.depth}
            return {"method": "subscribe", "params": params}
        sink.book(pair, BookTop(pair, tuple(book.bids()), tuple(book.asks()), wall(self.clock)))
        return None

    def _executions(self, message: dict[str, Any], sink: Sink) -> None:
        sequence = message.get("sequence")
        if message.get("type") == "snapshot":  # the numbering starts here
            self._sequence = sequence if isinstance(sequence, int) else None
            return
        if isinstance(sequence, int):
            if self._sequence is not None and sequence != self._sequence + 1:
                sink.gap(f"executions sequence {self._sequence} -> {sequence}")
            self._sequence = sequence
        if message.get("type") != "update":
            return
        for entry in message.get("data") or ():
            kind = entry.get("exec_type")
            if kind == "trade":
                txid, fill = venue_fill(
                    order_id=entry["order_id"],
                    trade_id=entry["exec_id"],
                    pair=entry.get("symbol"),
                    side=entry["side"],
                    price=entry["last_price"],
                    volume=entry["last_qty"],
                    fee=sum((amount(f["qty"], "fee") for f in entry.get("fees") or ()), Decimal(0)),
                    maker=entry.get("liquidity_ind") == "m",
                    at=_time(entry["timestamp"]),
                    alt_id=f"#{entry['trade_id']}" if entry.get("trade_id") is not None else None,
                )
                cl_ord_id = entry.get("cl_ord_id")
                if cl_ord_id:
                    fill = dataclasses.replace(fill, cl_ord_id=str(cl_ord_id))
                sink.fill(txid, fill)
            elif kind in _FINAL:
                sink.order(
                    VenueOrder(
                        txid=str(entry["order_id"]),
                        cl_ord_id=entry.get("cl_ord_id"),
                        status=_FINAL[kind],
                        filled=amount(entry.get("cum_qty", 0), "cum_qty"),
                        reason=entry.get("reason"),
                    )
                )
