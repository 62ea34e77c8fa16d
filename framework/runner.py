"""The runner: builds a bot from a config file and keeps it running for weeks.

    orderly run config/paper.toml

One ``asyncio.TaskGroup`` owns every task: the event dispatcher (hooks, one at a time, in
event order), the streams (framework/streaming.py), polls, timers and the live summary. A
polling failure is logged and retried with exponential backoff (``[runner].max_backoff_s``);
it never stops the bot, even when it is not a typed error (logged as ``poll_crashed``).

Events reach the strategy through an :class:`~framework.inbox.Inbox`: fills and order
updates are never dropped, ticks are conflated (the newest per pair; the summary's tick lag).

Stopping (SIGINT, SIGTERM or SIGHUP): new orders are refused, polling and timers stop, the order
manager finishes the sends and reconciliations it owns (at most ``drain_timeout_s``), open
orders are cancelled if ``[runner].cancel_on_stop``, a last poll collects the fills and
final states, every event produced until then reaches ``on_fill``/``on_order``, and only
then ``on_stop`` runs; the lane drains what is in flight (at most ``drain_timeout_s``) and
writes the nonce floor, logs are flushed; exit 0. If cancelling on stop fails, the dead-man
switch is left armed (the exchange cancels the orders when it lapses). A second signal
cancels everything at once (exit 130); the nonce floor is safe: the store reserves ahead.

Exit codes: 0 stopped on request, 1 by ``on_hook_error = "stop_bot"``, 2 bad config or
refused key, 3 a state file cannot be written, 4 open orders left, 130 forced.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TextIO, cast

from pydantic import BaseModel

from framework import log as logging_setup
from framework.clock import SYSTEM_CLOCK, Clock, wall
from framework.config import Config
from framework.errors import OrderlyError, StateError
from framework.eventloop import run_event_loop
from framework.events import OrderState, Started, Stopping, Ticker
from framework.execution import Execution
from framework.guard import Guard
from framework.inbox import Inbox
from framework.journal import OrderJournal
from framework.loading import build_strategy, check_pairs, load_strategy
from framework.log import FailSafeStream, RotatingFile, get_logger
from framework.metrics import serve_metrics
from framework.preflight import check_clock, check_key
from framework.registry import open_venue
from framework.strategy import Context, Strategy, Timer
from framework.strategy_state import StateKeeper
from framework.streaming import Feed
from framework.tally import Summary, Tally, counted
from framework.venue import Venue
from framework.watchdog import watch_loop

log = get_logger("framework.runner")

EXIT_OK, EXIT_STOPPED_BY_STRATEGY, EXIT_CONFIG, EXIT_FORCED = 0, 1, 2, 130
#: 3: a state file (nonce store, history, journal) cannot be written; 4: stopped, but the
#: open orders could not be cancelled (the dead-man switch stays armed).
EXIT_STATE, EXIT_ORDERS_LEFT = 3, 4


class Runner:
    """One bot: one strategy on one venue."""

    def __init__(
        self, config: Config, *, out: TextIO | None = None, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.config = config
        self.clock = clock
        self.out = out or sys.stdout
        self._out = cast(TextIO, FailSafeStream(self.out, "standard output"))  # never raises
        self._stop = asyncio.Event()
        self._reason = "stop requested"
        self._exit = EXIT_OK
        self._signals = 0
        self._main: asyncio.Task[int] | None = None
        self.tally = Tally(clock)

    def _say(self, text: str) -> None:
        print(text, file=self._out, flush=True)

    def request_stop(self, reason: str, *, exit_code: int = EXIT_OK, say: bool = False) -> None:
        """Begin a graceful stop (idempotent); ``say``: tell the terminal why."""
        if not self._stop.is_set():
            self._reason, self._exit = reason, exit_code
            log.info("bot_stopping", reason=reason)
            if exit_code == EXIT_STOPPED_BY_STRATEGY:  # say why, where the user looks
                print(f"orderly: stopping: {reason}", file=sys.stderr, flush=True)
            elif say:
                self._say(f"stopping: {reason}")
            self._stop.set()

    def on_signal(self, signum: int) -> None:
        self._signals += 1
        name = signal.Signals(signum).name
        if self._signals == 1:
            self._say(f"{name}: stopping (again to exit at once)")
            self.request_stop(name)
        elif self._main is not None:
            self._say(f"{name}: exiting now")
            self._exit = EXIT_FORCED
            self._main.cancel()

    async def main(self, *, install_signals: bool = True) -> int:
        """Run until stopped; returns the exit code."""
        self._main = asyncio.current_task()
        if install_signals:
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # HUP: a closed terminal
                loop.add_signal_handler(signum, self.on_signal, signum)
        try:
            return await self._run()
        except asyncio.CancelledError:
            if self._exit == EXIT_FORCED:
                return EXIT_FORCED
            raise

    async def _run(self) -> int:
        config = self.config
        strategy_cls, params = load_strategy(config)
        if (note := await check_pairs(config)) is not None:  # an unknown pair: ConfigError
            log.warning("pairs_not_checked", detail=note)
        async with open_venue(config) as venue:
            for warning in await check_key(venue, self.clock):
                self._say(warning)
            try:
                await self._check_clock(venue)
            except OrderlyError as exc:  # the periodic check tries again
                log.warning("clock_check_failed", error=str(exc))
            journal = None  # an exchange that outlives the bot: its orders are written down
            if venue.persistent:
                where = {"exchange": venue.name, "key_id": venue.key_id, "bot": config.bot_id}
                journal = OrderJournal(config.state.journal, **where)
            try:
                return await self._trade(venue, strategy_cls, params, journal)
            except asyncio.CancelledError:
                await venue.abort()  # forced: still write the nonce floor
                raise
            finally:
                if journal is not None:
                    journal.close()

    async def _trade(
        self,
        venue: Venue,
        strategy_cls: type[Strategy],
        params: BaseModel,
        journal: OrderJournal | None,
    ) -> int:
        config = self.config
        assert config.strategy is not None
        inbox = Inbox()

        def emit(event: object) -> None:
            line = self.tally.add(event)
            if line is not None:
                self._say(line)
            inbox.put(event)

        execution = Execution(venue, emit, clock=self.clock, journal=journal, held=True)
        inherited, undelivered = execution.restore()
        strategy = build_strategy(strategy_cls)
        strategy.ctx = Context(
            execution,
            name=strategy.name,
            pairs=config.strategy.pairs,
            clock=self.clock,
            stop=lambda why: guard.finish(why),
        )
        strategy.params = params
        kept = StateKeeper(execution.book, journal, strategy.ctx)  # ctx.state, as last saved
        guard = Guard(
            strategy,
            timeout=config.runner.hook_timeout_s,
            policy=config.runner.on_hook_error,
            on_stop_bot=lambda why: self.request_stop(why, exit_code=EXIT_STOPPED_BY_STRATEGY),
            on_finish=lambda why: self.request_stop(why, say=True),
            after=kept.after,
            say=self._say,
        )
        self._say(
            f"orderly: {strategy.name} on {venue.name} (key {venue.key_id}), pairs "
            f"{', '.join(config.strategy.pairs)}; JSON logs in {config.runner.log_file}"
        )
        runner = config.runner
        async with asyncio.TaskGroup() as group:
            dispatcher = group.create_task(self._dispatch(guard, inbox, execution), name="dispatch")
            inbox.put(Started(wall(self.clock), inherited=tuple(inherited)))
            if inherited:
                self._say(f"inherited {counted(len(inherited), 'open order')} from the journal")
            for fill in undelivered:  # applied before the last stop, never delivered
                emit(fill)
            try:  # how the inherited orders fared while the bot was down
                await execution.resume()
            except OrderlyError as exc:  # polling tries again
                log.warning("resume_failed", error=str(exc))
            feed: Feed | None = None
            if runner.streams and venue.streaming:
                safety = runner.stream_poll_s
                feed = Feed(execution, strategy.ctx, emit, clock=self.clock, safety_poll_s=safety)

            async def poll_tickers() -> None:
                if feed is None or not feed.market_live:  # the stream brings them
                    await self._poll_tickers(venue, strategy, emit)

            repeated: list[tuple[str, float, Callable[[], Awaitable[None]]]] = [
                ("tickers", runner.tick_interval_s, poll_tickers),
                ("orders", runner.order_poll_s, (feed or execution).poll_orders),
                ("clock", runner.clock_check_s, lambda: self._check_clock(venue)),
            ]
            if runner.dead_man_timeout_s:
                timeout = runner.dead_man_timeout_s
                repeated.append(
                    ("dead_man", runner.dead_man_refresh_s, lambda: venue.arm_dead_man(timeout))
                )
            loops = [
                group.create_task(self._repeat(what, period, action), name=what)
                for what, period, action in repeated
            ]

            def summary() -> Summary:  # the numbers now: the terminal line, /metrics
                return self.tally.summary(
                    strategy.ctx.tickers(),
                    venue.stats,
                    open_orders=len(execution.book.open()),
                    hook_errors=guard.failures,
                    state=guard.state.value,
                    now=self.clock.monotonic(),
                )

            loops.append(group.create_task(self._summary(summary), name="summary"))
            if limit := runner.loop_block_warn_s:
                watch = watch_loop(limit, lambda: guard.last, self._say)
                loops.append(group.create_task(watch, name="watchdog"))
            if runner.metrics_port is not None:
                where = {"exchange": venue.name, "key_id": venue.key_id, "strategy": strategy.name}
                host, port = runner.metrics_host, runner.metrics_port
                metrics = serve_metrics(host, port, summary, where, say=self._say)
                loops.append(group.create_task(metrics, name="metrics"))
            if feed is not None:
                pairs = config.strategy.pairs
                loops.append(group.create_task(feed.run(venue, pairs, self._say), name="streams"))

            def start_timer(period: float, callback: Timer) -> None:
                loops.append(group.create_task(self._timer(guard, period, callback)))

            strategy.ctx._attach_timers(start_timer)
            await self._stop.wait()
            await self._shutdown(execution, guard, inbox, dispatcher, loops)
        self._say(summary().line(final=True))
        left = counted(len(execution.book.open()), "order")
        if self._exit == EXIT_STATE:
            print(f"orderly: stopped: {self._reason}; {left} left open", file=sys.stderr)
        elif self._exit == EXIT_ORDERS_LEFT:
            armed = "; the dead-man switch stays armed" if config.runner.dead_man_timeout_s else ""
            print(
                f"orderly: stopped ({self._reason}) but could not cancel {left}{armed}",
                file=sys.stderr,
            )
        return self._exit

    async def _shutdown(
        self,
        execution: Execution,
        guard: Guard,
        inbox: Inbox,
        dispatcher: asyncio.Task[None],
        loops: list[asyncio.Task[Any]],
    ) -> None:
        """Stop taking orders and polling; finish the orders' work; deliver every event it
        produced; then ``on_stop``."""
        execution.accepting = False
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        runner = self.config.runner
        if not await execution.drain(runner.drain_timeout_s):
            unknown = sum(o.state is OrderState.UNKNOWN for o in execution.book.open())
            log.warning("order_work_unfinished", pending=execution.pending, unknown=unknown)
            self._say(
                f"{counted(unknown, 'order')} still being reconciled after drain_timeout_s; "
                "the order journal keeps them and the next start finishes the job"
            )
        cancelled = True
        key_wide = runner.cancel_on_stop == "all"  # else only its own: others' stay
        if key_wide or (runner.cancel_on_stop and execution.book.open()):
            try:
                count = await (execution.cancel_all if key_wide else execution.cancel_own)()
                self._say(f"cancelled {counted(count, 'open order')}")
            except OrderlyError as exc:
                cancelled = False
                log.error("cancel_on_stop_failed", error=str(exc))
                self._say(f"could not cancel open orders: {exc}")
                if self._exit == EXIT_OK:
                    self._exit = EXIT_ORDERS_LEFT
        await self._final_poll(execution)
        await execution.close()  # nothing of it outlives the bot
        guard.stopping()
        inbox.put(Stopping(wall(self.clock), self._reason))
        inbox.close()
        await dispatcher
        if runner.dead_man_timeout_s and cancelled:
            try:
                await execution.venue.arm_dead_man(0)  # a clean stop: nothing left to guard
            except OrderlyError as exc:
                log.warning("dead_man_disarm_failed", error=str(exc))
        elif runner.dead_man_timeout_s:
            self._say("the dead-man switch stays armed: the exchange cancels the orders left")

    async def _final_poll(self, execution: Execution, tries: int = 5) -> None:
        """The fills and final states that happened until now, for the strategy: one poll,
        tried again (backing off) if the exchange fails it, so one refused call at the stop
        does not leave filled orders looking open. The journal covers what still fails."""
        for attempt in range(tries):
            try:
                await execution.poll()
                return
            except OrderlyError as exc:
                log.warning("final_poll_failed", attempt=attempt, error=str(exc))
                await self.clock.sleep(min(0.2 * 2**attempt, 2.0))

    async def _check_clock(self, venue: Venue) -> None:
        warning = await check_clock(venue, self.config.runner.clock_skew_warn_s)
        if warning is not None:
            self._say(warning)

    async def _dispatch(self, guard: Guard, inbox: Inbox, execution: Execution) -> None:
        while (event := await inbox.get()) is not None:
            if isinstance(event, Ticker):
                self.tally.tick_lag = wall(self.clock) - event.time
            execution.tracker.given(event)  # its order leaves the strategy's open_orders()
            await guard.deliver(event)  # marks a fill delivered (framework/strategy_state.py)

    async def _repeat(
        self, what: str, period: float, action: Callable[[], Awaitable[None]]
    ) -> None:
        """``action`` every ``period`` s; failures back off exponentially, never stop."""
        delay = period
        while True:
            try:
                await action()
                delay = period
            except StateError as exc:  # nothing more can be sent safely: stop
                log.error("state_unwritable", what=what, error=str(exc))
                self.request_stop(
                    f"a state file cannot be written: {exc.message}", exit_code=EXIT_STATE
                )
                return
            except OrderlyError as exc:
                delay = min(max(delay * 2, period), self.config.runner.max_backoff_s)
                log.warning("poll_failed", what=what, error=str(exc), retry_in_s=delay)
            except Exception as exc:  # a bug, or an answer no parser foresaw: never fatal here
                delay = min(max(delay * 2, period), self.config.runner.max_backoff_s)
                log.error("poll_crashed", what=what, retry_in_s=delay, exc_info=exc)
            await self.clock.sleep(delay)

    async def _poll_tickers(
        self, venue: Venue, strategy: Strategy, emit: Callable[[object], None]
    ) -> None:
        assert self.config.strategy is not None
        for pair in self.config.strategy.pairs:
            ticker = await venue.ticker(pair)
            strategy.ctx._remember(ticker)
            emit(ticker)

    async def _timer(self, guard: Guard, period: float, callback: Timer) -> None:
        while True:
            await self.clock.sleep(period)
            await guard.tick_timer(callback)

    async def _summary(self, summary: Callable[[], Summary]) -> None:
        while True:
            await self.clock.sleep(self.config.runner.summary_interval_s)
            self._say(summary().line())


def run(config: Config) -> int:
    """Configure logging to ``[runner].log_file``, run the bot, return the exit code."""
    runner = config.runner
    size = int(runner.log_max_mb * 1024 * 1024)
    with RotatingFile(runner.log_file, max_bytes=size, backups=runner.log_backups) as stream:
        logging_setup.configure(
            runner.log_level, stream=cast(TextIO, stream), json=True, capture_stdlib=True
        )
        try:
            return run_event_loop(Runner(config).main())
        except Exception:  # the whole traceback goes to the log; the CLI says one line
            log.exception("unexpected_error")
            raise
        finally:
            logging_setup.configure("warning")  # the file closes: back to stderr
