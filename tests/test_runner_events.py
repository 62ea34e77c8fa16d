"""Events reach the strategy never lost and never stale: fills produced before the stop are
delivered before ``on_stop``; ticks are conflated so a slow hook sees fresh prices."""

from __future__ import annotations

import asyncio
import inspect
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import cast

import pytest

from framework import log
from framework.config import load
from framework.errors import UsageError
from framework.events import Fill, OrderState, OrderUpdate, Stopping, Ticker
from framework.execution import Execution
from framework.guard import Guard, Lifecycle
from framework.inbox import Inbox
from framework.runner import EXIT_OK, Runner
from framework.sandbox import Sandbox
from framework.strategy import Context, Strategy
from framework.tally import Tally
from tests.helpers import strategies
from tests.helpers.strategies import SEEN
from tests.test_runner import run_until, write_config


def tick(pair: str, price: int) -> Ticker:
    p = Decimal(price)
    return Ticker(pair=pair, bid=p, ask=p, last=p, time=float(price))


def update(cl_ord_id: str) -> OrderUpdate:
    zero = Decimal(0)
    return OrderUpdate(
        cl_ord_id, "XBTUSD", "buy", OrderState.ACCEPTED, zero, zero, None, None, None, None, 0.0
    )


async def test_inbox_conflates_ticks_per_pair_and_keeps_everything_else() -> None:
    inbox = Inbox()
    for event in [
        tick("A", 1),
        update("u1"),
        tick("B", 1),
        tick("A", 2),
        update("u2"),
        tick("A", 3),
    ]:
        inbox.put(event)
    inbox.close()
    out = []
    while (event := await inbox.get()) is not None:
        out.append(event)
    # A's newest price, at the first pending A's place; B once; both updates, in order
    assert out == [tick("A", 3), update("u1"), tick("B", 1), update("u2")]
    assert inbox.conflated == 2
    inbox = Inbox()
    inbox.put(tick("A", 1))
    assert await inbox.get() == tick("A", 1)
    inbox.put(tick("A", 2))  # delivered already: a new one takes a new place
    assert await inbox.get() == tick("A", 2)


async def test_a_hook_slower_than_the_tick_interval_sees_fresh_prices(tmp_path: Path) -> None:
    interval = 0.1
    config = write_config(tmp_path, "tests.helpers.strategies:SlowTicker")
    config.write_text(
        config.read_text().replace("tick_interval_s = 0.05", f"tick_interval_s = {interval}")
    )
    seen = strategies.SEEN
    assert await run_until(config, lambda: len(seen) >= 5) == EXIT_OK
    lags = [lag for _, lag in seen]  # type: ignore[misc]
    assert max(lags) < 2 * interval, lags  # each hook takes 3 intervals: no backlog builds


async def test_every_fill_before_the_stop_reaches_on_fill(
    tmp_path: Path, creds: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDERLY_KRAKEN_API_KEY", creds[0])
    monkeypatch.setenv("ORDERLY_KRAKEN_API_SECRET", creds[1])
    seen = strategies.SEEN
    async with Sandbox(dict([creds])) as sandbox:
        config = write_config(tmp_path, "tests.helpers.strategies:Taker")
        config.write_text(  # polls seldom: fills are still to be collected when it stops
            config.read_text()
            .replace("order_poll_s = 0.05", "order_poll_s = 0.5")
            .replace(
                'name = "sandbox"',
                f'name = "kraken"\nbase_url = "{sandbox.base_url}"\ntier = "none"',
            )
        )
        base_before = sandbox.engine.balances(creds[0]).get("XXBT", Decimal(0))
        seen.clear()
        runner = Runner(load(config), out=io.StringIO())
        task = asyncio.create_task(runner.main(install_signals=False))
        async with asyncio.timeout(20):  # a few orders placed, fills still to be polled
            while len(sandbox.engine.trades_of(creds[0])) < 5:
                seen.changed.clear()
                await seen.changed.wait()
        runner.request_stop("test finished")
        assert await task == EXIT_OK
        trades = sandbox.engine.trades_of(creds[0])
        base_after = sandbox.engine.balances(creds[0]).get("XXBT", Decimal(0))
    fills = [e for e in seen if isinstance(e, Fill)]
    assert isinstance(seen[-1], Stopping)  # every fill came before on_stop
    assert sorted(f.trade_id for f in fills) == sorted(tid for tid, _ in trades)
    assert sum(f.volume for f in fills) == base_after - base_before


async def test_a_poll_answer_no_parser_foresaw_does_not_kill_the_bot(
    tmp_path: Path, creds: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Ticker answer of ``{"XXBTZUSD": {}}`` raised KeyError out of the ticker poll and the
    bot died with exit 1, leaving its orders open. Now the client reports it as a typed
    ExchangeError (an answer it cannot read), and the poll backs off and goes on."""
    monkeypatch.setenv("ORDERLY_KRAKEN_API_KEY", creds[0])
    monkeypatch.setenv("ORDERLY_KRAKEN_API_SECRET", creds[1])
    seen = strategies.SEEN
    stream = io.StringIO()
    log.configure("info", stream=stream, json=True)
    async with Sandbox(dict([creds])) as sandbox:
        ticker = sandbox.market.ticker
        monkeypatch.setattr(sandbox.market, "ticker", lambda pair: {})  # an empty ticker
        config = write_config(tmp_path, "tests.helpers.strategies:Recorder")
        config.write_text(
            config.read_text().replace(
                'name = "sandbox"',
                f'name = "kraken"\nbase_url = "{sandbox.base_url}"\ntier = "none"',
            )
        )
        seen.clear()
        runner = Runner(load(config), out=io.StringIO())
        task = asyncio.create_task(runner.main(install_signals=False))
        async with asyncio.timeout(20):
            while '"poll_failed"' not in stream.getvalue():
                await asyncio.wait([task], timeout=0.05)  # bounded by the timeout above
                assert not task.done()
            monkeypatch.setattr(sandbox.market, "ticker", ticker)  # the exchange recovers
            while not any(isinstance(e, Ticker) for e in seen):
                seen.changed.clear()
                await seen.changed.wait()
        runner.request_stop("test finished")
        assert await task == EXIT_OK
    crashed = [line for line in stream.getvalue().splitlines() if '"poll_failed"' in line]
    assert '"what": "tickers"' in crashed[0] and "KeyError" in crashed[0]


class Stuck(Strategy):
    async def on_tick(self, ticker: Ticker) -> None:
        await asyncio.Event().wait()  # never set: only the hook's time limit ends it


@pytest.mark.parametrize("policy", ["keep_running", "stop_bot"])
async def test_a_hook_past_its_time_limit_is_named_as_such(policy: str) -> None:
    stream, reasons = io.StringIO(), []
    log.configure("info", stream=stream, json=True)
    guard = Guard(Stuck(), timeout=0.01, policy=policy, on_stop_bot=reasons.append)
    guard.state = Lifecycle.RUNNING
    await guard.deliver(tick("XBTUSD", 1))
    (failed,) = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert failed["event"] == "strategy_hook_failed" and failed["hook"] == "on_tick"
    assert failed["reason"] == "ran past hook_timeout_s (0.01 s) and was cancelled"
    if policy == "stop_bot":  # the stop line says it too, not a bare "TimeoutError: "
        assert reasons == ["on_tick ran past hook_timeout_s (0.01 s) and was cancelled"]


class Raising(Strategy):
    async def on_tick(self, ticker: Ticker) -> None:
        raise ValueError(f"bad tick {ticker.pair}")


async def test_a_failing_hook_is_told_on_the_terminal_once_per_kind_of_failure() -> None:
    said: list[str] = []
    guard = Guard(Raising(), timeout=1, policy="keep_running", on_stop_bot=print, say=said.append)
    guard.state = Lifecycle.RUNNING
    for pair in ["XBTUSD", "XBTUSD", "ETHUSD", "XBTUSD"]:
        await guard.deliver(tick(pair, 1))
    assert guard.failures == 4
    assert said == [  # the same failure again is only counted (the summary's hook errors)
        "on_tick failed: ValueError: bad tick XBTUSD (traceback: strategy_hook_failed in the "
        "JSON log; repeats are counted in 'hook errors')",
        "on_tick failed: ValueError: bad tick ETHUSD (traceback: strategy_hook_failed in the "
        "JSON log; repeats are counted in 'hook errors')",
    ]


class StopsThenFails(Strategy):
    """Asks the bot to stop, keeps working, then raises."""

    async def on_tick(self, ticker: Ticker) -> None:
        self.ctx.stop("  done\n  for   today ")
        await asyncio.sleep(0)
        SEEN.append("after the ask")
        raise ValueError("late failure")


async def test_ctx_stop_takes_effect_when_the_asking_hook_returns() -> None:
    """The stop is asked once the hook (or timer) ends, even one that fails after asking; a
    stop asked outside any hook is asked at once; a context with no bot refuses it."""
    SEEN.clear()
    finished: list[str] = []
    strategy = StopsThenFails()
    guard = Guard(strategy, timeout=1, policy="keep_running", on_stop_bot=print,
                  on_finish=finished.append)  # fmt: skip
    strategy.ctx = Context(cast(Execution, None), name="t", stop=guard.finish)
    guard.state = Lifecycle.RUNNING
    delivered = asyncio.create_task(guard.deliver(tick("XBTUSD", 1)))
    await asyncio.sleep(0)  # the hook has asked and is still running
    assert finished == []
    await delivered
    assert SEEN == ["after the ask"] and guard.failures == 1
    assert finished == ["done for today"]  # one line, whitespace folded
    strategy.ctx.stop()  # no hook running: at once
    assert finished == ["done for today", "the strategy asked to stop"]
    with pytest.raises(UsageError, match=r"ctx\.stop stops"):
        Context(cast(Execution, None), name="t").stop()


class StopsOnFirstTick(Strategy):
    async def on_tick(self, ticker: Ticker) -> None:
        SEEN.append(ticker.time)
        self.ctx.stop("one tick is enough")

    async def on_order(self, update: OrderUpdate) -> None:
        SEEN.append(update.cl_ord_id)


async def test_no_tick_or_timer_reaches_a_strategy_that_asked_to_stop() -> None:
    """Found writing the README's example: between the asking hook's end and the runner's
    stop, ticks already queued still reached on_tick, and a strategy that closes a position
    on a tick would close it again. Now only fills and order updates come after the ask."""
    SEEN.clear()
    strategy, finished = StopsOnFirstTick(), []
    guard = Guard(strategy, timeout=1, policy="keep_running", on_stop_bot=print,
                  on_finish=finished.append)  # fmt: skip
    strategy.ctx = Context(cast(Execution, None), name="t", stop=guard.finish)
    guard.state = Lifecycle.RUNNING
    for price in (1, 2):
        await guard.deliver(tick("XBTUSD", price))
    await guard.deliver(update("c1"))
    assert SEEN == [1.0, "c1"] and finished == ["one tick is enough"]


def refused(price: str, reason: str) -> OrderUpdate:
    zero = Decimal(0)
    return OrderUpdate(
        "c1", "XBTUSD", "buy", OrderState.REJECTED, Decimal("0.001"), zero, Decimal(price),
        None, None, reason, 0.0,
    )  # fmt: skip


def test_the_terminal_says_why_orders_are_refused_once_per_reason() -> None:
    # A new user's quotes at mid +- 3 bps (prices off Kraken's tick) were all refused: the
    # terminal showed only "rejected 196"; the reason was in the JSON log alone.
    tally = Tally()
    lines = [
        tally.add(refused("59977.23456", "EOrder:Tick size check failed")),
        tally.add(refused("59977.3", "EOrder:Tick size check failed")),
        tally.add(refused("59977.3", "EOrder:Insufficient funds")),
    ]
    assert lines == [
        "rejected  buy 0.001 XBTUSD @ 59977.23456: EOrder:Tick size check failed (repeats are "
        "counted in 'rejected')",
        None,
        "rejected  buy 0.001 XBTUSD @ 59977.3: EOrder:Insufficient funds (repeats are counted "
        "in 'rejected')",
    ]
    assert tally.rejected == 3


async def test_a_refused_order_shows_its_reason_on_the_terminal(tmp_path: Path) -> None:
    config = write_config(tmp_path, "tests.helpers.strategies:Recorder")
    out = io.StringIO()

    def refused_seen() -> bool:
        return any(isinstance(e, OrderUpdate) and e.state is OrderState.REJECTED for e in SEEN)

    assert await run_until(config, refused_seen, out=out) == EXIT_OK
    assert (  # Recorder's 1000 XBT market buy
        "rejected  buy 1000 XBTUSD @ market: EOrder:Insufficient funds (repeats are counted in "
        "'rejected')\n" in out.getvalue()
    )


async def test_a_hook_that_blocks_the_event_loop_is_named(tmp_path: Path) -> None:
    """A new user's ``time.sleep`` in a hook stops the lane, the streams and the dead-man
    switch's refresh, and no hook time limit can cut it short; the bot says so, naming the
    hook, once on the terminal and each time in the JSON log."""
    config = write_config(
        tmp_path, "tests.helpers.strategies:Blocker", runner="loop_block_warn_s = 0.2"
    )
    out, stream = io.StringIO(), io.StringIO()
    log.configure("info", stream=stream, json=True)
    assert await run_until(config, lambda: len(strategies.SEEN) >= 3, out=out) == EXIT_OK
    said = [line for line in out.getvalue().splitlines() if "loop was blocked" in line]
    assert len(said) == 1 and said[0].startswith("the event loop was blocked 0."), said
    assert "s while on_tick ran, at tests/helpers/strategies.py:" in said[0]
    assert " in on_tick: nothing else ran meanwhile" in said[0]
    logged = [json.loads(line) for line in stream.getvalue().splitlines()]
    blocked = [r for r in logged if r["event"] == "event_loop_blocked"]
    assert blocked and blocked[0]["hook"] == "on_tick" and blocked[0]["blocked_s"] >= 0.2
    lines, first = inspect.getsourcelines(strategies.Blocker.on_tick)
    sleeps = first + next(i for i, line in enumerate(lines) if "time.sleep" in line)
    assert blocked[0]["at"] == f"tests/helpers/strategies.py:{sleeps} in on_tick"
