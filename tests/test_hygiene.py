"""Hygiene: state is private on disk, amounts go on the wire as plain decimals, a boolean is
not an amount, and finished orders leave memory (the journal keeps them)."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from framework.clock import ManualClock
from framework.config import Config
from framework.errors import InvalidArguments, InvalidRequest
from framework.events import OrderState
from framework.exchanges.base import plain
from framework.exchanges.bitunix.venue import order_fields as bitunix_fields
from framework.exchanges.kraken.order_fields import order_params as kraken_fields
from framework.exchanges.kraken.venue import kraken_venue
from framework.exchanges.synthetix.venue import order_fields as synthetix_fields
from framework.journal import OrderJournal
from framework.nonce import SqliteStore
from framework.nonce.history import NonceHistory
from framework.orders import LimitOrder, MarketOrder, OrderBook
from framework.paths import private_file
from framework.sandbox import Sandbox
from tests.helpers.kraken import client


@pytest.fixture
def loose_umask() -> Iterator[None]:
    old = os.umask(0o022)  # what most machines have: files 0644, directories 0755
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("loose_umask")
async def test_state_files_are_0600_and_their_directories_0700(
    tmp_path: Path, creds: tuple[str, str]
) -> None:
    state = tmp_path / "state" / "orderly"
    store = SqliteStore(state / "nonces.sqlite")
    history = NonceHistory(state / "history" / "nonces.jsonl")
    journal = OrderJournal(state / "orders.sqlite", exchange="kraken", key_id="k")
    private_file(state / "logs" / "orderly.jsonl")
    async with (
        Sandbox(dict([creds])) as sandbox,
        client(*creds, sandbox.base_url, store=store, history=history) as kraken,
    ):
        await kraken.balance()
        history.flush()
        files = sorted(p for p in (tmp_path / "state").rglob("*") if p.is_file())
        directories = sorted(p for p in (tmp_path / "state").rglob("*") if p.is_dir())
        assert {p.name for p in files} >= {
            "nonces.sqlite",
            "nonces.sqlite-wal",
            "nonces.jsonl",
            "orders.sqlite",
            "orderly.jsonl",
        }
        assert {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}
        assert {p.name: mode(p) for p in directories} == {p.name: 0o700 for p in directories}
        assert mode(tmp_path / "state") == 0o700
    journal.close()
    history.close()
    store.close()


def test_amounts_go_on_the_wire_as_plain_decimals() -> None:
    assert plain(Decimal("3E+4")) == "30000" and plain(Decimal("1E-8")) == "0.00000001"
    order = LimitOrder(pair="XBTUSD", side="buy", volume=Decimal("1E-3"), price=Decimal("3E+4"))
    assert kraken_fields(order, "c")["volume"] == "0.001"
    assert kraken_fields(order, "c")["price"] == "30000"
    assert (bitunix_fields(order, "c")["qty"], bitunix_fields(order, "c")["price"]) == (
        "0.001",
        "30000",
    )
    assert synthetix_fields(order, "c")["quantity"] == "0.001"


def test_a_boolean_is_not_an_amount() -> None:
    with pytest.raises(InvalidArguments, match="boolean"):
        MarketOrder(pair="XBTUSD", side="buy", volume=True)  # type: ignore[arg-type]
    with pytest.raises(InvalidArguments, match="boolean"):
        LimitOrder(pair="XBTUSD", side="buy", volume=Decimal(1), price=True)  # type: ignore[arg-type]


def test_finished_orders_leave_memory_and_stay_in_the_journal(tmp_path: Path) -> None:
    clock = ManualClock()
    journal = OrderJournal(tmp_path / "orders.sqlite", exchange="kraken", key_id="k")
    book = OrderBook(clock=clock, journal=journal)
    old = book.record(MarketOrder(pair="XBTUSD", side="buy", volume=Decimal(1)))
    book.set_txid(old, "T-OLD")
    book.move(old, OrderState.ACCEPTED)
    book.move(old, OrderState.FILLED)
    clock.advance(book.retain_finished_s + 1)
    new = book.record(MarketOrder(pair="XBTUSD", side="buy", volume=Decimal(1)))
    book.move(new, OrderState.REJECTED, "refused")
    assert book.get(old.cl_ord_id) is None and book.by_txid("T-OLD") is None
    assert book.get(new.cl_ord_id) is new  # finished just now: still here
    assert [o.cl_ord_id for o in book] == [new.cl_ord_id]
    journal.close()
    rows = sqlite3.connect(tmp_path / "orders.sqlite").execute("SELECT cl_ord_id FROM orders")
    assert {r[0] for r in rows} == {old.cl_ord_id, new.cl_ord_id}


async def test_the_sandbox_refuses_an_absurd_price_instead_of_failing(
    creds: tuple[str, str],
) -> None:
    """It answered HTTP 500 to a price of 1E+30 (Decimal's modulo gave up)."""
    async with Sandbox(dict([creds])) as sandbox, client(*creds, sandbox.base_url) as kraken:
        for price in ("1E+30", "1e400"):
            with pytest.raises(InvalidRequest, match="Invalid arguments:price"):
                await kraken.private(
                    "AddOrder",
                    {
                        "pair": "XBTUSD",
                        "type": "buy",
                        "ordertype": "limit",
                        "volume": "0.001",
                        "price": price,
                    },
                )


def test_kraken_amounts_take_the_pairs_precision() -> None:
    order = LimitOrder(pair="XBTUSD", side="buy", volume=Decimal("1E-3"), price=Decimal("3E+4"))
    params = kraken_fields(order, "c", (1, 8))  # XBTUSD: price 1 decimal, volume 8
    assert (params["price"], params["volume"]) == ("30000.0", "0.00100000")
    finer = LimitOrder(pair="XBTUSD", side="buy", volume=Decimal("0.001"), price=Decimal("1.05"))
    assert kraken_fields(finer, "c", (1, 8))["price"] == "1.05"  # never rounded away


async def test_the_kraken_venue_reads_the_precision_from_asset_pairs(
    tmp_path: Path, creds: tuple[str, str]
) -> None:
    config = Config.model_validate(
        {
            "exchange": {"tier": "none"},
            "state": {"store": str(tmp_path / "n.sqlite"), "history": str(tmp_path / "h.jsonl")},
        }
    )
    async with (
        Sandbox(dict([creds])) as sandbox,
        kraken_venue(config, *creds, sandbox.base_url) as venue,
    ):
        fine = LimitOrder(pair="XBTUSD", side="buy", volume=Decimal("1E-3"), price=Decimal(1000))
        txid = await venue.place(fine, "a" * 32)
        (placed,) = [o for o in sandbox.engine.orders.values() if o.txid == txid]
        assert placed.price == Decimal("1000.0") and venue._pairs["XBTUSD"].precision == (1, 8)
