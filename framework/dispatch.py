"""The Lane: one queue and one worker per API key, so nonces go out in send order.

    caller ──submit(call)──▶ LaneQueue (lane_queue.py): pace, nonce in queue order, build
                               └─▶ worker: history.assigned(...); await wire(call, nonce)
    caller ◀──── result or typed error ───────┘ history.outcome(...)

Ordering policy, set by ``max_in_flight`` and the nonce source:

- **strict** (``max_in_flight=1``, the default): the next call is sent only after the
  previous one has its answer (it is signed meanwhile), so the exchange sees strictly
  increasing nonces whatever the network does. Kraken and Synthetix keys.
- **windowed** (``max_in_flight=N``): up to N calls in flight, nonces still assigned in
  queue order; for a key whose exchange-side nonce window tolerates reordering.
- **unordered** (a :class:`~framework.nonce.source.RandomNonces` source): random single-use
  nonces, up to ``max_in_flight`` calls at once. Bitunix keys.

A batch (:meth:`Lane.submit_batch`) enters the queue as one block: no other call can get a
nonce between its calls. A nonce refusal (:class:`NonceError` from the wire) is retried with
a fresh nonce up to ``nonce_retries`` times. The breaker (framework/breaker.py) pauses the
lane after repeated auth refusals; while paused every call fails at once with
:class:`LanePaused`, nothing is sent, and each pause is written to the nonce history.
A caller cancelled while queued is dropped unsent; a call sent runs to its end, recorded.

A state file that cannot be written (the nonce store's reservation, the nonce history: a
full disk, a read-only directory) stops the lane from sending: the call it affects and every
queued and later call fail with :class:`StateError`, nothing more goes out on the key, and
the reason is logged once (``lane_stopped_sending``). A call already sent still gets its
answer. The history is written within 10 ms of the lane going idle, so the calls of those
milliseconds may go out before a refused write stops the lane (no nonce is at risk).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from framework.breaker import ELSEWHERE, Breaker
from framework.call import (
    UNBUILT,
    Job,
    LaneStats,
    Pace,
    PrivateCall,
    Ready,
    Wire,
    outcome_of,
    settle,
)
from framework.clock import SYSTEM_CLOCK, Clock
from framework.errors import (
    AmbiguousOutcome,
    AuthError,
    ExchangeError,
    LaneClosed,
    LockedOut,
    NonceError,
    OrderlyError,
    StateError,
    TransientError,
)
from framework.lane_queue import LaneQueue
from framework.log import get_logger
from framework.nonce.history import NonceHistory, Outcome
from framework.nonce.source import Nonce, NonceSource

log = get_logger("framework.dispatch")


class Lane:
    """The per-key queue. Use as ``async with Lane(...) as lane: await lane.submit(call)``."""

    def __init__(
        self,
        *,
        key_id: str,
        wire: Wire,
        source: NonceSource,
        history: NonceHistory,
        max_in_flight: int = 1,
        nonce_retries: int = 2,
        breaker_threshold: int = 3,
        breaker_cooldown: float = 60.0,
        clock: Clock = SYSTEM_CLOCK,
        exchange: str | None = None,
        pace: Pace | None = None,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1; got {max_in_flight}")
        self.key_id = key_id
        self.exchange = exchange
        self.max_in_flight = max_in_flight
        self._wire = wire
        self._source = source
        self._history = history
        self._retries = nonce_retries
        self._monotonic = clock.monotonic  # bound once: read several times per call
        self._worker: asyncio.Task[None] | None = None
        self._closing = False
        self._seq = 0
        self._breaker = Breaker(
            source,
            threshold=breaker_threshold,
            cooldown=breaker_cooldown,
            clock=clock,
            key_id=key_id,
            exchange=exchange,
        )
        self.stats = LaneStats()
        self._queue = LaneQueue(
            source=source,
            wire=wire,
            pace=pace,
            max_in_flight=max_in_flight,
            clock=clock,
            stats=self.stats,
            breaker=self._breaker,
            history=history,
            key_id=key_id,
            exchange=exchange,
        )
        self._stop_sending = self._queue.stop_sending

    @property
    def broken(self) -> StateError | None:
        """Why the lane stopped sending for good (a state file it cannot write), or None."""
        return self._queue.broken

    @property
    def ordering(self) -> str:
        """``strict``, ``windowed`` or ``unordered``."""
        if not self._source.ordered:
            return "unordered"
        return "strict" if self.max_in_flight == 1 else "windowed"

    def _where(self) -> dict[str, str | None]:
        return {"exchange": self.exchange, "key_id": self.key_id}

    # --- life cycle -----------------------------------------------------------------------

    async def __aenter__(self) -> Lane:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def start(self) -> None:
        if self._worker is None:
            self._breaker.load()
            self._worker = asyncio.create_task(self._run(), name=f"lane-{self.key_id}")
            log.info(
                "lane_started",
                key_id=self.key_id,
                exchange=self.exchange,
                ordering=self.ordering,
                max_in_flight=self.max_in_flight,
            )

    async def close(self, grace: float | None = None) -> None:
        """Stop intake, finish what is queued and in flight, then persist the nonce floor.
        After ``grace`` seconds, calls still queued fail with :class:`LaneClosed` and calls
        in flight are cancelled (and recorded as failed)."""
        if self._closing:
            return
        self._closing = True
        if self._worker is not None:
            self._queue.stop()
            try:
                await asyncio.wait_for(asyncio.shield(self._worker), grace)
            except TimeoutError:
                self._worker.cancel()
                await asyncio.gather(self._worker, return_exceptions=True)
        self._queue.close(LaneClosed("lane closed before the call was sent", **self._where()))
        try:
            await self._source.close()
        except StateError as exc:  # the reserved ceiling on file still covers every nonce
            log.warning("nonce_floor_not_written", key_id=self.key_id, error=str(exc))
        self._history.write_now(self._stop_sending)
        log.info("lane_closed", key_id=self.key_id, exchange=self.exchange, sent=self._seq)

    # --- intake ---------------------------------------------------------------------------

    def _admit(self) -> None:
        if self._closing:
            raise LaneClosed("lane is closed", **self._where())
        if self._worker is None:
            raise LaneClosed("lane was never started: use `async with lane`", **self._where())
        if self.broken is not None:
            raise self.broken
        if self._breaker.paused_until and self._breaker.paused_for() > 0:
            raise self._queue.paused()

    async def submit(self, call: PrivateCall) -> Any:
        """Queue ``call``; return its parsed result or raise its typed error."""
        self._admit()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put((Job(call, future, self._monotonic()),))
        return await future

    async def submit_batch(self, calls: Sequence[PrivateCall]) -> list[Any]:
        """Queue ``calls`` as one contiguous block. Returns one entry per call, in order:
        its result, or the :class:`OrderlyError` it raised."""
        self._admit()
        loop = asyncio.get_running_loop()
        now = self._monotonic()
        jobs = tuple(Job(call, loop.create_future(), now) for call in calls)
        self._queue.put(jobs)
        return list(await asyncio.gather(*(job.future for job in jobs), return_exceptions=True))

    # --- the worker -----------------------------------------------------------------------

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as in_flight:
            signer = (
                in_flight.create_task(self._queue.signer()) if self._queue.signs_ahead else None
            )
            while (ready := await self._queue.next()) is not None:
                if (seq := self._numbered(ready)) is None:
                    continue
                if self.max_in_flight > 1:
                    in_flight.create_task(self._execute_in_slot(ready, seq))
                    continue
                if signer is not None:  # strict: the next call leaves after this answer
                    self._queue.sign_next()
                await self._execute(ready.job, ready.nonce, seq, ready.built)
            if signer is not None:
                signer.cancel()

    def _numbered(self, ready: Ready) -> int | None:
        """The call's seq, its nonce written to the history; None if it cannot be."""
        try:
            return self._assigned(ready.job, ready.nonce)
        except OrderlyError as exc:  # a state file not written
            self._queue.release()
            self._queue.not_sent(ready.job, exc)
            return None

    async def _execute_in_slot(self, ready: Ready, seq: int) -> None:
        try:
            await self._execute(ready.job, ready.nonce, seq, ready.built)
        finally:
            self._queue.release()
            if not self._queue.waiting():
                self._history.idle(self._stop_sending)

    def _assigned(self, job: Job, nonce: Nonce) -> int:
        """Number the call and write its nonce to the history; returns its seq."""
        self._seq += 1
        self._history.assigned(
            key_id=self.key_id,
            nonce=nonce,
            seq=self._seq,
            endpoint=job.call.endpoint,
            queued_s=self._monotonic() - job.enqueued,
        )
        return self._seq

    def _record(self, job: Job, nonce: Nonce, seq: int, started: float, exc: Any) -> None:
        outcome: Outcome = "accepted" if exc is None else outcome_of(exc)
        code = None if exc is None else getattr(exc, "code", None) or type(exc).__name__
        self.stats.count(outcome, exc)
        try:  # the call ran: its caller gets the answer even if the record cannot be written
            self._history.outcome(
                key_id=self.key_id,
                nonce=nonce,
                seq=seq,
                endpoint=job.call.endpoint,
                outcome=outcome,
                rtt_s=self._monotonic() - started,
                code=code,
            )
        except StateError as failed:
            self._stop_sending(failed)

    async def _execute(self, job: Job, nonce: Nonce, seq: int, built: Any) -> None:
        """Send one call with its nonce through the wire, record the outcome, answer the
        caller. A refused nonce is retried here with a fresh one."""
        for attempt in range(self._retries + 1):
            started = self._monotonic()
            try:
                if built is UNBUILT or self._queue.staged is None:
                    result = await self._wire(job.call, nonce)
                else:
                    result = await self._queue.staged.deliver(job.call, built)
            except NonceError as exc:
                self._record(job, nonce, seq, started, exc)
                self._queue.nonce_refused()
                if self._breaker.refused():
                    self._trip(exc)
                    settle(job.future, exc=exc)
                    return
                if attempt == self._retries:
                    settle(job.future, exc=exc)
                    return
                try:
                    nonce, built = await self._queue.redraw(), UNBUILT
                    seq = self._assigned(job, nonce)
                except OrderlyError as exhausted:
                    self._queue.not_sent(job, exhausted)
                    return
            except AuthError as exc:  # invalid key or signature, or already locked out
                self._record(job, nonce, seq, started, exc)
                if self._breaker.refused() or isinstance(exc, LockedOut):
                    self._trip(exc)
                settle(job.future, exc=exc)
                return
            except OrderlyError as exc:
                self._record(job, nonce, seq, started, exc)
                if not isinstance(exc, TransientError):
                    self._breaker.accepted()
                settle(job.future, exc=exc)
                return
            except asyncio.CancelledError:
                self._record(job, nonce, seq, started, AmbiguousOutcome("cancelled in flight"))
                settle(job.future, exc=LaneClosed("lane closed during the call", **self._where()))
                raise
            except Exception as exc:  # a bug in a wire: contain it, keep the lane alive
                log.exception("wire_failed", key_id=self.key_id, endpoint=job.call.endpoint)
                self._record(job, nonce, seq, started, exc)
                settle(
                    job.future,
                    exc=ExchangeError(
                        f"unexpected {type(exc).__name__} while handling the response",
                        endpoint=job.call.endpoint,
                        **self._where(),
                    ),
                )
                return
            else:
                self._record(job, nonce, seq, started, None)
                if self._breaker.refusals_in_a_row:
                    self._breaker.accepted()
                if not self._queue.waiting():
                    settle(job.future, result)
                else:  # the next call's body (aiohttp's own task on 3.11) leaves first
                    job.future.get_loop().call_soon(settle, job.future, result)
                return

    def _trip(self, cause: NonceError | AuthError) -> None:
        """Stop sending for the cool-down (framework/breaker.py); every queued call fails."""
        if isinstance(cause, NonceError) and self.ordering == "strict":
            self._queue.pause_reason = ELSEWHERE  # its own nonces only go up; another's do not
        self.stats.paused += 1
        try:
            self._breaker.trip(cause.code, self._queue.pause_reason, self._history)
        except StateError as failed:
            self._stop_sending(failed)
        self._queue.fail(self._queue.paused())

    def __repr__(self) -> str:
        return (
            f"Lane(key_id={self.key_id!r}, exchange={self.exchange!r}, "
            f"ordering={self.ordering!r}, sent={self._seq})"
        )
