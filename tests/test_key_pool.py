"""Several keys of one account as one lane (framework/pool.py), against a sandbox account
with four keys: shared balances and orders, nonces per key."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest

from framework.config import Config
from framework.exchanges.kraken import limits
from framework.exchanges.kraken.client import KrakenClient
from framework.nonce import SqliteStore
from framework.nonce.history import NonceHistory
from framework.registry import open_venue
from framework.sandbox import Sandbox, generate_credentials, kraken_rules
from framework.sandbox.auth import KrakenFailure
from framework.secret import key_id


async def test_four_keys_of_one_account_share_the_work_and_never_refuse_a_nonce(
    tmp_path: Path,
) -> None:
    keys = [generate_credentials() for _ in range(4)]
    async with Sandbox(
        dict(keys), delay_ms=(0, 5), seed=5, account_of={k: "desk" for k, _ in keys}
    ) as sandbox:
        store = SqliteStore(tmp_path / "nonces.sqlite")
        async with KrakenClient(
            *keys[0],
            sandbox.base_url,
            store=store,
            history=NonceHistory(tmp_path / "history.jsonl"),
            tier=None,
            pool=keys[1:],
        ) as kraken:
            assert kraken.lane.ordering == "strict, pool of 4 keys"

            async def producer(n: int) -> None:
                for i in range(6):
                    await kraken.balance()
                    await kraken.add_order(
                        pair="XBTUSD",
                        side="buy",
                        ordertype="limit",
                        volume="0.001",
                        price="1000",
                        cl_ord_id=f"p{n}-{i}",
                    )

            async with asyncio.timeout(30):
                await asyncio.gather(*(producer(n) for n in range(32)))
                # orders are the account's: any key finds and cancels any of them
                assert len((await kraken.private("OpenOrders"))["open"]) == 192
                for n in range(8):
                    await kraken.cancel_order(cl_ord_id=f"p{n}-0")
                assert len((await kraken.private("OpenOrders"))["open"]) == 184
            assert kraken.lane.stats.refused == 0
        store.close()
        stats = [sandbox.stats()[key_id(k)] for k, _ in keys]
        nonces = [sandbox.accepted_nonces(k) for k, _ in keys]
    assert all(s["accepted"] > 40 for s in stats), stats  # the work was spread
    assert all(s["invalid_nonce"] == 0 for s in stats)
    for accepted in nonces:
        assert all(y > x for x, y in itertools.pairwise(accepted))


async def test_a_config_names_the_pool_and_its_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = [generate_credentials() for _ in range(2)]
    for suffix, (key, secret) in zip(("", "_2"), keys, strict=True):
        monkeypatch.setenv(f"ORDERLY_KRAKEN_API_KEY{suffix}", key)
        monkeypatch.setenv(f"ORDERLY_KRAKEN_API_SECRET{suffix}", secret)
    async with Sandbox(dict(keys), account_of={k: "desk" for k, _ in keys}) as sandbox:
        config = Config.model_validate(
            {
                "exchange": {
                    "name": "kraken",
                    "base_url": sandbox.base_url,
                    "tier": "none",
                    "pool_keys": 2,
                },
                "state": {"store": str(tmp_path / "n.sqlite"), "history": str(tmp_path / "h")},
            }
        )
        async with open_venue(config) as venue:
            assert venue.lane.ordering == "strict, pool of 2 keys"
            assert "ZUSD" in await venue.balances()


async def test_the_sandbox_counts_the_engine_per_account_and_rest_per_key() -> None:
    """Kraken's matching-engine counter is the account's: two keys of one account placing
    orders fill it together; the REST counter stays each key's."""
    keys = [generate_credentials() for _ in range(2)]
    async with Sandbox(
        dict(keys), tier="starter", account_of={k: "desk" for k, _ in keys}
    ) as sandbox:
        limits = sandbox.limits
        assert limits is not None
        for key, _ in keys:
            for _ in range(30):  # 60 orders in all: the starter engine counter holds 60
                limits.charge(key, "AddOrder", {"pair": "XBTUSD"}, lambda ref: None, "desk")
        with pytest.raises(KrakenFailure, match="EOrder:Rate limit exceeded"):
            limits.charge(keys[0][0], "AddOrder", {"pair": "XBTUSD"}, lambda ref: None, "desk")
        for key, _ in keys:  # each key's REST counter is its own: 15 a key
            for _ in range(15):
                limits.charge(key, "Balance", {}, lambda ref: None, "desk")


async def test_the_keys_of_a_pool_pace_the_accounts_engine_counter_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kraken's matching-engine counter is the account's, per pair: each key of a pool paced
    it alone, so two keys placed twice what the account may (the sandbox refused them)."""
    slow = {"rest_max": 20, "rest_decay": 100.0, "engine_max": 12, "engine_decay": 12.0}
    monkeypatch.setitem(limits.TIERS, "test", limits.Tier(**slow))
    monkeypatch.setitem(kraken_rules.TIERS, "test", kraken_rules.Tier(**slow))
    keys = [generate_credentials() for _ in range(2)]
    async with Sandbox(dict(keys), tier="test", account_of={k: "desk" for k, _ in keys}) as sandbox:
        async with KrakenClient(
            *keys[0],
            sandbox.base_url,
            store=SqliteStore(tmp_path / "nonces.sqlite"),
            history=NonceHistory(None),
            tier="test",
            pool=keys[1:],
        ) as kraken:
            order = {"pair": "XBTUSD", "side": "buy", "ordertype": "limit", "volume": "0.001"}
            async with asyncio.timeout(20):
                await asyncio.gather(*(kraken.add_order(**order, price="1000") for _ in range(30)))
        refused = sum(sandbox.stats()[key_id(k)]["rate_limited"] for k, _ in keys)
        placed = len(sandbox.engine.orders)
    assert (refused, placed) == (0, 30)
