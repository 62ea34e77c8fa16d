"""ctx.state: what a strategy keeps across restarts, written to the order journal after its
hooks (with the fill ``on_fill`` had, in one transaction); values that would not come back
as they were are refused, naming where."""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import pytest

from framework.errors import InvalidArguments, StateError
from framework.events import Fill, OrderState, Ticker
from framework.execution import Execution
from framework.guard import Guard, Lifecycle
from framework.journal import OrderJournal
from framework.orders import LimitOrder, OrderBook
from framework.strategy import Context, Strategy
from framework.strategy_state import MAX_BYTES, StateKeeper, dump, load


def _deep(levels: int) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for _ in range(levels):
        state = {"next": state}
    return state


def _circular() -> dict[str, Any]:
    state: dict[str, Any] = {"orders": []}
    state["orders"].append(state)
    return state


def test_a_state_comes_back_as_it_was_saved() -> None:
    state = {
        "position": Decimal("-0.00100"),
        "levels": [1, 2.5, "x", None, True, {"deep": Decimal("1E-8")}],
        "pair": ("XBTUSD", 3),
    }
    again = load(dump(state), "journal")
    assert again["position"] == Decimal("-0.00100") and str(again["position"]) == "-0.00100"
    assert again["levels"] == [1, 2.5, "x", None, True, {"deep": Decimal("1E-8")}]
    assert again["pair"] == ["XBTUSD", 3]  # a tuple comes back as a list
    assert load(dump(_deep(64)), "journal") == _deep(64)  # as deep as may be kept
    assert load(None, "journal") == {}


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({"seen": {1, 2}}, "ctx.state['seen']: a set cannot be saved"),
        ({"a": [{"b": object()}]}, "ctx.state['a'][0]['b']: a object cannot be saved"),
        ({"x": math.nan}, "ctx.state['x']: nan cannot be saved"),
        ({"by_id": {7: "x"}}, "ctx.state['by_id']: a key 7 cannot be saved"),
        ({"$decimal": "1"}, "ctx.state: a key '$decimal' cannot be saved"),
        ({"blob": "x" * MAX_BYTES}, "bytes as JSON; at most 1048576"),
        (_deep(65), "ctx.state['next']['next']['next']['next']['next']...: nests deeper than 64"),
        (_circular(), "ctx.state['orders'][0]['orders'][0]['orders'][0][...: nests deeper"),
    ],
)
def test_what_cannot_come_back_is_refused_naming_where(state: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArguments) as refused:
        dump(state)
    assert message in refused.value.message
    with pytest.raises(InvalidArguments, match="must stay a dict"):
        dump(cast(dict[str, Any], [1]))


@pytest.mark.parametrize(
    "text",
    ['{"a":', "[1]", '{"a":{"$decimal":"lots"}}', '{"a":' + "[" * 100_000 + "]" * 100_000 + "}"],
)
def test_a_saved_state_that_cannot_be_read_names_the_journal(text: str) -> None:
    with pytest.raises(StateError, match=r"order journal j\.sqlite: the saved strategy state"):
        load(text, "order journal j.sqlite")


class Hoarder(Strategy):
    """Keeps its fills' volume; on a tick stores something that cannot be saved."""

    async def on_fill(self, fill: Fill) -> None:
        self.ctx.state["bought"] = self.ctx.state.get("bought", Decimal(0)) + fill.volume

    async def on_tick(self, ticker: Ticker) -> None:
        self.ctx.state["seen"] = {ticker.pair}


async def test_the_state_is_saved_with_the_delivered_fill_and_a_bad_value_is_a_hook_failure(
    tmp_path: Path,
) -> None:
    journal = OrderJournal(tmp_path / "orders.sqlite", exchange="kraken", key_id="k")
    book = OrderBook(journal=journal)
    (order,) = book.record_all(
        [LimitOrder(pair="XBTUSD", side="buy", volume=Decimal(1), price=Decimal(100))]
    )
    book.set_txid(order, "T-1")
    book.move(order, OrderState.ACCEPTED)
    fill = Fill("t1", order.cl_ord_id, "T-1", "XBTUSD", "buy", Decimal(100), Decimal("0.25"),
                Decimal(0), True, 1.0)  # fmt: skip
    assert book.apply_fill(order, fill)
    strategy, said = Hoarder(), []
    strategy.ctx = Context(cast(Execution, None), name="Hoarder")
    kept = StateKeeper(book, journal, strategy.ctx)
    guard = Guard(strategy, timeout=1, policy="keep_running", on_stop_bot=print,
                  after=kept.after, say=said.append)  # fmt: skip
    guard.state = Lifecycle.RUNNING
    await guard.deliver(fill)
    assert journal.undelivered() == []  # one transaction: delivered, and the state with it
    assert load(journal.strategy_state("Hoarder"), "j") == {"bought": Decimal("0.25")}
    zero = Decimal(0)
    await guard.deliver(Ticker("XBTUSD", zero, zero, zero, 1.0))
    assert guard.failures == 1 and "ctx.state['seen']: a set cannot be saved" in said[0]
    assert load(journal.strategy_state("Hoarder"), "j") == {"bought": Decimal("0.25")}
    journal.close()
    again = OrderJournal(tmp_path / "orders.sqlite", exchange="kraken", key_id="k")
    restarted = Context(cast(Execution, None), name="Hoarder")
    StateKeeper(OrderBook(journal=again), again, restarted)
    assert restarted.state == {"bought": Decimal("0.25")}
    again.close()
