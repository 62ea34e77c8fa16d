"""Crash safety: a client process killed with SIGKILL at random points and restarted never
sends a nonce the exchange has already seen (or a lower one)."""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import signal
import sys
from pathlib import Path

import pytest

from framework.cli import main as orderly
from framework.clock import ManualClock
from framework.sandbox import Sandbox
from tests.helpers.kraken import client

ROOT = Path(__file__).parent.parent


async def run_worker(
    base_url: str,
    tmp: Path,
    unit: str,
    block: int,
    creds: tuple[str, str],
    kill_after: int | None,
    calls: int | None = None,
    store: str | None = None,
) -> int:
    """Start a worker; SIGKILL it after ``kill_after`` accepted calls (plus a random few
    milliseconds, so the kill can land mid-call). Returns how many calls it reported."""
    env = {**os.environ, "ORDERLY_TEST_API_KEY": creds[0], "ORDERLY_TEST_API_SECRET": creds[1]}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.helpers.nonce_worker",
        base_url,
        store or str(tmp / "n.sqlite"),
        str(tmp / "h.jsonl"),
        unit,
        str(block),
        *([str(calls)] if calls else []),
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env=env,
    )
    assert process.stdout is not None
    seen = 0
    async with asyncio.timeout(60):
        while kill_after is None or seen < kill_after:
            line = await process.stdout.readline()
            if not line:
                break
            seen += 1
        if kill_after is not None:
            await asyncio.sleep(random.uniform(0, 0.004))
            process.send_signal(signal.SIGKILL)
        await process.wait()
    if kill_after is not None:
        assert process.returncode == -signal.SIGKILL
    else:
        assert process.returncode == 0
    return seen


@pytest.mark.parametrize(
    ("unit", "block", "seed"), [("counter", 7, 1), ("counter", 1000, 2), ("ms", 5, 3)]
)
async def test_sigkill_and_restart_never_reuses_a_nonce(
    tmp_path: Path, creds: tuple[str, str], unit: str, block: int, seed: int
) -> None:
    random.seed(seed)
    key, secret = creds
    async with Sandbox({key: secret}) as sandbox:
        for _ in range(3):
            await run_worker(
                sandbox.base_url, tmp_path, unit, block, creds, kill_after=random.randint(3, 40)
            )
        await run_worker(sandbox.base_url, tmp_path, unit, block, creds, None, calls=5)
        stats = next(iter(sandbox.stats().values()))
        accepted = sandbox.accepted_nonces(key)
    assert stats["invalid_nonce"] == 0
    assert all(b > a for a, b in itertools.pairwise(accepted))
    assert len(accepted) >= 3 * 3 + 5
    # the history written across the kills is clean too
    assert orderly(["nonces", "check", "--file", str(tmp_path / "h.jsonl")]) == 0


async def test_without_a_persistent_store_the_restart_is_refused(
    tmp_path: Path, creds: tuple[str, str]
) -> None:
    """Negative control: the same kill and restart with a memory store is caught by the
    exchange, so the test above can fail. Each run has its own history file: with a shared
    one the restart is refused before it sends (the store is behind the history:
    tests/test_store_checks.py)."""
    key, secret = creds
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    async with Sandbox({key: secret}) as sandbox:
        await run_worker(
            sandbox.base_url, first, "counter", 7, creds, kill_after=10, store="memory"
        )
        await run_worker(
            sandbox.base_url, second, "counter", 7, creds, kill_after=3, store="memory"
        )
        assert next(iter(sandbox.stats().values()))["invalid_nonce"] > 0


async def test_clock_stepped_back_mid_run(creds: tuple[str, str]) -> None:
    key, secret = creds
    clock = ManualClock()
    async with Sandbox({key: secret}) as sandbox:
        async with client(key, secret, sandbox.base_url, clock=clock) as kraken:
            for _ in range(5):
                await kraken.balance()
            clock.step_wall(-10)
            for _ in range(5):
                await kraken.balance()
        assert sandbox.stats()[kraken.key_id]["invalid_nonce"] == 0
        nonces = sandbox.accepted_nonces(key)
        assert all(b > a for a, b in itertools.pairwise(nonces))
