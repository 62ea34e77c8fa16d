"""Fill latency, from the sandbox's match to the strategy's ``on_fill``: the runner on the
WebSocket executions stream against the runner polling REST (issue 11: target median under
20 ms over WebSocket).

    .venv/bin/python bench/fill_latency.py [--fills 60] [--poll-s 1.0]

The sandbox runs in this process with its market driven every step (one idle WebSocket
client keeps its driver awake in both rows, so a match happens at the same moment whether or
not the bot streams). A grid strategy keeps two bids and two asks a few ticks from the mid;
each fill's latency is the wall clock at ``on_fill`` minus the time the sandbox stamped on the
trade. Rows: polling (``streams = false``, ``order_poll_s`` as given, the default 1 s) and
streaming (``streams = true``). Prints median and p99 per row and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import aiohttp
from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from framework import Fill, Strategy, Ticker
from framework.config import load
from framework.eventloop import run_event_loop
from framework.runner import Runner
from framework.sandbox import Sandbox, generate_credentials
from framework.sandbox.market import MarketRules
from strategies.grid import ladder


class LatencyGrid(Strategy):
    class Params(BaseModel):
        record: Path  # one latency (s) a line: the runner loads this file as a module of its own

    params: Params

    async def on_tick(self, ticker: Ticker) -> None:
        for order in self.ctx.open_orders():  # left behind by the market: laid again nearer
            if order.price is not None and abs(order.price - ticker.mid) > ticker.mid / 1000:
                await self.ctx.cancel(order)
        if len(self.ctx.open_orders()) >= 4:
            return
        tick = Decimal("0.1")
        await self.ctx.place_batch(
            ladder(ticker.pair, ticker.mid, 2, 3 * tick, Decimal("0.001"), tick)
        )

    async def on_fill(self, fill: Fill) -> None:
        with self.params.record.open("a") as out:
            out.write(f"{time.time() - fill.time}\n")


def config_for(tmp: Path, sandbox: Sandbox, streams: bool, poll_s: float) -> Path:
    path = tmp / f"bot-{streams}.toml"
    path.write_text(f"""
[exchange]
name = "kraken"
base_url = "{sandbox.base_url}"
ws_url = "{sandbox.ws_url}"
ws_auth_url = "{sandbox.ws_url}"
tier = "none"
[strategy]
class = "bench.fill_latency:LatencyGrid"
pairs = ["XBTUSD"]
[strategy.params]
record = "{tmp / "latencies.txt"}"
[runner]
streams = {str(streams).lower()}
tick_interval_s = 0.2
order_poll_s = {poll_s}
summary_interval_s = 60
log_file = "{tmp / "log.jsonl"}"
log_level = "error"
[state]
store = "{tmp / f"nonces-{streams}.sqlite"}"
history = "{tmp / f"history-{streams}.jsonl"}"
""")
    return path


async def measure(streams: bool, fills: int, poll_s: float) -> list[float]:
    key, secret = generate_credentials()
    os.environ["ORDERLY_KRAKEN_API_KEY"], os.environ["ORDERLY_KRAKEN_API_SECRET"] = key, secret
    tmp = Path(tempfile.mkdtemp(prefix="orderly-latency-"))
    record = tmp / "latencies.txt"
    record.write_text("")
    market = MarketRules(seed=7, step_s=0.05, volatility=0.0003)
    async with (
        Sandbox({key: secret}, market=market, seed=7) as sandbox,
        aiohttp.ClientSession() as http,
        http.ws_connect(sandbox.ws_url),  # keeps the market driven in both rows
    ):
        runner = Runner(load(config_for(tmp, sandbox, streams, poll_s)), out=io.StringIO())
        task = asyncio.create_task(runner.main(install_signals=False))
        async with asyncio.timeout(120):
            while len(record.read_text().split()) < fills and not task.done():
                await asyncio.wait([task], timeout=0.1)  # the file is read between waits
        runner.request_stop("measured")
        await task
    return [float(x) for x in record.read_text().split()][:fills]


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def main(fills: int, poll_s: float) -> None:
    rows = {
        f"polling every {poll_s:g} s": await measure(False, fills, poll_s),
        "WebSocket executions": await measure(True, fills, poll_s),
    }
    base = statistics.median(rows[f"polling every {poll_s:g} s"])
    print(f"fill latency, sandbox match -> on_fill: {fills} fills a row")
    print(f"{'row':<24} {'median ms':>10} {'p99 ms':>8} {'ratio':>7}")
    for name, values in rows.items():
        median = statistics.median(values)
        print(f"{name:<24} {median * 1000:10.1f} {p99(values) * 1000:8.1f} {median / base:6.3f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fills", type=int, default=60)
    parser.add_argument("--poll-s", type=float, default=1.0)
    args = parser.parse_args()
    run_event_loop(main(args.fills, args.poll_s))  # uvloop
