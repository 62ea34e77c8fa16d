"""The runner end to end against the paper sandbox: real HTTP, real SQLite, real processes."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from framework import log
from framework.cli import main as orderly
from framework.config import load
from framework.events import Fill, OrderState, OrderUpdate, Started, Stopping, Ticker
from framework.nonce import SqliteStore
from framework.runner import EXIT_OK, EXIT_STOPPED_BY_STRATEGY, Runner
from tests.helpers import strategies

ROOT = Path(__file__).parent.parent


def write_config(tmp: Path, strategy: str, *, params: str = "", runner: str = "") -> Path:
    path = tmp / "bot.toml"
    path.write_text(f"""
[exchange]
name = "sandbox"
[strategy]
class = "{strategy}"
pairs = ["XBTUSD"]
[strategy.params]
{params}
[runner]
tick_interval_s = 0.05
order_poll_s = 0.05
summary_interval_s = 0.5
log_file = "{tmp / "log.jsonl"}"
{runner}
[state]
store = "{tmp / "nonces.sqlite"}"
history = "{tmp / "history.jsonl"}"
[sandbox]
tier = "none"
seed = 3
step_s = 0.05
partial_fill_probability = 0.0
""")
    return path


async def run_until(
    config: Path,
    done: Callable[[], bool],
    limit: float = 20.0,
    settle: float = 0.0,
    out: io.StringIO | None = None,
) -> int:
    """Run the bot until ``done()`` holds after some event the strategy saw, let it run
    ``settle`` seconds more, then stop it. ``out`` gets what the terminal would show."""
    seen = strategies.SEEN
    seen.clear()
    runner = Runner(load(config), out=out or io.StringIO())
    task = asyncio.create_task(runner.main(install_signals=False))
    async with asyncio.timeout(limit):
        while not done() and not task.done():
            seen.changed.clear()
            await seen.changed.wait()
    if settle and not task.done():
        await asyncio.wait([task], timeout=settle)  # a window for events that should not come
    runner.request_stop("test finished")
    async with asyncio.timeout(limit):
        return await task


def kinds(events: list[object]) -> list[str]:
    out = []
    for e in events:
        if isinstance(e, OrderUpdate):
            out.append(f"{e.state.value}:{e.cl_ord_id[:6]}")
        elif isinstance(e, Fill):
            out.append(f"fill:{e.cl_ord_id[:6]}")
    return out


async def test_places_fills_and_cancels_with_events_in_order(tmp_path: Path) -> None:
    config = write_config(tmp_path, "tests.helpers.strategies:Recorder")
    seen = strategies.SEEN

    def finished() -> bool:
        return sum(
            isinstance(e, OrderUpdate) and e.state is OrderState.CANCELLED for e in seen
        ) >= 1 and any(isinstance(e, Fill) for e in seen)

    assert await run_until(config, finished) == EXIT_OK
    assert isinstance(seen[0], Started) and isinstance(seen[-1], Stopping)
    assert any(isinstance(e, Ticker) for e in seen)
    updates = [e for e in seen if isinstance(e, OrderUpdate)]
    # in the order placed (a streamed fill may come before the next order's answer)
    resting, market, huge = dict.fromkeys(u.cl_ord_id for u in updates)
    by_order = {
        cid: [e.state.value for e in updates if e.cl_ord_id == cid]
        for cid in (resting, market, huge)
    }
    assert by_order[resting] == ["accepted", "cancelled"]
    assert by_order[market] == ["accepted", "filled"]
    assert by_order[huge] == ["rejected"]
    assert [u.reason for u in updates if u.cl_ord_id == huge] == ["EOrder:Insufficient funds"]
    fills = [e for e in seen if isinstance(e, Fill)]
    assert len(fills) == 1 and fills[0].cl_ord_id == market and fills[0].pair == "XBTUSD"
    order_of = kinds(seen)
    assert order_of.index(f"fill:{market[:6]}") < order_of.index(f"filled:{market[:6]}")
    assert orderly(["nonces", "check", "--file", str(tmp_path / "history.jsonl")]) == 0


@pytest.mark.parametrize(
    ("policy", "expect_exit", "ticks_after_failure"),
    [
        ("keep_running", EXIT_OK, "many"),
        ("pause_strategy", EXIT_OK, "none"),
        ("stop_bot", EXIT_STOPPED_BY_STRATEGY, "none"),
    ],
)
async def test_a_raising_hook_is_contained_by_policy(
    tmp_path: Path, policy: str, expect_exit: int, ticks_after_failure: str
) -> None:
    config = write_config(
        tmp_path,
        "tests.helpers.strategies:Recorder",
        params="fail_on_tick = true",
        runner=f'on_hook_error = "{policy}"',
    )
    seen = strategies.SEEN
    stream = io.StringIO()
    log.configure("info", stream=stream, json=True)
    ticks = lambda: sum(isinstance(e, Ticker) for e in seen)  # noqa: E731
    if ticks_after_failure == "many":  # every tick raises, and ticks keep coming
        code = await run_until(config, lambda: ticks() >= 5)
    else:  # the first tick raises; then 0.5 s (ten tick periods) in which none may come
        code = await run_until(config, lambda: ticks() >= 1, settle=0.5)
    assert code == expect_exit
    assert isinstance(seen[-1], Stopping)  # on_stop still runs
    assert (ticks() >= 5) == (ticks_after_failure == "many")
    logged = [json.loads(line) for line in stream.getvalue().splitlines()]
    failures = [r for r in logged if r["event"] == "strategy_hook_failed"]
    assert failures, stream.getvalue()[:2000]
    assert failures[0]["hook"] == "on_tick" and "exception" in failures[0]
    assert "strategy bug in on_tick" in json.dumps(failures[0]["exception"])


def busy_bot(
    tmp_path: Path, nonces: int, runner: str = "", params: str = ""
) -> subprocess.Popen[str]:
    """``orderly run`` of the Busy strategy, returned once it has sent ``nonces`` calls."""
    config = write_config(
        tmp_path, "tests/helpers/strategies.py:Busy", runner=runner, params=params
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "framework.cli", "run", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("[") and int(line.split("nonces sent ")[1].split()[0]) > nonces:
            break
    return process


def history_of(tmp_path: Path) -> list[dict[str, Any]]:
    lines = (tmp_path / "history.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])  # HUP: a closed terminal
def test_sigterm_during_heavy_order_flow_drains_cleanly(tmp_path: Path, signum: int) -> None:
    process = busy_bot(tmp_path, nonces=60)
    try:
        process.send_signal(signum)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "cancelled" in out and out.strip().splitlines()[-1].startswith("final")
    history = history_of(tmp_path)
    assigned = {(r["key_id"], r["nonce"]) for r in history if r["event"] == "nonce_assigned"}
    answered = {(r["key_id"], r["nonce"]) for r in history if r["event"] == "nonce_outcome"}
    assert len(assigned) > 60 and assigned == answered  # no call lost
    assert all(r["outcome"] == "accepted" for r in history if r["event"] == "nonce_outcome")
    assert orderly(["nonces", "check", "--file", str(tmp_path / "history.jsonl")]) == 0


def test_second_signal_exits_at_once_and_keeps_the_floor(tmp_path: Path) -> None:
    process = busy_bot(tmp_path, nonces=30, params="slow_stop = true")
    try:
        assert process.stdout is not None
        process.send_signal(signal.SIGINT)
        for line in process.stdout:  # the graceful stop has begun (on_stop takes 8 s) ...
            if "stopping (again to exit at once)" in line:
                break
        process.send_signal(signal.SIGINT)  # ... and a second signal cuts it short
        out, _ = process.communicate(timeout=6)
    finally:
        process.kill()
    assert process.returncode == 130
    assert "exiting now" in out
    highest = max(r["nonce"] for r in history_of(tmp_path) if r["event"] == "nonce_assigned")
    store = SqliteStore(tmp_path / "nonces.sqlite")
    (floor,) = store.floors()
    store.close()
    assert floor.floor >= highest


def start_sandbox(
    creds: tuple[str, str], port: int = 0, config: Path | None = None
) -> tuple[subprocess.Popen[str], str]:
    env = {
        **os.environ,
        "ORDERLY_SANDBOX_API_KEY": creds[0],
        "ORDERLY_SANDBOX_API_SECRET": creds[1],
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "framework.cli", "sandbox", "--port", str(port)]
        + (["--config", str(config)] if config is not None else []),
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    return process, process.stdout.readline().split()[-1]


async def test_exchange_outage_is_retried_with_backoff(
    tmp_path: Path, creds: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, url = start_sandbox(creds)
    monkeypatch.setenv("ORDERLY_KRAKEN_API_KEY", creds[0])
    monkeypatch.setenv("ORDERLY_KRAKEN_API_SECRET", creds[1])
    config = write_config(
        tmp_path, "tests.helpers.strategies:Recorder", runner="max_backoff_s = 0.4"
    )
    config.write_text(
        config.read_text().replace(  # unpaced, as the sandbox it stands for
            'name = "sandbox"', f'name = "kraken"\nbase_url = "{url}"\ntier = "none"'
        )
    )
    stream = io.StringIO()
    log.configure("info", stream=stream, json=True)
    seen = strategies.SEEN
    ticks = lambda: sum(isinstance(e, Ticker) for e in seen)  # noqa: E731
    second = None
    try:
        runner = Runner(load(config), out=io.StringIO())
        seen.clear()
        task = asyncio.create_task(runner.main(install_signals=False))
        async with asyncio.timeout(20):
            while ticks() < 3:
                seen.changed.clear()
                await seen.changed.wait()
            first.terminate()  # the exchange goes away
            first.communicate(timeout=10)
            before = ticks()
            await asyncio.wait([task], timeout=1.5)  # polls fail and back off meanwhile
            assert ticks() == before and not task.done()
            second, _ = start_sandbox(creds, port=int(url.rsplit(":", 1)[1]))
            while ticks() < before + 3:  # and it comes back
                seen.changed.clear()
                await seen.changed.wait()
        runner.request_stop("test finished")
        assert await task == EXIT_OK
    finally:
        for process in (first, second):
            if process is not None:
                process.kill()
                process.communicate(timeout=10)
    failures = [
        json.loads(line) for line in stream.getvalue().splitlines() if '"poll_failed"' in line
    ]
    assert len(failures) >= 2
    assert {f["what"] for f in failures} >= {"tickers"}
    assert max(f["retry_in_s"] for f in failures) == 0.4  # capped backoff


async def test_a_strategy_stops_the_bot_after_closing_its_position(tmp_path: Path) -> None:
    """ctx.stop: the bot stops once the hook that asked returns (an order it places after
    asking is still sent), every fill comes before on_stop, exit code 0, and the terminal
    says why."""
    config = write_config(tmp_path, "tests.helpers.strategies:Flattener")
    seen = strategies.SEEN
    seen.clear()
    out = io.StringIO()
    runner = Runner(load(config), out=out)
    async with asyncio.timeout(20):
        assert await runner.main(install_signals=False) == EXIT_OK  # nobody else stops it
    fills = [e for e in seen if isinstance(e, Fill)]
    assert [f.side for f in fills] == ["buy", "sell"]
    sell = next(e for e in seen if isinstance(e, OrderUpdate))
    assert sell.side == "sell" and sell.state is not OrderState.REJECTED
    assert "hook ran to its end" in seen
    assert seen[-1] == ("position at stop", 0, "flat: position closed")
    assert "stopping: flat: position closed" in out.getvalue()


async def test_the_twap_example_stops_the_bot_when_it_is_done(tmp_path: Path) -> None:
    params = 'total = "0.003"\nslices = 3\ninterval_s = 0.1'
    config = write_config(tmp_path, "strategies.twap:Twap", params=params)
    out = io.StringIO()
    async with asyncio.timeout(20):
        assert await Runner(load(config), out=out).main(install_signals=False) == EXIT_OK
    (line,) = [x for x in out.getvalue().splitlines() if x.startswith("stopping: ")]
    assert line.startswith("stopping: twap finished: ") and line.endswith("of 0.003 filled")


async def test_an_order_placed_in_on_stop_is_refused_with_the_way_to_close_first(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, "tests.helpers.strategies:LateCloser")
    assert await run_until(config, lambda: True) == EXIT_OK
    (refused,) = [e for e in strategies.SEEN if isinstance(e, OrderUpdate)]
    assert refused.state is OrderState.REJECTED
    assert refused.reason == (
        "the bot is stopping: place a closing order before calling ctx.stop, not in on_stop"
    )


@pytest.mark.parametrize("setting", ["", 'cancel_on_stop = "own"'])
async def test_cancel_on_stop_cancels_the_bots_orders_and_leaves_the_others(
    tmp_path: Path, creds: tuple[str, str], monkeypatch: pytest.MonkeyPatch, setting: str
) -> None:
    """Found reading the stop path: cancel_on_stop sent CancelAll, so stopping a bot also
    cancelled an order the user had placed by hand on the same key (or another bot's, on a
    key shared through Redis). Orders the bot did not place are left alone."""
    from framework.sandbox import Sandbox
    from tests.test_storage_failures import trading

    config = write_config(
        tmp_path, "tests.helpers.strategies:Recorder", params="cancel_on_fill = false",
        runner=setting,
    )  # fmt: skip
    async with Sandbox(dict([creds])) as sandbox:
        manual = sandbox.engine.place(creds[0], "XBTUSD", "buy", Decimal("0.01"), Decimal(1000))
        runner, task = await trading(config, sandbox, creds, monkeypatch)
        async with asyncio.timeout(20):
            while not any(isinstance(e, Fill) for e in strategies.SEEN):  # the market buy
                strategies.SEEN.changed.clear()
                await strategies.SEEN.changed.wait()
            runner.request_stop("test finished")
            assert await task == EXIT_OK
        assert list(sandbox.engine.open) == [manual.txid]  # the bot's: cancelled
    cancelled = [e for e in strategies.SEEN if isinstance(e, OrderUpdate)]
    assert cancelled[-1].state is OrderState.CANCELLED  # the Recorder's resting buy


async def test_cancel_on_stop_all_cancels_every_order_of_the_key(
    tmp_path: Path, creds: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``cancel_on_stop = "all"``: one CancelAll, the orders placed by hand too (the fast way
    out for a large ladder on a key the bot has to itself)."""
    from framework.sandbox import Sandbox
    from tests.test_storage_failures import trading

    config = write_config(
        tmp_path,
        "tests.helpers.strategies:Recorder",
        params="cancel_on_fill = false",
        runner='cancel_on_stop = "all"',
    )
    async with Sandbox(dict([creds])) as sandbox:
        sandbox.engine.place(creds[0], "XBTUSD", "buy", Decimal("0.01"), Decimal(1000))
        runner, task = await trading(config, sandbox, creds, monkeypatch)
        async with asyncio.timeout(20):
            runner.request_stop("test finished")
            assert await task == EXIT_OK
        assert not sandbox.engine.open
