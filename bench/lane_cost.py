"""The lane's own cost, with no network: the lane with an instant transport against a bare
``asyncio.Queue`` worker doing the same hand-off, measured in one run.

    python bench/lane_cost.py [--calls N] [--rounds R] [--producers 1 64] [--loop asyncio uvloop]

Rows (1 producer coroutine, then 64; on asyncio's own loop, then on uvloop):
- **bare worker**: one queue, one worker task that takes a call, awaits an instant "send"
  and answers the caller's future; what any per-key queue costs at the least.
- **lane, no history file**: :class:`framework.dispatch.Lane` (counter nonces, memory store)
  with the nonce history kept in memory only (ring + structlog check).
- **lane + history file**: the same with the JSON-lines history file a real run writes.

Each round runs every row in a random order; a row's ratio is its µs per call over the bare
worker's in the same round. Target (issue 9): lane + history file ≤ 2.5x the bare worker
(the issue's figure, a bare worker at 4.8 µs a call, is asyncio's loop, one producer).
Every loop is bounded by its call count.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from framework import log
from framework.call import PrivateCall
from framework.dispatch import Lane
from framework.nonce import MemoryStore, NonceHistory
from framework.nonce.source import IncreasingNonces, Nonce

PRODUCERS = 64  # changed by --producers


async def instant(call: PrivateCall, nonce: Nonce) -> Any:
    return nonce


async def feed(submit: Callable[[PrivateCall], Awaitable[Any]], calls: int) -> float:
    """µs per call for ``calls`` calls from PRODUCERS coroutines."""
    call = PrivateCall("Balance")
    per = calls // PRODUCERS

    async def producer() -> None:
        for _ in range(per):
            await submit(call)

    started = time.perf_counter()
    await asyncio.gather(*(producer() for _ in range(PRODUCERS)))
    return (time.perf_counter() - started) / (per * PRODUCERS) * 1e6


async def bare(calls: int) -> float:
    queue: asyncio.Queue[tuple[PrivateCall, asyncio.Future[Any]] | None] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    async def worker() -> None:
        while (item := await queue.get()) is not None:
            call, future = item
            future.set_result(await instant(call, 0))

    async def submit(call: PrivateCall) -> Any:
        future = loop.create_future()
        queue.put_nowait((call, future))
        return await future

    task = asyncio.create_task(worker())
    try:
        return await feed(submit, calls)
    finally:
        queue.put_nowait(None)
        await task


async def lane(calls: int, history_file: Path | None) -> float:
    history = NonceHistory(history_file)
    source = IncreasingNonces(MemoryStore(), "bench", unit="counter")
    async with Lane(key_id="bench", wire=instant, source=source, history=history) as the_lane:
        cost = await feed(the_lane.submit, calls)
    history.close()
    return cost


async def main(calls: int, rounds: int) -> None:
    log.configure("warning")
    tmp = Path(tempfile.mkdtemp(prefix="orderly-lane-cost-"))
    rows: dict[str, Callable[[], Awaitable[float]]] = {
        "bare worker": lambda: bare(calls),
        "lane, no history file": lambda: lane(calls, None),
        "lane + history file": lambda: lane(calls, tmp / f"h{random.random()}.jsonl"),
    }
    costs: dict[str, list[float]] = {name: [] for name in rows}
    ratios: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(rounds):
        order = list(rows)
        random.shuffle(order)
        measured = {name: await rows[name]() for name in order}
        for name, cost in measured.items():
            costs[name].append(cost)
            ratios[name].append(cost / measured["bare worker"])
    print(f"no network: {calls} calls x {rounds} rounds, {PRODUCERS} producers, medians")
    print(f"{'row':24} {'us/call':>8} {'ratio':>7} {'IQR':>12}")
    for name in rows:
        q = statistics.quantiles(ratios[name], n=4) if rounds > 1 else [ratios[name][0]] * 3
        print(
            f"{name:24} {statistics.median(costs[name]):8.2f} "
            f"{statistics.median(ratios[name]):6.2f}x {q[0]:5.2f}-{q[2]:.2f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--producers", type=int, nargs="+", default=[1, 64])
    parser.add_argument(
        "--loop", nargs="+", choices=["uvloop", "asyncio"], default=["asyncio", "uvloop"]
    )
    args = parser.parse_args()
    for loop in args.loop:
        for producers in args.producers:
            PRODUCERS = producers
            print(f"event loop: {loop}")
            (uvloop.run if loop == "uvloop" else asyncio.run)(main(args.calls, args.rounds))
