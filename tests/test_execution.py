"""Execution against the sandbox: batches split with one nonce each, per-order results."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

from framework.config import Config
from framework.events import Fill, OrderState, OrderUpdate
from framework.exchanges.kraken.venue import KrakenVenue, kraken_venue
from framework.execution import Execution
from framework.orders import LimitOrder, MarketOrder
from framework.sandbox import Sandbox


@contextlib.asynccontextmanager
async def venue(tmp_path: Path, creds: tuple[str, str]) -> AsyncIterator[KrakenVenue]:
    config = Config.model_validate(
        {"state": {"store": str(tmp_path / "n.sqlite"), "history": str(tmp_path / "h.jsonl")}}
    )
    async with (
        Sandbox(dict([creds])) as sandbox,
        kraken_venue(config, creds[0], creds[1], sandbox.base_url) as v,
    ):
        yield v


async def test_batch_is_split_and_mapped_back(tmp_path: Path, creds: tuple[str, str]) -> None:
    events: list[object] = []
    async with venue(tmp_path, creds) as v:
        execution = Execution(v, events.append)
        orders = [
            LimitOrder(pair="XBTUSD", side="buy", volume=Decimal("0.001"), price=Decimal(30000 + i))
            for i in range(20)
        ]
        orders[7] = LimitOrder(
            pair="XBTUSD", side="buy", volume=Decimal("5"), price=Decimal(30007)
        )  # more than the balance: refused alone
        orders += [
            LimitOrder(pair="ETHUSD", side="sell", volume=Decimal("0.01"), price=Decimal(9000))
        ]
        sent_before = v.lane.stats.sent
        updates = await execution.place_batch(orders)
        calls = v.lane.stats.sent - sent_before
    assert calls == 3  # XBTUSD 15 + 5, ETHUSD 1 (sent singly): one nonce per call
    assert [u.state for u in updates].count(OrderState.ACCEPTED) == 20
    assert updates[7].state is OrderState.REJECTED
    assert updates[7].reason == "EOrder:Insufficient funds"
    assert [u.price for u in updates] == [o.price for o in orders]  # mapped back in order
    assert len({u.txid for u in updates if u.txid}) == 20
    assert [e for e in events if isinstance(e, OrderUpdate)] == updates


async def test_poll_delivers_each_fill_once(tmp_path: Path, creds: tuple[str, str]) -> None:
    events: list[object] = []
    async with venue(tmp_path, creds) as v:
        execution = Execution(v, events.append, since=0)
        placed = await execution.place(
            MarketOrder(pair="XBTUSD", side="buy", volume=Decimal("0.01"))
        )
        for _ in range(3):  # polls overlap: the same trade is seen again and again
            await execution.poll()
    fills = [e for e in events if isinstance(e, Fill)]
    assert len(fills) == 1 and fills[0].cl_ord_id == placed.cl_ord_id
    states = [e.state for e in events if isinstance(e, OrderUpdate)]
    assert states == [OrderState.ACCEPTED, OrderState.FILLED]
