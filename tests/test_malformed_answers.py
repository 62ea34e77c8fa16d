"""Malformed answers (tests/conformance/mangler.py) through the three exchanges' clients and
venues: whatever an exchange sends, a call returns sane values or raises an OrderlyError,
never anything else, never hangs; memory stays bounded; a good call succeeds afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import random
import resource
import traceback
from collections import Counter
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from framework.config import Config, load
from framework.errors import OrderlyError
from framework.events import Fill, Ticker
from framework.exchanges.bitunix import BitunixClient
from framework.exchanges.bitunix.venue import BitunixVenue, order_fields
from framework.exchanges.kraken.venue import kraken_venue
from framework.exchanges.synthetix import SynthetixClient
from framework.exchanges.synthetix.venue import SynthetixVenue
from framework.exchanges.synthetix.venue import order_fields as synthetix_order
from framework.market import Market
from framework.orders import LimitOrder, MarketOrder
from framework.runner import EXIT_OK, Runner
from framework.sandbox import Sandbox, generate_credentials
from framework.venue import Amend, PairAssets, VenueOrder
from tests.conformance.bitunix_server import BitunixServer
from tests.conformance.mangler import KINDS, Mangler
from tests.conformance.synthetix_server import SynthetixServer
from tests.contract.harness import SNX_ADDRESS, SNX_KEY, SNX_SUB

#: Calls per exchange (a call makes one request or more): over 2,000 answers in all.
#: Synthetix gets fewer: each of its calls is signed with EIP-712, ~5 ms of CPU.
CALLS = {"kraken": 800, "bitunix": 800, "synthetix": 450}
TIMEOUT_S = 0.3
KRAKEN = generate_credentials()
BITUNIX = ("mangled-bitunix-api-key-51c9", "mangled-bitunix-api-secret-8d0e")


@contextlib.asynccontextmanager
async def kraken(tmp: Path, seed: int) -> AsyncIterator[tuple[Mangler, Any, str]]:
    config = Config.model_validate(
        {
            "exchange": {"tier": "none", "timeout_s": TIMEOUT_S},
            "state": {"store": str(tmp / "k.sqlite"), "history": str(tmp / "k.jsonl")},
        }
    )
    async with (
        Sandbox(dict([KRAKEN]), seed=seed) as sandbox,
        Mangler(sandbox.base_url, seed) as mangler,
        kraken_venue(config, *KRAKEN, mangler.base_url) as venue,
    ):
        yield mangler, venue, "XBTUSD"


@contextlib.asynccontextmanager
async def bitunix(tmp: Path, seed: int) -> AsyncIterator[tuple[Mangler, Any, str]]:
    async with (
        BitunixServer(dict([BITUNIX]), seed=seed, enforce_limits=False) as server,
        Mangler(server.base_url, seed) as mangler,
        BitunixClient(*BITUNIX, mangler.base_url, paced=False, timeout=TIMEOUT_S) as client,
    ):
        yield mangler, BitunixVenue(client), "BTCUSDT"


@contextlib.asynccontextmanager
async def synthetix(tmp: Path, seed: int) -> AsyncIterator[tuple[Mangler, Any, str]]:
    async with (
        SynthetixServer({SNX_SUB: SNX_ADDRESS}, seed=seed, bucket=None) as server,
        Mangler(server.base_url, seed) as mangler,
        SynthetixClient(
            SNX_KEY, SNX_SUB, mangler.base_url, bucket=None, timeout=TIMEOUT_S
        ) as client,
    ):
        yield mangler, SynthetixVenue(client, None), "BTC-USDT"


def finite(*amounts: Decimal) -> bool:
    return all(isinstance(a, Decimal) and a.is_finite() for a in amounts)


def sane(result: Any) -> bool:
    """What a venue returns is in Orderly's types, every amount a finite Decimal."""
    if isinstance(result, Market):  # a rule is a positive step, or unknown
        steps = (result.price_step, result.volume_step, result.min_volume)
        return all(s is None or (finite(s) and s > 0) for s in steps)
    if isinstance(result, VenueOrder):
        return isinstance(result.txid, str) and finite(result.filled)
    if isinstance(result, Ticker):
        return finite(result.bid, result.ask, result.last)
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], Fill):
        fill = result[1]
        return finite(fill.price, fill.volume, fill.fee) and fill.volume > 0 and fill.price > 0
    if isinstance(result, dict):
        return all(isinstance(k, str) and sane(v) for k, v in result.items())
    if isinstance(result, list | tuple):
        return all(sane(r) for r in result)
    if dataclasses.is_dataclass(result):  # the clients' own result types
        return all(sane(getattr(result, f.name)) for f in dataclasses.fields(result))
    if isinstance(result, Decimal):
        return result.is_finite()
    return isinstance(result, str | int | float | PairAssets | OrderlyError) or result is None


def venue_calls(venue: Any, pair: str, rng: random.Random, ids: list[str]) -> dict[str, Any]:
    """Each Venue method, with arguments drawn from ``rng``."""

    def order() -> LimitOrder:
        return LimitOrder(
            pair=pair, side="buy", volume=Decimal("0.001"), price=Decimal(rng.randint(900, 999))
        )

    def new_id() -> str:
        ids.append(f"{rng.getrandbits(128):032x}")
        return ids[-1]

    calls: dict[str, Callable[[], Any]] = {
        "place": lambda: venue.place(order(), new_id()),
        "market": lambda: venue.place(
            MarketOrder(pair=pair, side="buy", volume=Decimal("0.001")), new_id()
        ),
        "place_batch": lambda: venue.place_batch([(order(), new_id()) for _ in range(3)]),
        "find": lambda: venue.find(rng.choice(ids)),
        "find_many": lambda: venue.find_many(rng.sample(ids, min(3, len(ids))), since=0),
        "cancel": lambda: venue.cancel(rng.choice(ids), pair=pair, txid=None),
        "cancel_all": venue.cancel_all,
        "balances": venue.balances,
        "open_orders": venue.open_orders,
        "query_orders": lambda: venue.query_orders(["1", "OABC-DEF-GHI"]),
        "fills_since": lambda: venue.fills_since(0),
        "ticker": lambda: venue.ticker(pair),
        "clock_offset": venue.clock_offset,
        "pair_assets": lambda: venue.pair_assets(pair),
        "arm_dead_man": lambda: venue.arm_dead_man(60),
        "key_report": venue.key_report,
    }
    if hasattr(venue, "_pairs"):  # a venue that reads the pair's rules from the exchange
        calls["market_rules"] = lambda: venue.market(pair)
    if venue.can_amend:
        price = lambda: Decimal(rng.randint(900, 999))  # noqa: E731
        calls["amend"] = lambda: venue.amend(rng.choice(ids), Amend(pair, price(), None))
    client = venue.client  # the clients' own typed calls, used without a venue
    if isinstance(client, BitunixClient):
        calls["client"] = lambda: rng.choice(
            [
                lambda: client.batch_order(
                    pair, [{**order_fields(order(), new_id()), "effect": "GTC"}] * 2
                ),
                client.get_pending_orders,
                client.get_history_trades,
                client.account,
                lambda: client.tickers([pair]),
            ]
        )()
    elif isinstance(client, SynthetixClient):
        calls["client"] = lambda: rng.choice(
            [
                lambda: client.place_orders([synthetix_order(order(), new_id())]),
                lambda: client.cancel_orders(client_order_ids=[rng.choice(ids)]),
                lambda: client.schedule_cancel(60),
            ]
        )()
    else:
        calls["client"] = lambda: rng.choice(
            [
                client.balance,
                client.open_orders,
                client.server_time,
                lambda: client.ticker(pair),
                lambda: client.cancel_order(cl_ord_id=rng.choice(ids)),
                lambda: client.add_order(
                    pair=pair, side="buy", ordertype="limit", volume="0.001", price="900"
                ),
            ]
        )()
    return calls


@pytest.mark.parametrize("opener", [kraken, bitunix, synthetix], ids=lambda o: o.__name__)
async def test_malformed_answers_raise_only_orderly_errors(
    tmp_path: Path,
    opener: Callable[[Path, int], contextlib.AbstractAsyncContextManager[Any]],
) -> None:
    rng = random.Random(7)
    leaks: Counter[str] = Counter()
    insane: Counter[str] = Counter()
    typed = 0
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    async with opener(tmp_path, 7) as (mangler, venue, pair):
        ids = ["never-placed"]
        calls = venue_calls(venue, pair, rng, ids)
        for _ in range(CALLS[opener.__name__]):
            name = rng.choice(list(calls))
            if name in ("pair_assets", "market_rules") and hasattr(venue, "_pairs"):
                venue._pairs.clear()  # ask the exchange every time
            try:
                async with asyncio.timeout(5):  # a hang is a failure too
                    result = await calls[name]()
                if not sane(result):
                    insane[f"{name}: {result!r}"[:160]] += 1
            except OrderlyError:
                typed += 1
            except Exception as exc:  # what this test is looking for
                where = traceback.extract_tb(exc.__traceback__)[-1]
                leaks[f"{name}: {type(exc).__name__} at {where.filename}:{where.lineno}"] += 1
        mangler.spoiling = False
        assert isinstance(await venue.balances(), dict)  # a good call succeeds afterwards
        answers = sum(mangler.counts.values())
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert dict(leaks) == {} and dict(insane) == {}
    assert answers >= CALLS[opener.__name__] and set(mangler.counts) == set(KINDS)
    assert typed > CALLS[opener.__name__] / 4  # the mangling really bit
    print(f"{opener.__name__}: {answers} answers, {typed} typed errors, {dict(mangler.counts)}")
    assert grown_mb < 200


#: The calls a running bot makes to watch the market and its orders (not to place or cancel).
POLLS = ("/OpenOrders", "/ClosedOrders", "/QueryOrders", "/TradesHistory", "/Ticker", "/Time")


async def test_a_bot_fed_malformed_poll_answers_keeps_running_and_cancels_on_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDERLY_KRAKEN_API_KEY", KRAKEN[0])
    monkeypatch.setenv("ORDERLY_KRAKEN_API_SECRET", KRAKEN[1])
    config = tmp_path / "bot.toml"
    async with (
        Sandbox(dict([KRAKEN]), seed=5) as sandbox,
        Mangler(sandbox.base_url, 5, only=POLLS) as mangler,
    ):
        config.write_text(f"""
[exchange]
name = "kraken"
base_url = "{mangler.base_url}"
tier = "none"
timeout_s = {TIMEOUT_S}
[strategy]
class = "tests.helpers.strategies:Keeper"
pairs = ["XBTUSD"]
[strategy.params]
out = "{tmp_path / "keeper"}"
[runner]
tick_interval_s = 0.05
order_poll_s = 0.05
max_backoff_s = 0.1
log_file = "{tmp_path / "log.jsonl"}"
dead_man_timeout_s = 0
[state]
store = "{tmp_path / "nonces.sqlite"}"
history = "{tmp_path / "history.jsonl"}"
journal = "{tmp_path / "orders.sqlite"}"
""")
        runner = Runner(load(config), out=io.StringIO())
        task = asyncio.create_task(runner.main(install_signals=False))

        def resting() -> int:
            return sum(o.is_open for o in sandbox.engine.orders.values())

        async with asyncio.timeout(30):
            while sum(mangler.counts.values()) - mangler.counts["pass"] < 100 or resting() < 4:
                assert not task.done(), "the bot stopped by itself"
                await asyncio.sleep(0.05)
        runner.request_stop("test finished")
        async with asyncio.timeout(30):
            assert await task == EXIT_OK
        assert resting() == 0  # cancel-on-stop went through
