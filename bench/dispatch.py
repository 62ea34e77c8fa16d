"""Lane throughput against the fastest correct single-key client, measured in one run.

    python bench/dispatch.py [--calls N] [--rounds R]   (defaults: 400 calls, 15 rounds)

Starts the sandbox (``orderly sandbox``) in its own process on 127.0.0.1, then measures,
alternating in each round so drift hits every row alike:

- baseline: plain aiohttp, one request at a time, each correctly signed with a fresh
  nonce; the fastest client that never gets a nonce refused on a single key;
- the strict lane (KrakenClient, SQLite store, history file) fed by 1, 16 and 64
  coroutines;
- a windowed lane (max_in_flight=4) fed by 64 coroutines, against a sandbox key with a
  10 s nonce window.

The client runs on core 0 and the sandboxes on core 1 (where there are two cores).
Each round runs every row once for N calls, in a random order; a row's ratio is its rate
over the baseline's rate *in the same round*, and the table shows the median ratio over the
rounds and its interquartile range (short interleaved runs, because this machine drifts by
±20% over tens of seconds; a second baseline row on another sandbox process shows how much
of a ratio is noise).
Also shown: median calls/s, p50/p99 latency as the caller sees it (queueing included), the
client process's CPU µs per call (its difference to the baseline is the lane's cost), and
the nonces the sandbox refused. Every loop is bounded by a call count and a time limit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import uvloop

from framework import log
from framework.exchanges.kraken import KrakenClient, sign
from framework.nonce import NonceHistory, SqliteStore
from framework.nonce.source import IncreasingNonces
from framework.nonce.store import MemoryStore
from framework.sandbox import generate_credentials
from framework.secret import key_id

TIME_LIMIT_S = 60.0


@dataclass
class Row:
    name: str
    rates: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    refused: int = 0


def pin(pid: int, core: int) -> None:
    """Keep client and servers on separate cores, so the scheduler does not add noise."""
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(pid, {core})


def start_sandbox(window: int, key: str, secret: str) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "ORDERLY_SANDBOX_API_KEY": key, "ORDERLY_SANDBOX_API_SECRET": secret}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "framework.cli",
            "--log-level",
            "warning",
            "sandbox",
            "--port",
            "0",
            "--nonce-window",
            str(window),
            "--tier",
            "none",  # no rate limits: the bench measures the lane, not Kraken's counters
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    pin(process.pid, 1)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("sandbox listening on "):
        process.kill()
        raise SystemExit(f"sandbox did not start: {line!r}")
    return process, line.split()[-1]


async def refused(session: aiohttp.ClientSession, base_url: str, api_key: str) -> int:
    async with session.get(f"{base_url}/sandbox/stats") as response:
        stats = await response.json()
    return int(stats.get(key_id(api_key), {}).get("invalid_nonce", 0))


#: One nonce source per key for the whole run: faster than one call per ms, ms nonces run
#: ahead of the clock, so a source made afresh each round would go below the last one sent.
_BASELINE_SOURCES: dict[str, IncreasingNonces] = {}


async def baseline(base_url: str, key: str, secret: str, calls: int) -> list[float]:
    """One request at a time, signed, on one keep-alive connection."""
    source = _BASELINE_SOURCES.setdefault(key, IncreasingNonces(MemoryStore(), key, unit="ms"))
    url, path = f"{base_url}/0/private/Balance", "/0/private/Balance"
    latencies = []
    deadline = time.monotonic() + TIME_LIMIT_S
    async with aiohttp.ClientSession() as session:
        for _ in range(calls):
            started = time.perf_counter()
            nonce = await source.next()
            body = urlencode({"nonce": nonce}).encode()
            headers = {
                "API-Key": key,
                "API-Sign": sign(path, nonce, body, secret),
                "Content-Type": "application/x-www-form-urlencoded",
            }
            async with session.post(url, data=body, headers=headers) as response:
                reply = json.loads(await response.read())
            if reply["error"]:
                raise SystemExit(f"baseline refused: {reply['error']}")
            latencies.append(time.perf_counter() - started)
            if time.monotonic() > deadline:
                break
    return latencies


async def through_lane(kraken: KrakenClient, producers: int, calls: int) -> list[float]:
    return await concurrently(lambda: kraken.private("Balance"), producers, calls)


async def concurrently(
    call: Callable[[], Awaitable[Any]], producers: int, calls: int
) -> list[float]:
    """``producers`` coroutines making ``calls`` calls in all; each call's latency."""
    latencies: list[float] = []
    deadline = time.monotonic() + TIME_LIMIT_S
    each = max(1, calls // producers)

    async def producer() -> None:
        for _ in range(each):
            started = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - started)
            if time.monotonic() > deadline:
                return

    await asyncio.gather(*(producer() for _ in range(producers)))
    return latencies


async def one_at_a_time(
    send: Callable[[aiohttp.ClientSession], Awaitable[None]], calls: int
) -> list[float]:
    """The baseline method for every exchange: one correctly signed request at a time."""
    latencies = []
    deadline = time.monotonic() + TIME_LIMIT_S
    async with aiohttp.ClientSession() as session:
        for _ in range(calls):
            started = time.perf_counter()
            await send(session)
            latencies.append(time.perf_counter() - started)
            if time.monotonic() > deadline:
                break
    return latencies


def start_conformance(kind: str, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.conformance.serve", kind],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
        cwd=Path(__file__).parent.parent,
    )
    pin(process.pid, 1)
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


async def exchange_rows(calls: int, rounds: int) -> None:
    """Bitunix and Synthetix against their conformance servers, by the same method: the
    baseline is one correctly signed request at a time; the row is the framework's client
    fed by 64 coroutines (Bitunix: unordered lane, 16 in flight; Synthetix: strict lane)."""
    from framework.exchanges.bitunix import BitunixClient
    from framework.exchanges.bitunix import sign as bitunix_sign
    from framework.exchanges.synthetix import SynthetixClient, sign_action

    key, secret = "bench-bitunix-key", "bench-bitunix-secret"
    snx_key = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
    sub = 1867542890123456789
    bitunix_proc, bitunix_url = start_conformance(
        "bitunix", {"ORDERLY_BENCH_KEY": key, "ORDERLY_BENCH_SECRET": secret}
    )
    snx_proc, snx_url = start_conformance(
        "synthetix",
        {
            "ORDERLY_BENCH_SUBACCOUNTS": f"{sub},{sub + 1}",  # the baseline signs for sub + 1
            "ORDERLY_BENCH_ADDRESS": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
        },
    )
    last = [0]

    async def bitunix_once(session: aiohttp.ClientSession) -> None:
        nonce, stamp = secrets.token_hex(16), str(int(time.time() * 1000))
        headers = {
            "api-key": key,
            "nonce": nonce,
            "timestamp": stamp,
            "sign": bitunix_sign(
                nonce=nonce,
                timestamp=stamp,
                api_key=key,
                query={"marginCoin": "USDT"},
                body="",
                secret=secret,
            ),
        }
        async with session.get(
            f"{bitunix_url}/api/v1/futures/account?marginCoin=USDT", headers=headers
        ) as response:
            if (await response.json())["code"] != 0:
                raise SystemExit("bitunix baseline refused")

    async def synthetix_once(session: aiohttp.ClientSession) -> None:
        nonce = last[0] = max(int(time.time() * 1000), last[0] + 1)
        message = {"subAccountId": sub, "orderIds": [1], "nonce": nonce, "expiresAfter": 0}
        body = {
            "params": {"action": "cancelOrders", "subAccountId": str(sub), "orderIds": ["1"]},
            "nonce": nonce,
            "expiresAfter": 0,
            "signature": sign_action("CancelOrders", message, snx_key),
        }
        async with session.post(f"{snx_url}/v1/trade", json=body) as response:
            if (await response.json())["status"] != "ok":
                raise SystemExit("synthetix baseline refused")

    ratios: dict[str, list[float]] = {"bitunix": [], "synthetix": []}
    try:
        async with (
            BitunixClient(key, secret, bitunix_url) as bitunix,
            SynthetixClient(snx_key, sub, snx_url) as snx,
        ):
            for _ in range(rounds):
                for name, once, lane in (
                    ("bitunix", bitunix_once, lambda: bitunix.account()),
                    ("synthetix", synthetix_once, lambda: snx.cancel_orders([1])),
                ):
                    wall = time.perf_counter()
                    base = len(await one_at_a_time(once, calls)) / (time.perf_counter() - wall)
                    wall = time.perf_counter()
                    done = len(await concurrently(lane, 64, calls))
                    ratios[name].append(done / (time.perf_counter() - wall) / base)
    finally:
        for process in (bitunix_proc, snx_proc):
            process.terminate()
            process.wait(timeout=10)
    print("\nper exchange: the client fed by 64 coroutines / one signed request at a time")
    for name, values in ratios.items():
        low, _, high = statistics.quantiles(values, n=4) if len(values) > 1 else (0, 0, 0)
        print(f"{name:<10} {statistics.median(values):.2f}x  (IQR {low:.2f}-{high:.2f})")


async def measure(row: Row, run: Callable[[], Awaitable[list[float]]]) -> None:
    cpu, wall = time.process_time(), time.perf_counter()
    latencies = await run()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    row.rates.append(len(latencies) / wall)
    row.cpu_us.append(cpu / len(latencies) * 1e6)
    row.latencies += latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def main(calls: int, rounds: int) -> None:
    log.configure("warning", json=True)
    pin(0, 0)
    # three identical sandbox processes: one key each, so no row moves another's nonce floor
    base_key, base_secret = generate_credentials()
    strict_key, strict_secret = generate_credentials()
    window_key, window_secret = generate_credentials()
    base_proc, base_url = start_sandbox(0, base_key, base_secret)
    strict_proc, strict_url = start_sandbox(0, strict_key, strict_secret)
    window_proc, window_url = start_sandbox(10_000, window_key, window_secret)
    control_key, control_secret = generate_credentials()
    control_proc, control_url = start_sandbox(0, control_key, control_secret)
    rows = {
        name: Row(name)
        for name in (
            "baseline",
            "baseline again",
            "strict x1",
            "strict x16",
            "strict x64",
            "windowed(4) x64",
        )
    }
    try:
        with tempfile.TemporaryDirectory() as tmp:
            store = SqliteStore(Path(tmp) / "nonces.sqlite")
            history = NonceHistory(Path(tmp) / "nonces.jsonl")
            # the sandboxes enforce no rate limits, so the clients do not pace (tier=None)
            strict = KrakenClient(
                strict_key, strict_secret, strict_url, store=store, history=history, tier=None
            )
            windowed = KrakenClient(
                window_key,
                window_secret,
                window_url,
                store=store,
                history=history,
                max_in_flight=4,
                tier=None,
            )
            async with strict, windowed:
                await baseline(base_url, base_key, base_secret, 200)  # warm-up
                await through_lane(strict, 16, 200)
                runs = {
                    "baseline": lambda: baseline(base_url, base_key, base_secret, calls),
                    "baseline again": lambda: baseline(
                        control_url, control_key, control_secret, calls
                    ),
                    "strict x1": lambda: through_lane(strict, 1, calls),
                    "strict x16": lambda: through_lane(strict, 16, calls),
                    "strict x64": lambda: through_lane(strict, 64, calls),
                    "windowed(4) x64": lambda: through_lane(windowed, 64, calls),
                }
                for _ in range(rounds):
                    order = list(runs)
                    random.shuffle(order)
                    for name in order:
                        await measure(rows[name], runs[name])
                    base_rate = rows["baseline"].rates[-1]
                    for row in rows.values():
                        row.ratios.append(row.rates[-1] / base_rate)
            store.close()
            history.close()
        async with aiohttp.ClientSession() as session:
            strict_refused = await refused(session, strict_url, strict_key)
            window_refused = await refused(session, window_url, window_key)
    finally:
        for process in (base_proc, control_proc, strict_proc, window_proc):
            process.terminate()
            process.wait(timeout=10)
    rows["strict x1"].refused = rows["strict x16"].refused = strict_refused
    rows["strict x64"].refused = strict_refused
    rows["windowed(4) x64"].refused = window_refused
    base_cpu = statistics.median(rows["baseline"].cpu_us)
    print(
        f"{calls} calls per row per round, {rounds} rounds, medians (ratio: per round, vs "
        f"that round's baseline); sandbox in its own process; python "
        f"{sys.version.split()[0]}, uvloop, {os.cpu_count()} cores"
    )
    print(
        f"{'row':<17}{'calls/s':>9}{'ratio':>8}{'IQR':>13}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'cpu us/call':>13}{'lane +us':>10}{'refused':>9}"
    )
    for row in rows.values():
        rate, cpu = statistics.median(row.rates), statistics.median(row.cpu_us)
        ratio = statistics.median(row.ratios)
        low, _, high = statistics.quantiles(row.ratios, n=4)
        lane = row.name.startswith(("strict", "windowed"))
        extra = f"{cpu - base_cpu:+.0f}" if lane else "-"
        refused_text = str(row.refused) if lane else "0"
        print(
            f"{row.name:<17}{rate:>9.0f}{ratio:>7.2f}x{low:>7.2f}-{high:.2f}"
            f"{pct(row.latencies, 0.5):>9.2f}{pct(row.latencies, 0.99):>9.2f}"
            f"{cpu:>13.0f}{extra:>10}{refused_text:>9}"
        )
    print(
        "strict rows share one sandbox key; 'refused' counts its invalid nonces over all "
        "strict rows together."
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument(
        "--no-exchanges", action="store_true", help="skip the Bitunix and Synthetix rows"
    )
    options = parser.parse_args()
    uvloop.run(main(options.calls, options.rounds))
    if not options.no_exchanges:
        uvloop.run(exchange_rows(max(50, options.calls // 4), max(3, options.rounds // 3)))
