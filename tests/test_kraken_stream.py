"""Orderly's Kraken WebSocket v2 client (framework/exchanges/kraken/stream.py) against the
sandbox's /v2: a corrupted book is caught and rebuilt, a refused token is fetched again, a
missing sequence number is a gap, executions become fills and final states."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import pytest

from framework.clock import SYSTEM_CLOCK
from framework.errors import AmbiguousOutcome, OrderRejected
from framework.events import BookTop, Candle, Fill, Ticker
from framework.exchanges.kraken.stream import KrakenStreams
from framework.exchanges.kraken.ws_orders import OrderSocket
from framework.sandbox import Sandbox, ws_messages
from framework.sandbox.market import MarketRules
from framework.venue import VenueOrder


class Recorder:
    """A sink that keeps everything; ``changed`` wakes a waiting test."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.gaps: list[str] = []
        self.ups: list[tuple[str, bool]] = []
        self.changed = asyncio.Event()

    def _add(self, item: Any) -> None:
        self.events.append(item)
        self.changed.set()

    def up(self, purpose: str, live: bool) -> None:
        self.ups.append((purpose, live))

    def ticker(self, ticker: Ticker) -> None:
        self._add(ticker)

    def book(self, pair: str, top: BookTop | None) -> None:
        self._add(top if top is not None else ("stale", pair))

    def candle(self, candle: Candle) -> None:
        self._add(candle)

    def fill(self, txid: str, fill: Fill) -> None:
        self._add(fill)

    def order(self, reported: VenueOrder) -> None:
        self._add(reported)

    def gap(self, why: str) -> None:
        self.gaps.append(why)
        self._add(("gap", why))

    async def until(self, done: Callable[[], bool], within: float = 10.0) -> None:
        async with asyncio.timeout(within):
            while not done():
                self.changed.clear()
                await self.changed.wait()


@contextlib.asynccontextmanager
async def streaming(
    sandbox: Sandbox, account: str, tokens: list[str] | None = None, token_interval_s: float = 0
) -> AsyncIterator[tuple[KrakenStreams, Recorder]]:
    fetched: list[str] = []

    async def token() -> str:
        if tokens:
            fetched.append(tokens.pop(0))
        else:
            fetched.append(sandbox.engine.get_websockets_token(account, {})["token"])
        return fetched[-1]

    streams = KrakenStreams(
        url=sandbox.ws_url,
        auth_url=sandbox.ws_url,
        symbols={"BTC/USD": "XBTUSD"},
        token=token,
        clock=SYSTEM_CLOCK,
        backoff=(0.01, 0.05),
        token_interval_s=token_interval_s,
    )
    sink = Recorder()
    task = asyncio.create_task(streams.run(sink))
    try:
        yield streams, sink
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def fast_market() -> MarketRules:
    return MarketRules(seed=2, step_s=0.05, volatility=0.0003)


async def test_a_corrupted_book_update_is_caught_hidden_and_rebuilt(
    creds: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    honest = ws_messages.book_checksum
    sent = 0

    def third_one_wrong(bids: list[list[str]], asks: list[list[str]]) -> int:
        nonlocal sent
        sent += 1
        return honest(bids, asks) ^ (1 if sent == 3 else 0)  # snapshot, update, then a bad one

    monkeypatch.setattr(ws_messages, "book_checksum", third_one_wrong)
    async with (
        Sandbox(dict([creds]), market=fast_market()) as sandbox,
        streaming(sandbox, creds[0]) as (streams, sink),
    ):
        book = streams.books["BTC/USD"]
        await sink.until(lambda: book.rebuilds == 1 and book.updates >= 2)
    assert book.failures == 1  # the corrupted one, and nothing after it was applied
    stale_at = sink.events.index(("stale", "XBTUSD"))
    after = [e for e in sink.events[stale_at:] if isinstance(e, BookTop)]
    assert after and all(b.bids[0][0] < b.asks[0][0] for b in after)


async def test_a_refused_token_is_fetched_again_and_executions_flow(
    creds: tuple[str, str],
) -> None:
    async with (
        Sandbox(dict([creds]), market=fast_market()) as sandbox,
        streaming(sandbox, creds[0], tokens=["not-a-token-the-sandbox-gave"]) as (_, sink),
    ):
        await sink.until(lambda: len(sink.gaps) == 1)  # subscribed, with the second token
        price = (sandbox.market.quote("XBTUSD")[1] * 2).quantize(Decimal("0.1"))
        placed = sandbox.engine.add_order(
            creds[0],
            {
                "pair": "XBTUSD",
                "type": "buy",
                "ordertype": "limit",
                "volume": "0.001",
                "price": str(price),
                "cl_ord_id": "taker-1",
            },
        )
        (txid,) = placed["txid"]
        await sink.until(lambda: any(isinstance(e, VenueOrder) for e in sink.events))
    (fill,) = [e for e in sink.events if isinstance(e, Fill)]
    (trade_id,) = sandbox.engine.orders[txid].trades
    assert (fill.trade_id, fill.txid, fill.cl_ord_id) == (trade_id, txid, "taker-1")
    assert fill.volume == Decimal("0.001") and fill.fee > 0
    (final,) = [e for e in sink.events if isinstance(e, VenueOrder)]
    assert (final.txid, final.status, final.filled) == (txid, "closed", Decimal("0.001"))


async def test_a_missing_sequence_number_is_a_gap(creds: tuple[str, str]) -> None:
    async with (
        Sandbox(dict([creds]), market=fast_market()) as sandbox,
        streaming(sandbox, creds[0]) as (_, sink),
    ):
        await sink.until(lambda: len(sink.gaps) == 1)
        for conn in sandbox.ws.connections:  # the server loses one message to this client
            if "executions" in conn.channels:
                conn.sequence["executions"] += 1
        sandbox.engine.place(creds[0], "XBTUSD", "buy", Decimal("0.001"), Decimal("1000.0"))
        await sink.until(lambda: len(sink.gaps) == 2)
    assert "sequence" in sink.gaps[1]


async def test_an_unreadable_message_costs_a_reconnection_not_the_stream(
    creds: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    honest = ws_messages.ticker
    spoiled = 0
    sinks: list[Recorder] = []

    def nan_twice(market: Any, pair: str) -> dict[str, Any]:
        """Two spoiled tickers, the second once the first has cost its connection (sent
        sooner, it could reach the connection the first is closing, and never be read)."""
        nonlocal spoiled
        data = honest(market, pair)
        downs = sinks[0].ups.count(("market", False)) if sinks else 0
        if spoiled < 2 and downs == spoiled:
            spoiled += 1
            return {**data, "bid": "NaN"}
        return data

    monkeypatch.setattr(ws_messages, "ticker", nan_twice)
    async with (
        Sandbox(dict([creds]), market=fast_market()) as sandbox,
        streaming(sandbox, creds[0]) as (streams, sink),
    ):
        sinks.append(sink)  # before the stream's task first runs
        await sink.until(lambda: any(isinstance(e, Ticker) for e in sink.events))
    assert streams.connections >= 4  # market and orders, then market twice more
    tickers = [e for e in sink.events if isinstance(e, Ticker)]
    assert all(t.bid.is_finite() and t.bid < t.ask for t in tickers)


async def test_an_order_whose_websocket_answer_is_lost_is_ambiguous_never_refused(
    creds: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sandbox runs the add_order, then the connection drops before the answer leaves:
    the order lives at the exchange, so the caller must hear AmbiguousOutcome (the order
    layer then reconciles it by client id), never a refusal. The next call reconnects."""
    async with Sandbox(dict([creds]), market=fast_market()) as sandbox:
        run = sandbox.ws._order_method
        lost = []

        def run_then_drop(conn: Any, method: str, params: dict[str, Any]) -> list[Any]:
            answers = run(conn, method, params)
            if not lost:
                lost.append(method)
                sandbox.ws.drop_all()
            return answers

        monkeypatch.setattr(sandbox.ws, "_order_method", run_then_drop)

        async def token() -> str:
            return str(sandbox.engine.get_websockets_token(creds[0], {})["token"])

        socket = OrderSocket(sandbox.ws_url, token, key_id="k", exchange="kraken", timeout_s=5)
        order = {
            "order_type": "limit",
            "side": "buy",
            "order_qty": 0.001,
            "symbol": "BTC/USD",
            "limit_price": 1000.0,
        }
        try:
            with pytest.raises(AmbiguousOutcome):
                await socket.call("add_order", {**order, "cl_ord_id": "lost-answer"})
            again = await socket.call("add_order", {**order, "cl_ord_id": "second"})
            with pytest.raises(OrderRejected, match="EOrder:Unknown order"):
                await socket.call("cancel_order", {"order_id": ["O-NOT-THERE"]})
        finally:
            await socket.close()
        placed = {o.cl_ord_id: o.txid for o in sandbox.engine.open.values()}
    assert set(placed) == {"lost-answer", "second"} and again["order_id"] == placed["second"]
    assert socket.connections == 2


async def test_an_unreachable_websocket_costs_no_token(unused_tcp_port: int) -> None:
    """The token is a nonce-signed REST call with a rate cost: it is fetched only once a
    connection stands, never for a host that cannot be reached (a firewall would otherwise
    cost one private call per reconnection, forever)."""
    fetched = 0

    async def token() -> str:
        nonlocal fetched
        fetched += 1
        return "unused"

    dead = f"ws://127.0.0.1:{unused_tcp_port}/v2"
    streams = KrakenStreams(
        url=dead,
        auth_url=dead,
        symbols={"BTC/USD": "XBTUSD"},
        token=token,
        clock=SYSTEM_CLOCK,
        backoff=(0.01, 0.02),
    )
    sink = Recorder()
    task = asyncio.create_task(streams.run(sink))
    await asyncio.wait([task], timeout=0.3)  # a dozen attempts on each connection
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert fetched == 0 and streams.connections == 0


async def test_a_message_nested_too_deep_costs_a_reconnection_not_the_stream(
    creds: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """200,000 open brackets would exhaust the parser's stack (RecursionError, which used to
    end the streams for the rest of the run); they are refused unread."""
    honest = ws_messages.encode
    sent: list[str] = []

    def spoil_first_ticker(message: dict[str, Any]) -> str:
        if message.get("channel") == "ticker" and not sent:
            sent.append("deep")
            return "[" * 200_000
        return honest(message)

    monkeypatch.setattr(ws_messages, "encode", spoil_first_ticker)
    async with (
        Sandbox(dict([creds]), market=fast_market()) as sandbox,
        streaming(sandbox, creds[0]) as (streams, sink),
    ):
        await sink.until(lambda: any(isinstance(e, Ticker) for e in sink.events))
    assert sent == ["deep"] and streams.connections >= 3


async def test_a_server_dropping_every_connection_costs_one_token_per_interval(
    creds: tuple[str, str],
) -> None:
    """Each token is a private call with a rate cost: connections cut every 20-60 ms for a
    second cost a token per 0.5 s, not one per connection."""
    rules = fast_market()
    async with (
        Sandbox(dict([creds]), market=rules, ws_drop_every_s=(0.02, 0.06), seed=3) as sandbox,
        streaming(sandbox, creds[0], token_interval_s=0.5) as (streams, sink),
    ):
        await sink.until(lambda: sandbox.ws.drops >= 15 and streams.connections >= 10)
        issued = len(sandbox.engine.ws_tokens)
    # without the interval every orders connection, about half of them, would take one
    assert issued >= 1 and issued * 3 <= streams.connections


async def test_executions_count_as_subscribed_at_the_ack_snapshot_or_not(
    creds: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Asked with snap_orders false, an exchange may send no snapshot at all: the
    acknowledgment is what says the subscription holds (then: live, and one REST
    reconciliation). Heartbeats alone never make the orders stream live."""
    async with Sandbox(dict([creds]), market=fast_market()) as sandbox:
        send_snapshots = sandbox.ws._snapshots

        def no_executions_snapshot(conn: Any, params: dict[str, Any]) -> None:
            if params.get("channel") != "executions":
                send_snapshots(conn, params)

        monkeypatch.setattr(sandbox.ws, "_snapshots", no_executions_snapshot)
        async with streaming(sandbox, creds[0]) as (_, sink):
            await sink.until(lambda: len(sink.gaps) == 1)
        assert ("orders", True) in sink.ups


def test_a_config_pointing_rest_at_a_sandbox_streams_from_it_too() -> None:
    """``base_url`` at an ``orderly sandbox`` and no ``ws_url``: the streams come from that
    sandbox's /v2, never from Kraken's own (real prices beside sandbox orders would make a
    strategy trade on the wrong market). Kraken's REST, or ws_url given, as written."""
    from framework.config import Config
    from framework.exchanges.kraken.spec import KrakenSettings
    from framework.exchanges.kraken.venue import ws_urls_of

    sandbox = Config.model_validate(
        {"exchange": {"name": "kraken", "base_url": "http://127.0.0.1:8990"}}
    )
    assert ws_urls_of(sandbox) == ("ws://127.0.0.1:8990/v2", "ws://127.0.0.1:8990/v2")
    kraken = Config.model_validate({"exchange": {"name": "kraken"}})
    assert ws_urls_of(kraken) == ("wss://ws.kraken.com/v2", "wss://ws-auth.kraken.com/v2")
    given = Config.model_validate(
        {
            "exchange": {
                "name": "kraken",
                "base_url": "http://127.0.0.1:8990",
                "ws_url": "ws://127.0.0.1:9000/v2",
            }
        }
    )
    assert ws_urls_of(given)[0] == "ws://127.0.0.1:9000/v2"
    assert KrakenSettings().ws_url is None  # derived unless given


async def test_the_ohlc_snapshot_brings_the_recent_candles(creds: tuple[str, str]) -> None:
    """Found writing a moving-average strategy as a new user: ``ctx.candles`` held one bar at
    the start (the sandbox's snapshot sent only the running candle, and its market had no
    past), so an indicator had nothing to work on for minutes. Kraken's v2 snapshot carries
    the recent candles; the sandbox's now does too, over a 12-hour history."""
    sandbox = Sandbox(dict([creds]), market=fast_market())
    async with sandbox, streaming(sandbox, creds[0]) as (_, sink):
        bars = lambda: [e for e in sink.events if isinstance(e, Candle)]  # noqa: E731
        await sink.until(lambda: len(bars()) >= 720)
    begins = [c.begin for c in bars()[:720]]
    assert begins == sorted(begins) and begins[-1] - begins[0] == 719 * 60  # a minute apart
    assert all(c.low <= min(c.open, c.close) <= max(c.open, c.close) <= c.high for c in bars())
