"""A lane's queue side: calls leave in queue order, each paced, given its nonce and signed.

    Lane.submit ──put──▶ LaneQueue ──next()──▶ the lane's worker: number, send, record

The nonce is drawn here, as a call leaves the queue, so nonce order is queue order. Here
too is whether a call may still go, asked as it leaves the queue and again before a call
signed ahead is sent: its caller gave up, the breaker paused the lane (breaker.py), a state
file could not be written (``broken``: nothing goes out on the key again), or it waited past
its ``not_after``.

A strict lane whose wire comes in two steps (a :class:`~framework.call.StagedWire`: the
core's Pipeline) signs its next call while the last one is in flight. As it sends, the
worker calls :meth:`LaneQueue.sign_next`. One loop turn later, the queue's own task
(:meth:`LaneQueue.signer`) takes, paces, draws and builds the next call. The turn matters: on
Python 3.11 aiohttp writes a body from a task of its own, and that body must leave first.

A call signed ahead still goes out in draw order, so nonces still rise in send order.
:meth:`LaneQueue.next` draws it again when:
- a nonce drawn after its own has gone out (a retry), or a nonce was refused since;
- it waited past AHEAD_FRESH_S, so a time-bound field (Kraken's ``deadline``,
  Synthetix's ``expiresAfter``) would go out stale.

It is paced again when a rate-limit refusal came after it was paced: that refusal filled
the pacer's counter.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable
from typing import Any

from framework.breaker import Breaker
from framework.call import UNBUILT, Job, LaneStats, Pace, Ready, StagedWire, Wire, settle
from framework.clock import Clock
from framework.errors import LanePaused, OrderlyError, StateError, TransientError
from framework.log import get_logger
from framework.nonce.history import NonceHistory
from framework.nonce.source import Nonce, NonceSource

log = get_logger("framework.lane_queue")

#: How long a request signed ahead stays good to send (s).
AHEAD_FRESH_S = 0.5

#: A call signed ahead, the rate-limit refusals known before it was paced, and when.
Signed = tuple[Ready, int, float]


class LaneQueue:
    """The queue of one lane and the nonce draws; see the module docstring."""

    def __init__(
        self,
        *,
        source: NonceSource,
        wire: Wire,
        pace: Pace | None,
        max_in_flight: int,
        clock: Clock,
        stats: LaneStats,
        breaker: Breaker,
        history: NonceHistory,
        key_id: str,
        exchange: str | None,
    ) -> None:
        self._source = source
        self._pace = pace
        self._windowed = max_in_flight > 1
        self._slots = asyncio.Semaphore(max_in_flight)
        self._monotonic = clock.monotonic
        self._stats = stats
        self._breaker = breaker
        self._history = history
        self._where = {"exchange": exchange, "key_id": key_id}
        #: Why the lane stopped sending for good (a state file it cannot write), or None.
        self.broken: StateError | None = None
        #: What the last pause means, in words.
        self.pause_reason = "the exchange refused the key's calls"
        self._stop_sending = self.stop_sending  # bound once: handed to the history often
        self._queue: asyncio.Queue[tuple[Job, ...] | None] = asyncio.Queue()
        #: Calls of a batch taken from the queue and not yet prepared.
        self._jobs: deque[Job] = deque()
        #: A two-step wire: requests are built as calls leave the queue.
        self.staged = wire if isinstance(wire, StagedWire) else None
        #: The next call, being signed while the last one is in flight; what wakes the signer.
        self._ahead: asyncio.Future[Signed | None] | None = None
        self._want: asyncio.Future[asyncio.Future[Signed | None]] | None = None
        #: Nonces drawn; a Ready drawn at or before ``_spent`` needs a fresh one.
        self._draws = self._spent = 0

    @property
    def signs_ahead(self) -> bool:
        return self.staged is not None and not self._windowed

    def put(self, jobs: tuple[Job, ...]) -> None:
        self._queue.put_nowait(jobs)

    def stop(self) -> None:
        """The calls queued so far still go; then :meth:`next` answers None."""
        self._queue.put_nowait(None)

    def waiting(self) -> bool:
        """Whether a call is queued or being signed."""
        return self._ahead is not None or bool(self._jobs) or not self._queue.empty()

    def next(self) -> Awaitable[Ready | None]:
        """The next call to send, or None when the lane stops."""
        if self._ahead is None:
            return self._take()
        ahead, self._ahead = self._ahead, None
        return self._signed(ahead)

    async def _signed(self, ahead: asyncio.Future[Signed | None]) -> Ready | None:
        if (signed := await ahead) is None:
            return None
        if (ready := await self._fresh(*signed)) is not None:
            return ready
        return await self._take()

    def sign_next(self) -> None:
        """The worker is sending a strict call: sign the next one meanwhile, if any waits."""
        want = self._want
        if want is not None and not want.done() and (self._jobs or not self._queue.empty()):
            loop = asyncio.get_running_loop()
            self._ahead = loop.create_future()
            loop.call_soon(self._kick, want, self._ahead)  # a turn later: this call goes first

    @staticmethod
    def _kick(want: asyncio.Future[Any], ahead: asyncio.Future[Signed | None]) -> None:
        if not want.done():
            want.set_result(ahead)

    async def signer(self) -> None:
        """The task that signs ahead (a strict lane with a staged wire); runs until the stop
        or until cancelled."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                self._want = want = loop.create_future()
                ahead: asyncio.Future[Signed | None] = await want
                limited = self._stats.rate_limited  # the refusals known before its pacing
                ready = await self._take()
                if not ahead.done():
                    ahead.set_result(None if ready is None else (ready, limited, self._monotonic()))
                elif ready is not None:  # the worker stopped waiting: the lane is closing
                    self._jobs.appendleft(ready.job)
                if ready is None:
                    return
        finally:
            self._want = None

    async def redraw(self) -> Nonce:
        """A fresh nonce (a retry, or a call signed ahead gone stale); anything signed ahead
        before it is drawn again."""
        nonce = await self._source.next()
        self._draws = self._spent = self._draws + 1
        return nonce

    def nonce_refused(self) -> None:
        """A nonce was refused: a call signed ahead gets a fresh one."""
        self._spent = self._draws

    def release(self) -> None:
        """A windowed call is done with its slot."""
        if self._windowed:
            self._slots.release()

    def fail(self, exc: OrderlyError) -> None:
        """Answer every queued call with ``exc``; none of them was sent. (A call being
        signed ahead is answered as the worker takes it: it asks ``may_send`` again.)"""
        while self._jobs:
            settle(self._jobs.popleft().future, exc=exc)
        while not self._queue.empty():
            if (jobs := self._queue.get_nowait()) is None:
                self._queue.put_nowait(None)
                break
            for job in jobs:
                settle(job.future, exc=exc)

    def close(self, exc: OrderlyError) -> None:
        """The worker has ended: answer what is left, a call signed ahead included."""
        ahead, self._ahead = self._ahead, None
        signed = ahead.result() if ahead and ahead.done() and not ahead.cancelled() else None
        if signed is not None:
            settle(signed[0].job.future, exc=exc)
        self.fail(exc)

    # --- whether a call may go -------------------------------------------------------------

    def paused(self) -> LanePaused:
        return LanePaused(
            f"lane paused after repeated refusals: {self.pause_reason}",
            resume_in=self._breaker.paused_for(),
            **self._where,
        )

    def _may_send(self, job: Job) -> bool:
        """Whether a queued call may still go; if not (gave up, paused, too late), answered."""
        if job.future.done():  # the caller gave up while queued
            return False
        if self.broken is not None:
            settle(job.future, exc=self.broken)
            return False
        now = self._monotonic()
        if self._breaker.paused_until > now:
            settle(job.future, exc=self.paused())
            return False
        if job.call.not_after is not None and now > job.call.not_after:
            settle(
                job.future,
                exc=TransientError(
                    "call waited past its time window and was not sent",
                    endpoint=job.call.endpoint,
                    **self._where,
                ),
            )
            return False
        return True

    def not_sent(self, job: Job, exc: OrderlyError) -> None:
        """``job`` not sent: no nonce, or a state file not written (then nothing more goes)."""
        settle(job.future, exc=exc)
        if isinstance(exc, StateError):
            self.stop_sending(exc)

    def stop_sending(self, exc: StateError) -> None:
        """A state file cannot be written: no more calls go out on this key."""
        if self.broken is None:
            self.broken = StateError(exc.message, **self._where)
            log.error(
                "lane_stopped_sending",
                **self._where,
                error=exc.message,
                detail="a state file cannot be written; no call goes out on this key again",
            )
        self.fail(self.broken)

    # --- taking the next call ----------------------------------------------------------------

    async def _take(self) -> Ready | None:
        """The next call that may go: out of the queue, paced, its nonce drawn, its request
        built; None at the stop."""
        job: Job | None = None
        try:
            while True:
                if not self._jobs:
                    if self._queue.empty():  # about to wait: the history goes to disk
                        self._history.idle(self._stop_sending)
                    if (jobs := await self._queue.get()) is None:
                        return None
                    self._jobs.extend(jobs)
                if not self._may_send(job := self._jobs.popleft()):
                    continue
                if self._windowed:
                    await self._slots.acquire()
                if self._pace is not None:
                    await self._pace(job.call)
                    if not self._may_send(job):  # while it waited
                        self.release()
                        continue
                try:
                    nonce = self._source.next_ready()
                    if nonce is None:  # a block reservation is due: the one await here
                        nonce = await self._source.next()
                except OrderlyError as exc:  # exhausted, or a state file not written
                    self.release()
                    self.not_sent(job, exc)
                    continue
                self._draws += 1
                staged = self.staged
                built = UNBUILT if staged is None else self._build(staged, job, nonce)
                return Ready(job, nonce, self._draws, built)
        except asyncio.CancelledError:  # the lane is closing: an unanswered call stays queued
            if job is not None and not job.future.done():
                self._jobs.appendleft(job)
            raise

    @staticmethod
    def _build(staged: StagedWire, job: Job, nonce: Nonce) -> Any:
        try:
            return staged.build(job.call, nonce)
        except Exception:  # built again as it is sent, where its error is answered
            return UNBUILT

    async def _fresh(self, ready: Ready, limited: int, at: float) -> Ready | None:
        """``ready``, signed ahead at ``at`` and paced after ``limited`` rate-limit
        refusals, as it may go now (see the module docstring), or None if it may not."""
        job = ready.job
        if limited != self._stats.rate_limited and self._pace is not None:
            await self._pace(job.call)
        if not self._may_send(job):  # gave up, paused or broken meanwhile
            return None
        if ready.draw > self._spent and self._monotonic() - at <= AHEAD_FRESH_S:
            return ready
        try:
            nonce = await self.redraw()
        except OrderlyError as exc:
            self.not_sent(job, exc)
            return None
        return Ready(job, nonce, self._draws, UNBUILT)
