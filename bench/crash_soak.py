"""Crash soak: the example grid as a real ``orderly run`` process against the sandbox (in this
process, with every fault kind at 1-2 %), killed with SIGKILL at random moments and started
again, many times; then stopped cleanly and checked against the exchange. Too long for
``make test``; run it by hand:

    .venv/bin/python bench/crash_soak.py [--kills 15] [--seed 1] [--min-s 5] [--max-s 25]

A restarted bot takes the key's rate counters as full as the process before may have left
them (Kraken's counters outlive it), so its first calls wait on the tier's decay: kills
closer together than that leave it little time to trade.

What must hold after every kill and restart, and what it prints:
- nothing forgotten: the bot's open orders (its journal) are the exchange's open orders
  with the bot's client ids;
- nothing doubled: no client order id reached the exchange's book twice;
- no fill dropped: every trade of the key reached ``on_fill`` (a process killed inside
  ``on_fill`` gets that fill again after the restart: at least once, counted apart);
- each fill counted once in ``ctx.state`` (saved with the fill's delivered mark): the
  count the strategy kept equals the exchange's trades, re-deliveries or not;
- no nonce reused or lower: the sandbox refused none, and ``orderly nonces check`` passes on
  the history the processes wrote one after another.
Everything runs on 127.0.0.1; every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.soak_grid import every_fault, freeze_market, state_text  # noqa: E402
from framework import Fill  # noqa: E402
from framework.strategy_state import load  # noqa: E402
from strategies.grid import Grid  # noqa: E402


class RecordingGrid(Grid):
    """The example grid, writing each fill's trade id to ``$CRASH_SOAK_FILLS`` (at least
    once) and counting its fills in ``ctx.state`` (exactly once)."""

    async def on_fill(self, fill: Fill) -> None:
        _record(fill.trade_id)
        self.ctx.state["fills"] = self.ctx.state.get("fills", 0) + 1


def _record(trade_id: str) -> None:
    with open(os.environ["CRASH_SOAK_FILLS"], "a", encoding="utf-8") as file:
        file.write(trade_id + "\n")


def write_config(tmp: Path, url: str, tier: str) -> Path:
    path = tmp / "crash.toml"
    path.write_text(f"""
[exchange]
name = "kraken"
base_url = "{url}"
tier = "{tier}"
timeout_s = 2
order_deadline_s = 5
[strategy]
class = "{Path(__file__).resolve()}:RecordingGrid"
pairs = ["XBTUSD"]
[strategy.params]
levels = 3
spacing_bps = 8
volume = "0.001"
refresh_s = 3
[runner]
streams = false
tick_interval_s = 0.5
order_poll_s = 1
summary_interval_s = 3600
cancel_on_stop = false
dead_man_timeout_s = 0
drain_timeout_s = 30
{state_text(tmp)}""")
    return path


async def crash_soak(kills: int, seed: int, min_s: float, max_s: float, tier: str) -> int:
    from framework import log
    from framework.cli import main as orderly
    from framework.journal import OrderJournal
    from framework.sandbox import Sandbox, generate_credentials
    from framework.secret import key_id

    rng = random.Random(seed)
    tmp = Path(tempfile.mkdtemp(prefix="orderly-crash-"))
    fills_file = tmp / "fills"
    creds = generate_credentials()
    env = {
        **os.environ,
        "ORDERLY_KRAKEN_API_KEY": creds[0],
        "ORDERLY_KRAKEN_API_SECRET": creds[1],
        "CRASH_SOAK_FILLS": str(fills_file),
    }
    faults = every_fault(seed)
    log.configure("error")
    print(
        f"crash soak: {kills} kills at {min_s}-{max_s} s, seed {seed}, tier {tier}, "
        "every fault at 1-2 %"
    )
    async with Sandbox(dict([creds]), faults=faults, tier=tier, seed=seed) as sandbox:
        config = write_config(tmp, sandbox.base_url, tier)

        async def start() -> asyncio.subprocess.Process:
            return await asyncio.create_subprocess_exec(
                sys.executable, "-m", "framework.cli", "run", str(config),
                cwd=ROOT, env=env,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip

        started = time.monotonic()
        for n in range(1, kills + 1):
            bot = await start()
            await asyncio.sleep(rng.uniform(min_s, max_s))
            if bot.returncode is not None:
                _, err = await bot.communicate()
                print(f"run {n} ended by itself: exit {bot.returncode}: {err.decode()[-500:]}")
                return 1
            bot.send_signal(signal.SIGKILL)
            await bot.wait()
            so_far = len(sandbox.engine.trades_of(creds[0]))
            print(f"kill {n:3d} at {time.monotonic() - started:6.1f} s: trades so far {so_far}")
        bot = await start()
        await asyncio.sleep(max_s)
        freeze_market(sandbox)
        bot.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            _, err = await bot.communicate()
        said = err.decode()[-300:].strip()
        print(f"last run stopped: exit {bot.returncode} {said}")
        key = creds[0]
        at_exchange = {o.cl_ord_id for o in sandbox.engine.open.values() if o.key == key}
        placed = collections.Counter(
            o.cl_ord_id for o in sandbox.engine.orders.values() if o.key == key and o.cl_ord_id
        )
        trades = {fill.trade_id for fill in sandbox.engine.fills_of(key)}
        refused = sum(s.get("invalid_nonce", 0) for s in sandbox.stats().values())
    journal = OrderJournal(tmp / "orders.sqlite", exchange="kraken", key_id=key_id(key))
    mine = {o.cl_ord_id for o in journal.open_orders()}
    journal.close()
    named = OrderJournal(tmp / "orders.sqlite", exchange="kraken", key_id=key_id(key), bot="crash")
    counted = load(named.strategy_state("RecordingGrid"), "journal").get("fills", 0)
    named.close()
    delivered = collections.Counter(fills_file.read_text().split() if fills_file.exists() else [])
    doubled = [cid for cid, count in placed.items() if count > 1]
    dropped = trades - set(delivered)
    again = sum(count - 1 for count in delivered.values())
    history_ok = orderly(["nonces", "check", "--file", str(tmp / "history.jsonl")]) == 0
    print(f"orders placed {len(placed)}, trades {len(trades)}")
    print(f"open: bot {len(mine)}, exchange {len(at_exchange)}; equal: {mine == at_exchange}")
    print(f"client ids at the exchange twice: {len(doubled)}")
    print(f"trades never delivered to on_fill: {len(dropped)}; delivered again: {again}")
    print(f"fills counted in ctx.state: {counted} (trades {len(trades)})")
    print(f"nonces refused by the sandbox: {refused}; history check: {history_ok}")
    ok = bot.returncode == 0 and mine == at_exchange and not doubled and not dropped
    ok = ok and not refused and history_ok and len(trades) > 0 and counted == len(trades)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=15)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--min-s", type=float, default=5.0)
    parser.add_argument("--max-s", type=float, default=25.0)
    parser.add_argument("--tier", default="pro", choices=["starter", "intermediate", "pro"])
    args = parser.parse_args()
    return asyncio.run(crash_soak(args.kills, args.seed, args.min_s, args.max_s, args.tier))


if __name__ == "__main__":
    sys.exit(main())
