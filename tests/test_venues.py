"""Every exchange's Venue through the runner: the same bot (tests.helpers.strategies.Recorder)
run by ``Runner`` against each exchange's conformance server over real HTTP, with the config
and secrets a user would write. The paper sandbox (Kraken's venue) runs the same bot in
test_runner.py."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from framework.cli import main as orderly
from framework.errors import OrderRejected
from framework.events import Fill, OrderState, OrderUpdate, Started, Stopping
from framework.exchanges.bitunix import BitunixClient
from framework.exchanges.bitunix.venue import BitunixVenue
from framework.exchanges.synthetix import SynthetixClient
from framework.exchanges.synthetix.venue import SynthetixVenue
from framework.execution import Execution
from framework.market import Market
from framework.orders import LimitOrder, MarketOrder
from framework.runner import EXIT_OK
from framework.venue import PairAssets
from tests.conformance.bitunix_server import BitunixServer
from tests.conformance.synthetix_server import SynthetixServer
from tests.contract.harness import SNX_ADDRESS, SNX_KEY, SNX_SUB
from tests.helpers import strategies
from tests.test_runner import run_until

BITUNIX_KEY, BITUNIX_SECRET = "venue-bitunix-key", "venue-bitunix-secret"


@dataclass
class Exchange:
    name: str
    pair: str
    server: Callable[[], contextlib.AbstractAsyncContextManager[Any]]
    secrets: dict[str, str]
    settings: str = ""
    insufficient: str = ""  # the reason an order too big for the account is rejected with


EXCHANGES = [
    Exchange(
        "bitunix",
        "BTCUSDT",
        lambda: BitunixServer({BITUNIX_KEY: BITUNIX_SECRET}, seed=3),
        {"ORDERLY_BITUNIX_API_KEY": BITUNIX_KEY, "ORDERLY_BITUNIX_API_SECRET": BITUNIX_SECRET},
        insufficient="20003 Insufficient balance",
    ),
    Exchange(
        "synthetix",
        "BTC-USDT",
        lambda: SynthetixServer({SNX_SUB: SNX_ADDRESS}, seed=3),
        {"ORDERLY_SYNTHETIX_PRIVATE_KEY": SNX_KEY},
        settings=f"sub_account_id = {SNX_SUB}\nexpires_after_s = 30",
        insufficient="INSUFFICIENT_MARGIN: Insufficient margin",  # errorCode: its words
    ),
]


def write_config(tmp: Path, exchange: Exchange, base_url: str) -> Path:
    path = tmp / f"{exchange.name}.toml"
    path.write_text(f"""
[exchange]
name = "{exchange.name}"
base_url = "{base_url}"
{exchange.settings}
[strategy]
class = "tests.helpers.strategies:Recorder"
pairs = ["{exchange.pair}"]
[runner]
tick_interval_s = 0.05
order_poll_s = 0.05
log_file = "{tmp / "log.jsonl"}"
dead_man_timeout_s = 0
[state]
store = "{tmp / "nonces.sqlite"}"
history = "{tmp / "history.jsonl"}"
""")
    return path


@contextlib.asynccontextmanager
async def serving(exchange: Exchange, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    for name, value in exchange.secrets.items():
        monkeypatch.setenv(name, value)
    async with exchange.server() as server:
        yield server


@pytest.mark.parametrize("exchange", EXCHANGES, ids=lambda e: e.name)
async def test_the_runner_trades_each_exchange(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    exchange: Exchange,
) -> None:
    """Resting limit accepted then cancelled, market order filled (fill before FILLED), an
    oversized order rejected with the exchange's reason; history clean; the key's secrets in
    no log line and no history record."""
    seen = strategies.SEEN

    def finished() -> bool:
        return any(
            isinstance(e, OrderUpdate) and e.state is OrderState.CANCELLED for e in seen
        ) and any(isinstance(e, Fill) for e in seen)

    async with serving(exchange, monkeypatch) as server:
        config = write_config(tmp_path, exchange, server.base_url)
        assert orderly(["check", str(config)]) == 0
        assert await run_until(config, finished) == EXIT_OK
    assert isinstance(seen[0], Started) and isinstance(seen[-1], Stopping)
    updates = [e for e in seen if isinstance(e, OrderUpdate)]
    resting, market, huge = dict.fromkeys(u.cl_ord_id for u in updates)
    states = {
        cid: [u.state.value for u in updates if u.cl_ord_id == cid]
        for cid in (resting, market, huge)
    }
    assert states == {
        resting: ["accepted", "cancelled"],
        market: ["accepted", "filled"],
        huge: ["rejected"],
    }
    assert [u.reason for u in updates if u.cl_ord_id == huge] == [exchange.insufficient]
    fills = [e for e in seen if isinstance(e, Fill)]
    assert [(f.cl_ord_id, f.pair) for f in fills] == [(market, exchange.pair)]
    assert fills[0].volume > 0 and fills[0].price > 0
    order = [
        "fill" if isinstance(e, Fill) else e.state.value
        for e in seen
        if isinstance(e, Fill) or (isinstance(e, OrderUpdate) and e.cl_ord_id == market)
    ]
    assert order == ["accepted", "fill", "filled"]
    assert orderly(["nonces", "check", "--file", str(tmp_path / "history.jsonl")]) == 0
    logged = capfd.readouterr()
    written = logged.out + logged.err + (tmp_path / "history.jsonl").read_text()
    assert "order_submitted" in written and "nonce_assigned" in written
    for secret in exchange.secrets.values():
        assert secret not in written and secret.removeprefix("0x") not in written


@contextlib.asynccontextmanager
async def bitunix_venue() -> AsyncIterator[Any]:
    async with (
        BitunixServer({BITUNIX_KEY: BITUNIX_SECRET}, seed=3) as server,
        BitunixClient(BITUNIX_KEY, BITUNIX_SECRET, server.base_url) as client,
    ):
        yield server, BitunixVenue(client)


@contextlib.asynccontextmanager
async def synthetix_venue() -> AsyncIterator[Any]:
    async with (
        SynthetixServer({SNX_SUB: SNX_ADDRESS}, seed=3) as server,
        SynthetixClient(SNX_KEY, SNX_SUB, server.base_url, expires_after_s=30) as client,
    ):
        yield server, SynthetixVenue(client, 30)


@pytest.mark.parametrize(
    ("opener", "pair"),
    [(bitunix_venue, "BTCUSDT"), (synthetix_venue, "BTC-USDT")],
    ids=["bitunix", "synthetix"],
)
async def test_venue_finds_cancels_and_reports(
    opener: Callable[[], contextlib.AbstractAsyncContextManager[Any]], pair: str
) -> None:
    """Each Venue method once against the exchange's server, in Orderly's types."""
    async with opener() as (_, venue):
        assert await venue.find("never-placed") is None
        ticker = await venue.ticker(pair)
        assert ticker.bid < ticker.ask and ticker.last > 0
        assert await venue.pair_assets(pair) == PairAssets(base="BTC", quote="USDT")
        if isinstance(venue, BitunixVenue):  # quotePrecision, basePrecision, minTradeVolume
            rules = Market(pair, Decimal("0.1"), Decimal("1E-8"), Decimal("0.0001"))
        else:  # Synthetix's market rules are not read: unknown, amounts go as given
            rules = Market(pair)
        assert await venue.market(pair) == rules
        low = (ticker.bid / 2).quantize(Decimal("0.1"))
        rest = [LimitOrder(pair=pair, side="buy", volume=Decimal("0.01"), price=low)] * 3
        ids = await venue.place_batch([(o, f"rest-{i}") for i, o in enumerate(rest)])
        taken = await venue.place(
            MarketOrder(pair=pair, side="buy", volume=Decimal("0.01")), "take"
        )
        found = await venue.find("rest-0")
        assert found is not None and (found.txid, found.status) == (ids[0], "open")
        assert {o.cl_ord_id for o in await venue.open_orders()} == {"rest-0", "rest-1", "rest-2"}
        (filled,) = await venue.query_orders([taken])
        assert (filled.status, filled.filled) == ("closed", Decimal("0.01"))
        fills = await venue.fills_since(0)
        assert [(txid, f.volume, f.maker) for txid, f in fills] == [(taken, Decimal("0.01"), False)]
        with pytest.raises(OrderRejected):
            await venue.cancel("take", pair=pair, txid=taken)  # filled: nothing to cancel
        await venue.cancel("rest-0", pair=pair, txid=None)  # exchange id unknown: looked up
        assert (await venue.find("rest-0")).status == "canceled"
        assert await venue.cancel_all() == 2
        assert await venue.open_orders() == []
        assert (await venue.balances())["USDT"] > 0
        assert isinstance(await venue.clock_offset(), float)
        await venue.arm_dead_man(60)  # Bitunix: a no-op; Synthetix: scheduleCancel
        await venue.arm_dead_man(0)


@pytest.mark.parametrize(
    ("opener", "pair", "single", "batch"),
    [
        (bitunix_venue, "BTCUSDT", "place_order", "batch_order"),
        (synthetix_venue, "BTC-USDT", "placeOrders", "placeOrders"),
    ],
    ids=["bitunix", "synthetix"],
)
async def test_a_lost_answer_is_reconciled_never_doubled(
    opener: Callable[[], contextlib.AbstractAsyncContextManager[Any]],
    pair: str,
    single: str,
    batch: str,
) -> None:
    """The exchange places the order but its answer is lost: Execution finds it by client
    order id and adopts it; nothing is sent twice (one order per client id at the server)."""
    async with opener() as (server, venue):
        execution = Execution(venue, lambda event: None)
        ticker = await venue.ticker(pair)
        low = (ticker.bid / 2).quantize(Decimal("0.1"))
        order = LimitOrder(pair=pair, side="buy", volume=Decimal("0.01"), price=low)
        server.lose.append(single)
        placed = await execution.place(order)
        server.lose.append(batch)
        batched = await execution.place_batch([order] * 3)
        assert server.lose == []  # both answers were really lost
        for update in [placed, *batched]:
            final = next(o for o in execution.open_orders() if o.cl_ord_id == update.cl_ord_id)
            assert final.state is OrderState.ACCEPTED and final.txid
        open_ids = [o.cl_ord_id for o in await venue.open_orders()]
        assert sorted(open_ids) == sorted(u.cl_ord_id for u in [placed, *batched])
        assert execution.resent == 0
