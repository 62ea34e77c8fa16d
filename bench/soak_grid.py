"""Soak: the example grid (or, with ``--strategy maker``, the example market maker), run by
the real runner against the sandbox with every fault kind at 1-2 %, for ten minutes. Too
long for ``make test``; run it by hand:

    .venv/bin/python bench/soak_grid.py [--minutes 10] [--seed 1] [--strategy grid|maker]

It prints, for every minute, the fills so far and those of that minute (the grid must keep
trading: fills rise in every minute), and at the end: the bot's tracked open orders against
the exchange's open orders with the bot's client ids (they must be equal, with the same price
and volume), orders still UNKNOWN (must be 0), the faults injected, and the nonces the sandbox
refused (must be 0).
The bot stops with ``cancel_on_stop = false`` so that the comparison sees what the bot
believes is open, and with ``drain_timeout_s = 60`` so that a reconciliation under way
(a lost batch answer: lookups paced by the tier, then the order deadline) can finish
before it compares. The grid's settings are config/paper.toml's (re-quote every 15 s) on the
intermediate tier: a grid that re-quotes faster than its tier's engine counter allows (young
amends cost up to 4 points, young cancels up to 8) backs up its strict lane, and polls wait
behind paced calls.
The runner streams ticks and fills from the sandbox's WebSocket (the sandbox's REST faults
do not touch it; reconnections are tested in tests/test_streams.py). Everything runs on
127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from framework import log
from framework.config import load
from framework.journal import OrderJournal
from framework.runner import Runner
from framework.sandbox import Fault, FaultRules, Sandbox, generate_credentials
from framework.sandbox.faults import KINDS
from framework.secret import key_id

ROOT = Path(__file__).resolve().parent.parent


#: What ``--strategy`` runs: its class and its ``[strategy.params]``.
STRATEGIES = {
    "grid": (
        f"{ROOT / 'strategies' / 'grid.py'}:Grid",
        'levels = 4\nspacing_bps = 4\nvolume = "0.002"\nrefresh_s = 15',
    ),
    "maker": (
        f"{ROOT / 'strategies' / 'maker.py'}:Maker",
        'half_spread_bps = 3\nvolume = "0.001"\nmax_position = "0.01"\nrequote_bps = 2',
    ),
}


def write_config(tmp: Path, url: str, ws_url: str, strategy: str = "grid") -> Path:
    cls, params = STRATEGIES[strategy]
    path = tmp / "soak.toml"
    path.write_text(f"""
[exchange]
name = "kraken"
base_url = "{url}"
ws_url = "{ws_url}"
ws_auth_url = "{ws_url}"
tier = "intermediate"
timeout_s = 2
order_deadline_s = 5
[strategy]
class = "{cls}"
pairs = ["XBTUSD"]
[strategy.params]
{params}
[runner]
tick_interval_s = 1
order_poll_s = 2
summary_interval_s = 3600
cancel_on_stop = false
dead_man_timeout_s = 0
drain_timeout_s = 60
{state_text(tmp)}""")
    return path


def state_text(tmp: Path) -> str:
    """A soak's log settings and ``[state]``: everything in ``tmp``."""
    return f"""log_file = "{tmp / "log.jsonl"}"
log_level = "warning"
[state]
store = "{tmp / "nonces.sqlite"}"
history = "{tmp / "history.jsonl"}"
journal = "{tmp / "orders.sqlite"}"
"""


def freeze_market(sandbox: Sandbox) -> None:
    """Stop the sandbox's prices where they are, as the bot is told to stop: no resting
    order fills after the bot's last look, so its journal can be held to the exchange's
    book exactly (a fill after the stop is the next start's to adopt)."""
    at = sandbox.market.now()
    sandbox.market.now = lambda: at  # type: ignore[method-assign]


def every_fault(seed: int) -> FaultRules:
    """Each of the sandbox's fault kinds at 1 or 2 %, seeded; slow answers come 3 s late,
    late calls reach the engine after 6 s (past the 5 s order deadline)."""
    return FaultRules(
        faults=tuple(Fault(kind, 0.01 + 0.01 * (i % 2)) for i, kind in enumerate(KINDS)),
        seed=seed,
        slow_s=3.0,
        late_s=6.0,
    )


async def soak(minutes: float, seed: int, strategy: str = "grid") -> int:
    tmp = Path(tempfile.mkdtemp(prefix="orderly-soak-"))
    creds = generate_credentials()
    os.environ["ORDERLY_KRAKEN_API_KEY"], os.environ["ORDERLY_KRAKEN_API_SECRET"] = creds
    faults = every_fault(seed)
    log.configure("error", stream=io.StringIO())
    async with Sandbox(dict([creds]), faults=faults, tier="intermediate", seed=seed) as sandbox:
        runner = Runner(
            load(write_config(tmp, sandbox.base_url, sandbox.ws_url, strategy)),
            out=io.StringIO(),
        )
        task = asyncio.create_task(runner.main(install_signals=False))
        started = time.monotonic()
        last, flat_minutes = 0, 0
        print(f"soak: {strategy}, {minutes} min, seed {seed}, faults {', '.join(KINDS)} at 1-2 %")
        for minute in range(1, int(minutes) + 1):
            await asyncio.wait([task], timeout=started + 60 * minute - time.monotonic())
            if task.done():
                print(f"the bot stopped early: exit {task.result()}")
                return 1
            fills = runner.tally.fills
            flat_minutes += fills == last
            print(f"minute {minute:3d}: fills {fills:5d} (+{fills - last})")
            last = fills
        freeze_market(sandbox)
        runner.request_stop("soak finished")
        code = await task
        key = creds[0]
        terms = {o.cl_ord_id: (o.price, o.volume) for o in sandbox.engine.open.values()}
        at_exchange = {o.cl_ord_id for o in sandbox.engine.open.values() if o.key == key}
        engine_by_cl = {o.cl_ord_id: o for o in sandbox.engine.orders.values()}
        stats = sandbox.stats()
        injected = dict(sandbox.faults.injected)
    journal = OrderJournal(tmp / "orders.sqlite", exchange="kraken", key_id=key_id(key))
    tracked = journal.open_orders()
    journal.close()
    unknown = sum(o.state.value == "unknown" for o in tracked)
    mine = {o.cl_ord_id for o in tracked}
    refused = sum(s.get("invalid_nonce", 0) for s in stats.values())
    print(f"exit code {code}; minutes without a new fill: {flat_minutes}")
    print(f"open orders: bot {len(mine)}, exchange {len(at_exchange)}")
    print(f"bot == exchange: {mine == at_exchange}; still UNKNOWN: {unknown}")
    differ = [  # the ladder moves by amends: the bot's price and volume must be the exchange's
        o.cl_ord_id[:8]
        for o in tracked
        if o.cl_ord_id in terms
        and terms[o.cl_ord_id] != (getattr(o.request, "price", None), o.request.volume)
    ]
    print(f"open orders whose price or volume differ: {differ or 0}")
    for order in tracked:  # what differs, and why
        if order.cl_ord_id not in at_exchange:
            there = engine_by_cl.get(order.cl_ord_id)
            status = f"{there.state.value} filled {there.filled}" if there else "absent"
            print(
                f"  bot open, exchange not: {order.cl_ord_id[:8]} {order.state.value} "
                f"filled {order.filled}; exchange: {status}"
            )
    for cl_ord_id in at_exchange - mine:
        print(f"  exchange open, bot not: {(cl_ord_id or '?')[:8]}")
    print(f"faults injected: {injected}")
    print(f"nonces refused by the sandbox: {refused}")
    ok = code == 0 and not flat_minutes and mine == at_exchange and not (unknown or differ)
    ok = ok and not refused
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--strategy", choices=sorted(STRATEGIES), default="grid")
    args = parser.parse_args()
    return uvloop.run(soak(args.minutes, args.seed, args.strategy))


if __name__ == "__main__":
    sys.exit(main())
