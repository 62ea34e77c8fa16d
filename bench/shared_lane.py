"""Calls through Redis to the key's sender, against the in-process strict lane, on the same
sandbox answering after 5 ms (issue 10: target >= 0.8x).

    .venv/bin/python bench/shared_lane.py [--calls 400] [--producers 16] [--rounds 3]

Starts its own redis-server (Debian's, on a unix socket in a temporary directory, append-
only as in production) and an in-process sandbox with a fixed 5 ms delay before each answer.
Rows, each round in a random order:

- local: one KrakenClient, its own strict lane (the SQLite store);
- shared, sender here: one KrakenClient with [state] backend = "redis", so every call goes
  XADD -> XREADGROUP -> lane -> reply stream, in one process;
- shared, two processes' worth: two clients of the key in this process, both calling, one
  of them the sender (the other's calls cross Redis to it).

Prints calls/s per row and the ratio to the local lane.
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
from framework.shared import Sharing
from tests.helpers.redis_server import RedisServer


def client(creds: tuple[str, str], url: str, state: Path, sharing: Sharing | None) -> KrakenClient:
    state.mkdir(parents=True, exist_ok=True)
    return KrakenClient(
        *creds,
        url,
        store=SqliteStore(state / "nonces.sqlite"),
        history=NonceHistory(state / "history.jsonl"),
        tier=None,
        sharing=sharing,
    )


async def drive(clients: list[KrakenClient], calls: int, producers: int) -> float:
    """Calls per second for ``calls`` Balance calls from ``producers`` coroutines, spread
    over ``clients``."""
    each = calls // producers

    async def producer(kraken: KrakenClient) -> None:
        for _ in range(each):
            await kraken.private("Balance")

    started = time.perf_counter()
    await asyncio.gather(*(producer(clients[i % len(clients)]) for i in range(producers)))
    return each * producers / (time.perf_counter() - started)


async def row(
    name: str,
    creds: tuple[str, str],
    url: str,
    tmp: Path,
    redis_url: str,
    calls: int,
    producers: int,
) -> float:
    state = tmp / f"{name}-{time.monotonic_ns()}"
    if name == "local":
        async with client(creds, url, state, None) as kraken:
            return await drive([kraken], calls, producers)
    sharing = Sharing(redis_url, ttl_s=2.0)
    if name == "shared, sender here":
        async with client(creds, url, state, sharing) as kraken:
            await kraken.private("Balance")  # the lease is taken, the sender warmed up
            return await drive([kraken], calls, producers)
    async with (
        client(creds, url, state / "a", sharing) as a,
        client(creds, url, state / "b", sharing) as b,
    ):
        await asyncio.gather(a.private("Balance"), b.private("Balance"))
        return await drive([a, b], calls, producers)


async def main(calls: int, producers: int, rounds: int) -> None:
    log.configure("error")
    tmp = Path(tempfile.mkdtemp(prefix="orderly-bench-", dir="/tmp"))
    redis_server = RedisServer(tmp / "redis").start()
    creds = generate_credentials()
    rows = ["local", "shared, sender here", "shared, two clients"]
    rates: dict[str, list[float]] = {r: [] for r in rows}
    try:
        async with Sandbox(dict([creds]), delay_ms=(5, 5), seed=1) as sandbox:
            for _ in range(rounds):
                for name in random.sample(rows, len(rows)):
                    rates[name].append(
                        await row(
                            name, creds, sandbox.base_url, tmp, redis_server.url, calls, producers
                        )
                    )
    finally:
        redis_server.stop()
    base = statistics.median(rates["local"])
    print(f"5 ms answers: {calls} calls x {rounds} rounds, {producers} producers, medians")
    print(f"{'row':<24} {'calls/s':>8} {'ratio':>7}")
    for name in rows:
        rate = statistics.median(rates[name])
        print(f"{name:<24} {rate:8.1f} {rate / base:6.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--producers", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    run_event_loop(main(args.calls, args.producers, args.rounds))  # uvloop, as `orderly run`
