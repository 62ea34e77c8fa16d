"""A pool of K keys of one account against one strict lane, at 5 ms answers (issue 10:
target >= 3.6x with 4 keys).

    .venv/bin/python bench/key_pool.py [--calls 800] [--producers 32] [--keys 4] [--rounds 3]

An in-process sandbox answering every call after exactly 5 ms; its account has K keys.
Rows, each round in a random order: one key's strict lane; the pool of K keys
(framework/pool.py). Prints calls/s and the ratio to the one lane.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from framework import log
from framework.eventloop import run_event_loop
from framework.exchanges.kraken.client import KrakenClient
from framework.nonce import SqliteStore
from framework.nonce.history import NonceHistory
from framework.sandbox import Sandbox, generate_credentials


async def rate(
    url: str, keys: list[tuple[str, str]], tmp: Path, calls: int, producers: int
) -> float:
    state = tmp / str(time.monotonic_ns())
    state.mkdir()
    store = SqliteStore(state / "nonces.sqlite")
    async with KrakenClient(
        *keys[0],
        url,
        store=store,
        history=NonceHistory(state / "history.jsonl"),
        tier=None,
        pool=keys[1:],
    ) as kraken:
        each = calls // producers

        async def producer() -> None:
            for _ in range(each):
                await kraken.private("Balance")

        started = time.perf_counter()
        await asyncio.gather(*(producer() for _ in range(producers)))
        elapsed = time.perf_counter() - started
    store.close()
    return each * producers / elapsed


async def main(calls: int, producers: int, count: int, rounds: int) -> None:
    log.configure("error")
    tmp = Path(tempfile.mkdtemp(prefix="orderly-pool-"))
    keys = [generate_credentials() for _ in range(count)]
    rows = {"one key": keys[:1], f"pool of {count} keys": keys}
    rates: dict[str, list[float]] = {name: [] for name in rows}
    async with Sandbox(
        dict(keys), delay_ms=(5, 5), seed=1, account_of={k: "desk" for k, _ in keys}
    ) as sandbox:
        for _ in range(rounds):
            for name in random.sample(list(rows), len(rows)):
                rates[name].append(await rate(sandbox.base_url, rows[name], tmp, calls, producers))
        refused = sum(s["invalid_nonce"] for s in sandbox.stats().values())
    base = statistics.median(rates["one key"])
    print(f"5 ms answers: {calls} calls x {rounds} rounds, {producers} producers, medians")
    print(f"{'row':<18} {'calls/s':>8} {'ratio':>7}")
    for name in rows:
        value = statistics.median(rates[name])
        print(f"{name:<18} {value:8.1f} {value / base:6.2f}x")
    print(f"invalid nonces: {refused}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=800)
    parser.add_argument("--producers", type=int, default=32)
    parser.add_argument("--keys", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    run_event_loop(main(args.calls, args.producers, args.keys, args.rounds))  # uvloop
