"""The order journal: orders written before they are sent and at every change; after
``kill -9`` a restarted bot adopts its open orders and delivers each fill exactly once."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from framework.errors import StateError
from framework.events import Fill, OrderState
from framework.exchanges.kraken.client import KrakenClient
from framework.journal import OrderJournal
from framework.nonce import SqliteStore
from framework.orders import LimitOrder, MarketOrder, OrderBook, TrackedOrder
from framework.strategy_state import load
from tests.test_runner import ROOT, start_sandbox, write_config


def test_the_journal_keeps_open_orders_fills_and_what_was_delivered(tmp_path: Path) -> None:
    path = tmp_path / "orders.sqlite"
    journal = OrderJournal(path, exchange="kraken", key_id="k1")
    book = OrderBook(journal=journal)
    limit, market, done = book.record_all(
        [
            LimitOrder(
                pair="XBTUSD",
                side="buy",
                volume=Decimal("0.5"),
                price=Decimal("100.5"),
                post_only=True,
            ),
            MarketOrder(pair="XBTUSD", side="sell", volume=Decimal(1)),
            LimitOrder(pair="XBTUSD", side="buy", volume=Decimal(1), price=Decimal(1)),
        ]
    )
    book.set_txid(limit, "T-1")
    book.move(limit, OrderState.ACCEPTED)
    fill = Fill(
        "trade-1",
        limit.cl_ord_id,
        "T-1",
        "XBTUSD",
        "buy",
        Decimal(100),
        Decimal("0.2"),
        Decimal("0.01"),
        True,
        5.0,
    )
    assert book.apply_fill(limit, fill)
    book.move(limit, OrderState.PARTIALLY_FILLED)
    book.move(done, OrderState.REJECTED, "EOrder:Insufficient funds")
    journal.close()

    other_key = OrderJournal(path, exchange="kraken", key_id="k2")
    assert other_key.open_orders() == []  # keyed by exchange and key
    other_key.close()
    journal = OrderJournal(path, exchange="kraken", key_id="k1")
    restored = {o.cl_ord_id: o for o in journal.open_orders()}
    assert set(restored) == {limit.cl_ord_id, market.cl_ord_id}  # not the rejected one
    again = restored[limit.cl_ord_id]
    assert again.request == limit.request and again.txid == "T-1"
    assert again.state is OrderState.PARTIALLY_FILLED and again.filled == Decimal("0.2")
    assert again.trade_ids == {"trade-1"} and again.cost == Decimal("20.0")
    assert restored[market.cl_ord_id].request == market.request
    assert journal.undelivered() == [fill]
    journal.delivered("trade-1")
    assert journal.undelivered() == []
    journal.close()


def run_bot(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "framework.cli", "run", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


async def exchange_state(
    creds: tuple[str, str], url: str, store: Path
) -> tuple[set[str], list[str], str]:
    """The client ids of the key's open orders, its trade ids, and its key id (asked with
    the bots' own nonce store: their floor is reserved ahead of the clock)."""
    async with KrakenClient(*creds, url, store=SqliteStore(store), tier=None) as kraken:
        at_exchange = await kraken.open_orders()
        trades = (await kraken.private("TradesHistory"))["trades"]
    terms = {
        raw["cl_ord_id"]: (Decimal(raw["descr"]["price"]), Decimal(raw["vol"]))
        for raw in at_exchange.values()
    }
    return terms, list(trades), kraken.key_id


def wait_for(path: Path, count: int) -> None:
    deadline = time.monotonic() + 20
    while len(lines(path)) < count and time.monotonic() < deadline:
        time.sleep(0.02)


def test_kill_9_and_restart_adopts_open_orders_and_delivers_each_fill_once(
    tmp_path: Path, creds: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDERLY_KRAKEN_API_KEY", creds[0])
    monkeypatch.setenv("ORDERLY_KRAKEN_API_SECRET", creds[1])
    out = tmp_path / "keeper"
    fills = out.with_suffix(".fills")
    config = write_config(
        tmp_path,
        "tests/helpers/strategies.py:Keeper",
        params=f'out = "{out}"',
        runner="cancel_on_stop = false\ndead_man_timeout_s = 0",
    )
    sandbox, url = start_sandbox(creds, config=config)  # its [sandbox]: no rate limits
    config.write_text(
        config.read_text()
        .replace('name = "sandbox"', f'name = "kraken"\nbase_url = "{url}"\ntier = "none"')
        .replace("order_poll_s = 0.05", "order_poll_s = 0.3")
        .replace("[state]\n", f'[state]\njournal = "{tmp_path / "orders.sqlite"}"\n')
    )
    try:
        first = run_bot(config)
        wait_for(fills, 3)
        first.send_signal(signal.SIGKILL)  # mid-flow: orders and fills on their way
        first.communicate(timeout=10)
        second = run_bot(config)
        wait_for(fills, len(lines(fills)) + 3)
        second.send_signal(signal.SIGTERM)
        _, err = second.communicate(timeout=30)
        assert second.returncode == 0, err[-2000:]
        mine, trades, key_id = asyncio.run(exchange_state(creds, url, tmp_path / "nonces.sqlite"))
    finally:
        sandbox.kill()
        sandbox.communicate(timeout=10)
    inherited = [int(n) for n in lines(out.with_suffix(".inherited"))]
    assert inherited[0] == 0 and inherited[1] >= 1  # the second run took over the first's
    journal = OrderJournal(tmp_path / "orders.sqlite", exchange="kraken", key_id=key_id)
    tracked = {o.cl_ord_id: o.request for o in journal.open_orders()}
    journal.close()
    assert set(tracked) == set(mine) and len(mine) == 4  # nothing forgotten, nothing doubled
    for cl_ord_id, request in tracked.items():  # amended across the kill: the exchange's terms
        assert (getattr(request, "price", None), request.volume) == mine[cl_ord_id]
    assert sorted(lines(fills)) == sorted(trades)  # every trade reached on_fill, exactly once
    # ctx.state was saved with each delivered fill: the restarted bot went on counting
    assert lines(out.with_suffix(".state")) == [str(len(trades))]
    journal = OrderJournal(  # the bot is named after its config file, bot.toml
        tmp_path / "orders.sqlite", exchange="kraken", key_id=key_id, bot="bot"
    )
    saved = load(journal.strategy_state("Keeper"), "journal")
    journal.close()
    assert saved["fills"] == len(trades) and isinstance(saved["volume"], Decimal)


@pytest.mark.parametrize(
    ("column", "value"),
    [("kind", "limit/day"), ("side", "hold"), ("price", "-1"), ("volume", "lots")],
)
def test_a_journal_row_that_cannot_be_read_is_an_error_naming_the_journal(
    tmp_path: Path, column: str, value: str
) -> None:
    path = tmp_path / "orders.sqlite"
    journal = OrderJournal(path, exchange="kraken", key_id="k")
    journal.save(TrackedOrder(LimitOrder("XBTUSD", "buy", 1, 100), "c1"))
    journal.close()
    with sqlite3.connect(path) as db:  # a hand edit, or a newer Orderly's row
        db.execute(f"UPDATE orders SET {column}=?", (value,))
    again = OrderJournal(path, exchange="kraken", key_id="k")
    with pytest.raises(StateError, match=f"order journal {path}: cannot read the open orders"):
        again.open_orders()
    again.close()


def slices_logged(log_file: Path) -> list[int]:
    if not log_file.exists():
        return []
    records = [json.loads(line) for line in log_file.read_text().splitlines() if line]
    return [r["n"] for r in records if r.get("event") == "twap_slice"]


def test_the_twap_example_goes_on_with_its_run_after_kill_9(
    tmp_path: Path, creds: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its progress is in ctx.state: the restarted bot sends the slices that were left (not
    the whole run again), buys no more than the total, and stops itself when done."""
    monkeypatch.setenv("ORDERLY_KRAKEN_API_KEY", creds[0])
    monkeypatch.setenv("ORDERLY_KRAKEN_API_SECRET", creds[1])
    params = 'total = "0.004"\nslices = 4\ninterval_s = 0.3'
    config = write_config(tmp_path, "strategies.twap:Twap", params=params)
    sandbox, url = start_sandbox(creds, config=config)
    config.write_text(
        config.read_text()
        .replace('name = "sandbox"', f'name = "kraken"\nbase_url = "{url}"\ntier = "none"')
        .replace("[state]\n", f'[state]\njournal = "{tmp_path / "orders.sqlite"}"\n')
    )
    log_file = tmp_path / "log.jsonl"
    try:
        first = run_bot(config)
        deadline = time.monotonic() + 20
        while 2 not in slices_logged(log_file) and time.monotonic() < deadline:
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=10)
        before = slices_logged(log_file)
        second = run_bot(config)
        out, err = second.communicate(timeout=30)  # it stops by itself
        assert second.returncode == 0, err[-2000:]
        after = slices_logged(log_file)[len(before) :]
        bought = asyncio.run(volume_bought(creds, url, tmp_path / "nonces.sqlite"))
    finally:
        sandbox.kill()
        sandbox.communicate(timeout=10)
    assert before[-1] == 2 and after and after[0] >= 3  # went on: not slice 1 again
    assert after[-1] <= 4 and bought <= Decimal("0.004")
    assert "stopping: twap finished: " in out


async def volume_bought(creds: tuple[str, str], url: str, store: Path) -> Decimal:
    async with KrakenClient(*creds, url, store=SqliteStore(store), tier=None) as kraken:
        trades = (await kraken.private("TradesHistory"))["trades"]
    return sum((Decimal(t["vol"]) for t in trades.values()), Decimal(0))


def test_bots_sharing_a_journal_and_a_key_restore_only_their_own_orders(
    tmp_path: Path,
) -> None:
    """Found reading the restart path: two bots on one key (shared through Redis) keep
    their journals in the same default file, and each restart adopted every open order of
    the key, the other bot's too (its strategy then cancelled or re-priced them, and got
    their fills). Each bot is named (``[state] bot_id``, default: its config file's name)."""
    path = tmp_path / "orders.sqlite"
    a = OrderJournal(path, exchange="kraken", key_id="k", bot="grid-a")
    b = OrderJournal(path, exchange="kraken", key_id="k", bot="grid-b")
    (mine,) = OrderBook(journal=a).record_all(
        [LimitOrder(pair="XBTUSD", side="buy", volume=Decimal(1), price=Decimal(100))]
    )
    book_b = OrderBook(journal=b)
    (theirs,) = book_b.record_all(
        [LimitOrder(pair="XBTUSD", side="sell", volume=Decimal(1), price=Decimal(200))]
    )
    book_b.set_txid(theirs, "T-2")
    fill = Fill("t2", theirs.cl_ord_id, "T-2", "XBTUSD", "sell", Decimal(200), Decimal("0.5"),
                Decimal(0), True, 1.0)  # fmt: skip
    assert book_b.apply_fill(theirs, fill)
    a.delivered(None, ("Grid", '{"n":1}'))
    b.delivered(None, ("Grid", '{"n":2}'))
    assert [o.cl_ord_id for o in a.open_orders()] == [mine.cl_ord_id]
    assert [o.cl_ord_id for o in b.open_orders()] == [theirs.cl_ord_id]
    assert a.undelivered() == [] and b.undelivered() == [fill]
    assert (a.strategy_state("Grid"), b.strategy_state("Grid")) == ('{"n":1}', '{"n":2}')
    everyone = OrderJournal(path, exchange="kraken", key_id="k")  # tools: every bot's
    assert len(everyone.open_orders()) == 2 and everyone.undelivered() == [fill]
    for journal in (a, b, everyone):
        journal.close()


def test_a_journal_from_before_the_bots_names_is_adopted_by_the_named_bot(
    tmp_path: Path,
) -> None:
    path = tmp_path / "orders.sqlite"
    old = OrderJournal(path, exchange="kraken", key_id="k")
    (order,) = OrderBook(journal=old).record_all(
        [LimitOrder(pair="XBTUSD", side="buy", volume=Decimal(1), price=Decimal(100))]
    )
    old.close()
    with sqlite3.connect(path) as db:  # the table as journals had it before the names
        db.execute("ALTER TABLE orders DROP COLUMN bot")
        db.execute("ALTER TABLE orders DROP COLUMN reduce_only")
    db.close()
    named = OrderJournal(path, exchange="kraken", key_id="k", bot="paper")
    assert [o.cl_ord_id for o in named.open_orders()] == [order.cl_ord_id]
    named.close()
