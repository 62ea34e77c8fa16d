"""Rate limits as data: the client paces itself by the same counters the sandbox enforces."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from framework.call import PrivateCall
from framework.clock import ManualClock
from framework.config import Config
from framework.errors import OrderlyError, RateLimited
from framework.exchanges.kraken import limits
from framework.exchanges.kraken.limits import TIERS, cancel_cost, engine_costs, rest_cost
from framework.exchanges.kraken.venue import kraken_venue
from framework.nonce import SqliteStore
from framework.orders import LimitOrder
from framework.sandbox import Sandbox, generate_credentials, kraken_rules
from framework.sandbox.market import Market, MarketRules
from framework.sandbox.matching import MatchingEngine
from framework.sandbox.paper import open_venue as paper_venue
from framework.venue import Amend
from tests.helpers.kraken import client


def test_costs_follow_the_documented_table() -> None:
    assert rest_cost("Balance") == 1 and rest_cost("TradesHistory") == 2
    assert rest_cost("AddOrder") == rest_cost("CancelOrder") == 0
    assert [cancel_cost(a) for a in (0, 5, 10, 15, 45, 90, 300)] == [8, 6, 5, 4, 2, 1, 0]
    assert cancel_cost(None) == 8
    assert engine_costs("AddOrderBatch", {"pair": "XBTUSD", "orders": [{}] * 7}) == {"XBTUSD": 7}
    assert TIERS["starter"].rest_max == 15 and TIERS["starter"].rest_decay == 0.33
    assert TIERS["intermediate"].engine_max == 125 and TIERS["pro"].engine_decay == 3.75


@pytest.mark.parametrize("costs", ["client", "sandbox"])
def test_amends_and_edits_cost_what_kraken_documents(costs: str) -> None:
    """docs.kraken.com, Spot Trading Limits: Amend +1, and +3/+2/+1 under 5/10/15 s since the
    order was placed or last amended; Edit +1, and +6/+5/+4/+2/+1 under 5/10/15/45/90 s."""
    ages = (0, 5, 10, 15, 45, 90, 300)

    def cost(endpoint: str, params: dict[str, Any], age: float | None) -> int:
        at = lambda ref: None if age is None else ("XBTUSD", age)  # noqa: E731
        if costs == "client":
            return sum(engine_costs(endpoint, params, at).values())
        return sum(kraken_rules.engine_points(endpoint, params, at).values())

    amend, edit = {"cl_ord_id": "a"}, {"txid": "O1", "pair": "XBTUSD"}
    assert [cost("AmendOrder", amend, a) for a in ages] == [4, 3, 2, 1, 1, 1, 1]
    assert [cost("EditOrder", edit, a) for a in ages] == [7, 6, 5, 3, 2, 1, 1]
    assert cost("AmendOrder", amend, None) == 4 and cost("EditOrder", edit, None) == 7


async def burst(tier: str | None, creds: tuple[str, str]) -> tuple[list[Any], dict[str, Any]]:
    """500 private calls requested at once: reads, trade history, orders and cancels."""
    key, secret = creds
    async with Sandbox({key: secret}, tier="test") as sandbox:
        async with client(
            key, secret, sandbox.base_url, tier=tier, breaker_threshold=10_000
        ) as kraken:

            async def place_and_cancel(n: int) -> None:
                placed = await kraken.add_order(
                    pair="XBTUSD",
                    side="buy",
                    ordertype="limit",
                    volume="0.001",
                    price="1000",
                    cl_ord_id=f"burst-{n}",
                )
                await kraken.cancel_order(txid=placed.txids[0])

            calls: list[Any] = []
            for n in range(125):
                calls += [kraken.balance(), kraken.private("TradesHistory"), place_and_cancel(n)]
            results = await asyncio.gather(*calls, return_exceptions=True)
        return results, sandbox.stats()[kraken.key_id]


async def test_burst_of_500_calls_never_hits_the_limit(creds: tuple[str, str]) -> None:
    results, stats = await burst("test", creds)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert errors == []
    assert stats["rate_limited"] == 0 and stats["invalid_nonce"] == 0
    assert stats["accepted"] == 500  # 125 x (Balance, TradesHistory, AddOrder, CancelOrder)


async def test_the_same_burst_without_pacing_is_refused(creds: tuple[str, str]) -> None:
    results, stats = await burst(None, creds)
    assert stats["rate_limited"] > 0
    assert any(isinstance(r, RateLimited) for r in results)
    assert all(isinstance(r, OrderlyError) for r in results if isinstance(r, BaseException))


def test_unknown_tier_is_a_config_error(creds: tuple[str, str]) -> None:
    with pytest.raises(OrderlyError, match="unknown Kraken tier"):
        client(*creds, "http://127.0.0.1:1", tier="platinum")


async def test_a_restart_right_after_a_burst_is_not_refused(
    tmp_path: Path, creds: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The exchange's REST counter still holds the first process's burst when the second
    starts: the second's pacer starts where the counter may be (from how long the key was
    idle, per the nonce store), not empty. A slow tier (20 points, 10 a second) on both
    sides makes the carry-over last two seconds."""
    slow = {"rest_max": 20, "rest_decay": 10.0, "engine_max": 60, "engine_decay": 600.0}
    monkeypatch.setitem(TIERS, "test", limits.Tier(**slow))
    monkeypatch.setitem(kraken_rules.TIERS, "test", kraken_rules.Tier(**slow))
    key, secret = creds
    async with Sandbox({key: secret}, tier="test") as sandbox:
        for _ in range(2):  # the first process, then its restart at once
            store = SqliteStore(tmp_path / "nonces.sqlite")
            async with client(key, secret, sandbox.base_url, store=store, tier="test") as kraken:
                await asyncio.gather(*(kraken.balance() for _ in range(18)))
            store.close()
        (stats,) = sandbox.stats().values()
    assert stats["rate_limited"] == 0 and stats["accepted"] == 36


async def test_a_rate_limit_refusal_fills_the_pacers_counter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The exchange's counter can be fuller than the pacer knows: another key of the account
    (the engine counter is the account's), another program on the key, or a lost nonce
    store. The pacer's first refusal now tells it the counter is full and the calls after
    it wait for the decay; before, every call until the counter drained was refused too
    (found running bots against one `orderly sandbox` with a fresh state directory)."""
    slow = {"rest_max": 20, "rest_decay": 100.0, "engine_max": 20, "engine_decay": 4.0}
    monkeypatch.setitem(TIERS, "test", limits.Tier(**slow))
    monkeypatch.setitem(kraken_rules.TIERS, "test", kraken_rules.Tier(**slow))
    keys = [generate_credentials() for _ in range(2)]
    account = {key: "desk" for key, _ in keys}
    async with Sandbox(dict(keys), tier="test", account_of=account) as sandbox:

        async def orders(kraken: Any, count: int) -> list[Any]:
            order = {"pair": "XBTUSD", "side": "buy", "ordertype": "limit", "volume": "0.001"}
            return await asyncio.gather(
                *(kraken.add_order(**order, price="1000") for _ in range(count)),
                return_exceptions=True,
            )

        async with client(*keys[0], sandbox.base_url, tier="test") as first:
            await orders(first, 19)  # the account's engine counter: full
        async with client(*keys[1], sandbox.base_url, tier="test") as second:
            results = await orders(second, 1) + await orders(second, 6)
        refused = sandbox.stats()[second.key_id]["rate_limited"]
    assert refused == sum(isinstance(r, RateLimited) for r in results) == 1, results
    assert sum(not isinstance(r, BaseException) for r in results) == 6


async def test_a_rate_limit_refusal_over_websocket_order_entry_fills_the_counter_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``order_entry = "ws"`` paces orders by the same pacer as REST; a refusal that came
    back over the WebSocket did not tell it, so every order after it was refused too."""
    slow = {"rest_max": 20, "rest_decay": 100.0, "engine_max": 20, "engine_decay": 4.0}
    monkeypatch.setitem(TIERS, "test", limits.Tier(**slow))
    monkeypatch.setitem(kraken_rules.TIERS, "test", kraken_rules.Tier(**slow))
    keys = [generate_credentials() for _ in range(2)]
    async with Sandbox(dict(keys), tier="test", account_of={k: "desk" for k, _ in keys}) as sb:
        async with client(*keys[0], sb.base_url, tier="test") as first:
            order = {"pair": "XBTUSD", "side": "buy", "ordertype": "limit", "volume": "0.001"}
            await asyncio.gather(*(first.add_order(**order, price="1000") for _ in range(19)))
        config = Config.model_validate(
            {
                "exchange": {"order_entry": "ws"},
                "state": {"store": str(tmp_path / "n.sqlite"), "history": str(tmp_path / "h")},
            }
        )
        ws = (sb.ws_url, sb.ws_url)
        async with kraken_venue(config, *keys[1], sb.base_url, tier="test", ws_urls=ws) as venue:
            results = []
            for n in range(7):
                request = LimitOrder(pair="XBTUSD", side="buy", volume="0.001", price="1000")
                try:
                    results += await venue.place_batch([(request, f"ws-{n}")])
                except RateLimited as refusal:  # the whole call refused: nothing placed
                    results.append(refusal)
    assert sum(isinstance(r, RateLimited) for r in results) == 1, results


def test_an_amend_restarts_an_orders_age_at_the_sandbox() -> None:
    """Kraken counts a resting order's age from its placement or its last amend: cancelling
    an order amended a moment ago costs what cancelling a new one does."""
    clock = ManualClock(wall_ns=1_800_000_000 * 10**9)
    engine = MatchingEngine(Market(MarketRules(seed=3), clock))
    body = {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "volume": "0.01"}
    engine.add_order("acct", {**body, "price": "1000", "cl_ord_id": "c1"})
    clock.advance(20)
    (pair, age) = engine.order_age("acct", "c1") or ("", 0.0)
    assert (pair, age) == ("XBTUSD", 20)
    engine.amend_order("acct", {"cl_ord_id": "c1", "limit_price": "1001"})
    assert engine.order_age("acct", "c1") == ("XBTUSD", 0)


def test_the_pacer_counts_an_amended_orders_age_from_the_amend() -> None:
    pacer = limits.Pacer(TIERS["pro"])
    pacer.placed("XBTUSD", "c1")
    pacer._orders["c1"] = ("XBTUSD", time.monotonic() - 20)  # placed 20 s ago
    assert engine_costs("CancelOrder", {"cl_ord_id": "c1"}, pacer._age) == {"XBTUSD": 4}
    pacer.answered(PrivateCall("AmendOrder", {"cl_ord_id": "c1"}), {"amend_id": "TAM1"})
    assert engine_costs("CancelOrder", {"cl_ord_id": "c1"}, pacer._age) == {"XBTUSD": 8}


async def test_orders_placed_over_the_websocket_teach_the_pacer_their_ages(
    tmp_path: Path, creds: tuple[str, str]
) -> None:
    """With ``order_entry = "ws"`` the pacer learned no placement times, so every cancel was
    paced as one of an order of unknown age (+8 points, the most), as REST ones are not."""
    config = Config.model_validate(
        {
            "exchange": {"order_entry": "ws"},
            "state": {"store": str(tmp_path / "n.sqlite"), "history": str(tmp_path / "h")},
        }
    )
    async with (
        Sandbox(dict([creds]), tier="pro") as sandbox,
        kraken_venue(
            config, *creds, sandbox.base_url, tier="pro", ws_urls=(sandbox.ws_url,) * 2
        ) as venue,
    ):
        pacer = venue.client.pacer
        assert pacer is not None
        order = LimitOrder(pair="XBTUSD", side="buy", volume="0.001", price="1000")
        await venue.place(order, "one")
        await venue.place_batch([(order, "two"), (order, "three")])
        assert all(pacer._age(ref) is not None for ref in ("one", "two", "three"))
        pacer._orders["one"] = ("XBTUSD", time.monotonic() - 20)  # as if placed 20 s ago
        assert engine_costs("CancelOrder", {"cl_ord_id": "one"}, pacer._age) == {"XBTUSD": 4}
        await venue.amend("one", Amend("XBTUSD", Decimal(1001), None))
        assert engine_costs("CancelOrder", {"cl_ord_id": "one"}, pacer._age) == {"XBTUSD": 8}


def test_a_restart_says_that_its_first_calls_wait_on_the_counters() -> None:
    """A bot restarted after a crash sat silent on the terminal for up to 40 s (the
    intermediate tier) while its pacer waited for counters the last run may have filled."""
    tier = TIERS["intermediate"]
    assert limits.Pacer(tier, name="intermediate").restart_note() is None  # a new key
    assert limits.Pacer(tier, name="intermediate", idle_s=100).restart_note() is None
    note = limits.Pacer(tier, name="intermediate", idle_s=3).restart_note()
    assert note == (
        "this key made calls 3 s ago (the last run): Kraken's counters may still hold them, "
        "so the first calls wait on the intermediate tier's decay (up to 37 s)"
    )


async def test_the_kraken_venue_says_it_at_start(tmp_path: Path, creds: tuple[str, str]) -> None:
    config = Config.model_validate(
        {"state": {"store": str(tmp_path / "n.sqlite"), "history": str(tmp_path / "h")}}
    )
    async with Sandbox(dict([creds]), tier="pro") as sandbox:
        for run in ("first", "again"):
            async with kraken_venue(config, *creds, sandbox.base_url, tier="pro") as venue:
                await venue.balances()
                said = await venue.key_report()
            assert any("the first calls wait" in line for line in said) == (run == "again")


async def test_the_paper_sandbox_starts_with_empty_counters(tmp_path: Path) -> None:
    """The paper sandbox is started anew with each run, its counters empty; a quick second
    `make run` waited on counters its own first run had used (6 s before its first
    summary), and with the restart note said so."""
    config = Config.model_validate(
        {
            "exchange": {"name": "sandbox"},
            "state": {"store": str(tmp_path / "n.sqlite"), "history": str(tmp_path / "h")},
        }
    )
    for _ in ("first", "again"):
        async with paper_venue(config) as venue:
            await venue.balances()
            assert not any("the first calls wait" in line for line in await venue.key_report())
            pacer = venue.client.pacer
            assert pacer is not None and pacer.idle_s is None
