"""What travels through a lane: the call (plain data, no nonce), what a lane is given to
send it, and how each outcome is counted and recorded."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, runtime_checkable

from framework.errors import (
    AmbiguousOutcome,
    AuthError,
    NonceError,
    OrderlyError,
    OrderRejected,
    RateLimited,
    TransientError,
)
from framework.nonce.history import Outcome
from framework.nonce.source import Nonce


@dataclass(frozen=True, slots=True)
class PrivateCall:
    """An unsigned private call: which endpoint, with which parameters. No nonce yet."""

    endpoint: str
    params: Mapping[str, Any] = field(default_factory=dict)
    #: Lane-clock time after which the call is refused instead of sent (an exchange with a
    #: timestamp window would refuse it anyway; a stale intent is better not sent).
    not_after: float | None = None


#: What an exchange client gives the lane: sign ``call`` with ``nonce``, send it, parse the
#: answer; return the result or raise a typed :class:`OrderlyError`.
Wire = Callable[[PrivateCall, Nonce], Awaitable[Any]]


@runtime_checkable
class StagedWire(Protocol):
    """A wire in two steps, so a strict lane can sign the next call while this one is in
    flight: ``build`` is pure (no I/O), ``deliver`` sends what it built and parses the
    answer; calling it does both (framework/transport.py's Pipeline)."""

    def build(self, call: PrivateCall, nonce: Nonce) -> Any: ...

    async def deliver(self, call: PrivateCall, built: Any) -> Any: ...

    def __call__(self, call: PrivateCall, nonce: Nonce) -> Awaitable[Any]: ...


#: Waits until ``call`` fits the exchange's rate limits (awaited in queue order, before the
#: nonce is taken, so pacing never reorders nonces).
Pace = Callable[[PrivateCall], Awaitable[None]]

#: How each kind of error is recorded in the nonce history (first match along the MRO).
OUTCOME_OF: dict[type[BaseException], Outcome] = {
    NonceError: "rejected",
    AuthError: "rejected",
    RateLimited: "rejected",
    OrderRejected: "accepted",  # the exchange took the nonce and refused the order itself
    AmbiguousOutcome: "timed_out",
    TransientError: "failed",
}


def outcome_of(exc: BaseException) -> Outcome:
    for cls in type(exc).__mro__:
        if cls in OUTCOME_OF:
            return OUTCOME_OF[cls]
    return "failed"


@dataclass(slots=True)
class LaneStats:
    """Counters of one lane since it started (what the live summary shows)."""

    sent: int = 0
    accepted: int = 0
    refused: int = 0  # nonce or auth refusals
    rate_limited: int = 0  # refused by the exchange's rate limit (not a nonce problem)
    failed: int = 0  # no usable answer (includes lost answers)
    paused: int = 0  # times the breaker tripped

    def count(self, outcome: Outcome, exc: BaseException | None) -> None:
        """One call sent, by how it ended."""
        self.sent += 1
        if outcome == "accepted":
            self.accepted += 1
        elif isinstance(exc, RateLimited):
            self.rate_limited += 1
        elif outcome == "rejected":
            self.refused += 1
        else:
            self.failed += 1


class KeyLane(Protocol):
    """What a venue sees of its key's lane: a :class:`~framework.dispatch.Lane`, a lane
    shared by several processes through Redis (framework/shared.py), or a pool of keys
    (framework/pool.py)."""

    key_id: str

    @property
    def ordering(self) -> str: ...

    @property
    def broken(self) -> OrderlyError | None: ...

    @property
    def stats(self) -> LaneStats: ...

    def start(self) -> None: ...

    async def submit(self, call: PrivateCall) -> Any: ...

    async def submit_batch(self, calls: Sequence[PrivateCall]) -> list[Any]: ...

    async def close(self, grace: float | None = None) -> None: ...


@dataclass(slots=True)
class Job:
    """A call waiting in a lane: the call, its caller's future, when it was queued."""

    call: PrivateCall
    future: asyncio.Future[Any]
    enqueued: float


#: What a Ready holds when its request was not built ahead: it is built as it is sent.
UNBUILT: Any = object()


class Ready(NamedTuple):
    """A call out of the queue, ready to go: paced, with the ``draw``-th nonce drawn on its
    lane and its request built (or UNBUILT)."""

    job: Job
    nonce: Nonce
    draw: int
    built: Any


def settle(
    future: asyncio.Future[Any], result: Any = None, *, exc: BaseException | None = None
) -> None:
    """Answer a caller, unless it stopped waiting (cancelled after its call was sent)."""
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
