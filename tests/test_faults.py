"""Order safety under faults: with every fault the sandbox can inject, each order a strategy
places exists exactly once at the exchange, and none it believes placed is missing."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from framework.clock import ScaledClock
from framework.config import Config
from framework.errors import TransientError
from framework.events import OrderState
from framework.exchanges.kraken.venue import kraken_venue
from framework.execution import Execution
from framework.orders import LimitOrder
from framework.sandbox import Fault, FaultRules, Sandbox
from framework.sandbox.faults import KINDS
from framework.strategy import Context

ORDERS = 1200
#: Virtual time runs this many times faster than real time: the 2 s order deadlines and the
#: sandbox's slow and late answers pass in tenths of a second, while client and sandbox,
#: sharing the clock, agree on every deadline.
RATE = 10.0


def every_fault(seed: int) -> FaultRules:
    # "late" sleeps past the 2 s order deadline, so those orders are refused by the engine;
    # "slow" answers after 4 virtual s (0.4 real s), past the client's real 0.15 s timeout
    return FaultRules(
        faults=tuple(Fault(kind, 0.01) for kind in KINDS), seed=seed, slow_s=4.0, late_s=2.5
    )


async def flood(ctx: Context, count: int, seed: int) -> None:
    """40 coroutines placing resting buys, singly and in batches of 2-6, cancelling some."""
    rng = random.Random(seed)
    remaining = [count]
    gave_up = [0]

    def order() -> LimitOrder:
        price = Decimal(rng.randint(10_000, 20_000)) / 10
        return LimitOrder(pair="XBTUSD", side="buy", volume=Decimal("0.001"), price=price)

    async def worker() -> None:
        while remaining[0] > 0:
            size = 1 if rng.random() < 0.5 else rng.randint(2, 6)
            remaining[0] -= size
            if size == 1:
                placed = [await ctx.place(order())]
            else:
                placed = await ctx.place_batch([order() for _ in range(size)])
            for update in placed:
                if rng.random() < 0.1 and update.state is OrderState.ACCEPTED:
                    try:
                        await ctx.cancel(update)
                    except TransientError:  # every try failed: a strategy decides what next
                        gave_up[0] += 1

    await asyncio.gather(*(worker() for _ in range(40)))


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_every_order_exactly_once(tmp_path: Path, creds: tuple[str, str], seed: int) -> None:
    config = Config.model_validate(
        {
            # 0.15 s, not less: client and sandbox share one event loop, and with the suite's
            # other worker on the second core a sound answer can take over 0.1 s
            "exchange": {"timeout_s": 0.15, "order_deadline_s": 2},
            "state": {"store": str(tmp_path / "n.sqlite"), "history": str(tmp_path / "h.jsonl")},
        }
    )
    clock = ScaledClock(RATE)
    sandbox = Sandbox(dict([creds]), faults=every_fault(seed), clock=clock)
    async with sandbox, kraken_venue(config, *creds, sandbox.base_url, clock=clock) as venue:
        execution = Execution(venue, lambda event: None, clock=clock)
        await flood(Context(execution, name="flood", pairs=("XBTUSD",)), ORDERS, seed)
        stats = sandbox.stats()[venue.key_id]
    mine = list(execution.book)
    at_exchange = Counter(o.cl_ord_id for o in sandbox.engine.orders.values())
    states = Counter(o.state for o in mine)
    assert len(mine) >= ORDERS
    assert set(sandbox.faults.injected) == set(KINDS)  # every fault type really happened
    assert stats["invalid_nonce"] == 0
    assert max(at_exchange.values()) == 1  # nothing placed twice
    assert states[OrderState.UNKNOWN] == 0  # every ambiguity was resolved
    for order in mine:
        if order.state is OrderState.REJECTED:
            assert at_exchange[order.cl_ord_id] == 0, order
        else:  # believed placed: it is there, under the id the strategy knows
            assert at_exchange[order.cl_ord_id] == 1, order
            assert sandbox.engine.orders[order.txid].cl_ord_id == order.cl_ord_id  # type: ignore[index]
    assert execution.resent > 0  # some orders were confirmed absent and sent again


def test_fault_injection_is_seeded_and_validated() -> None:
    from framework.sandbox.faults import FaultInjector

    injectors = [FaultInjector(every_fault(7)) for _ in range(2)]
    picks = [[injector.pick("AddOrder") for _ in range(500)] for injector in injectors]
    assert picks[0] == picks[1] and any(picks[0])
    only = FaultInjector(FaultRules(faults=(Fault("drop", 1.0, ("AddOrder",)),)))
    assert only.pick("Balance") is None and only.pick("AddOrder") == "drop"
    with pytest.raises(ValueError, match="unknown fault"):
        Fault("meteor", 0.1)


async def test_an_order_whose_every_send_is_dropped_ends_rejected_not_unknown(
    tmp_path: Path, creds: tuple[str, str]
) -> None:
    config = Config.model_validate(
        {
            "exchange": {"timeout_s": 0.5, "order_deadline_s": 2, "tier": "none"},
            "state": {"store": str(tmp_path / "n.sqlite"), "history": str(tmp_path / "h.jsonl")},
        }
    )
    rules = FaultRules(faults=(Fault("drop", 1.0, ("AddOrder",)),))  # never executed
    clock = ScaledClock(RATE)
    sandbox = Sandbox(dict([creds]), faults=rules, clock=clock)
    async with sandbox, kraken_venue(config, *creds, sandbox.base_url, clock=clock) as venue:
        execution = Execution(venue, lambda event: None, clock=clock)
        execution.max_resends = 1
        update = await execution.place(
            LimitOrder(pair="XBTUSD", side="buy", volume=Decimal("0.001"), price=Decimal(1000))
        )
    assert update.state is OrderState.REJECTED and "every answer lost" in str(update.reason)
    assert sandbox.engine.orders == {} and execution.resent == 1
