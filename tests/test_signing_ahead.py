"""A strict lane signs its next call while the last one is in flight (framework/lane_queue.py):
the nonce is still drawn in queue order, and a request signed ahead goes out only if no
nonce drawn after its own went out, none was refused since and it is still fresh."""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from framework.call import PrivateCall
from framework.clock import ManualClock
from framework.dispatch import Lane
from framework.errors import ExchangeError, NonceError, RateLimited, StateError
from framework.lane_queue import AHEAD_FRESH_S
from framework.nonce import MemoryStore, NonceHistory
from framework.nonce.source import IncreasingNonces, Nonce
from tests.test_lane import Wire


def strict_lane(wire: Wire, clock: ManualClock | None = None, **options: Any) -> Lane:
    clock = clock or ManualClock()
    source = IncreasingNonces(MemoryStore(), "k", unit="counter", clock=clock)
    options.setdefault("history", NonceHistory(None))
    return Lane(key_id="k", wire=wire, source=source, clock=clock, **options)


async def until(condition: Callable[[], bool]) -> None:
    """Let the loop turn until ``condition`` holds (at most 100 turns)."""
    for _ in range(100):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


async def test_the_next_call_is_signed_while_the_last_is_in_flight() -> None:
    wire = Wire()
    wire.gate = asyncio.Event()  # holds every call in flight until it opens
    history = NonceHistory(None)
    async with strict_lane(wire, history=history) as lane:
        calls = [asyncio.create_task(lane.submit(PrivateCall(f"E{i}"))) for i in range(3)]
        await until(lambda: len(wire.built) == 2)
        assert wire.sent == [("E0", 1)]  # E1 is signed, not sent: E0 has no answer yet
        assert wire.built == [("E0", 1), ("E1", 2)]
        wire.gate.set()
        await asyncio.gather(*calls)
    assert wire.sent == wire.built == [("E0", 1), ("E1", 2), ("E2", 3)]
    # the history keeps each call's two records together, in send order
    assert [(r["event"], r["seq"]) for r in history.recent()] == [
        (event, seq) for seq in (1, 2, 3) for event in ("nonce_assigned", "nonce_outcome")
    ]


async def test_a_call_signed_before_a_refused_nonce_gets_a_fresh_one() -> None:
    refusals = iter([True])

    def script(call: PrivateCall, nonce: Nonce) -> Any:
        if call.endpoint == "E0" and next(refusals, False):
            raise NonceError("refused", code="EAPI:Invalid nonce")
        return nonce

    wire = Wire(script)
    wire.gate = asyncio.Event()
    async with strict_lane(wire) as lane:
        calls = [asyncio.create_task(lane.submit(PrivateCall(f"E{i}"))) for i in (0, 1)]
        await until(lambda: len(wire.built) == 2)  # E1 signed ahead with nonce 2
        wire.gate.set()
        results = await asyncio.gather(*calls)
    # E0's retry took nonce 3 and went first; E1's nonce 2 would now be refused: it got 4
    assert wire.sent == [("E0", 1), ("E0", 3), ("E1", 4)]
    assert results == [3, 4]


async def test_a_call_signed_ahead_that_waited_past_its_freshness_is_signed_again() -> None:
    """A request signed ahead carries time-bound fields (Kraken's deadline, Synthetix's
    expiresAfter); when the call before it takes long, it is signed again as it goes."""
    clock = ManualClock()
    wire = Wire()
    wire.gate = asyncio.Event()
    async with strict_lane(wire, clock) as lane:
        calls = [asyncio.create_task(lane.submit(PrivateCall(f"E{i}"))) for i in (0, 1)]
        await until(lambda: len(wire.built) == 2)
        clock.advance(AHEAD_FRESH_S + 0.1)
        wire.gate.set()
        await asyncio.gather(*calls)
    assert wire.built == [("E0", 1), ("E1", 2)]
    assert wire.sent == [("E0", 1), ("E1", 3)]  # the request signed with 2 never went out


async def test_a_call_paced_before_a_rate_limit_refusal_is_paced_again() -> None:
    """The refusal fills the pacer's counter (Pacer.refused); a call it paced before that
    must wait on the counter again, as it would have had it been paced after."""
    paced: list[str] = []

    async def pace(call: PrivateCall) -> None:
        paced.append(call.endpoint)

    def script(call: PrivateCall, nonce: Nonce) -> Any:
        if call.endpoint == "E0":
            raise RateLimited("slow down", code="EAPI:Rate limit exceeded")
        return nonce

    wire = Wire(script)
    wire.gate = asyncio.Event()
    async with strict_lane(wire, pace=pace) as lane:
        calls = [asyncio.create_task(lane.submit(PrivateCall(f"E{i}"))) for i in (0, 1)]
        await until(lambda: len(wire.built) == 2)
        wire.gate.set()
        results = await asyncio.gather(*calls, return_exceptions=True)
    assert isinstance(results[0], RateLimited) and results[1] == 2
    assert paced == ["E0", "E1", "E1"]


async def test_a_request_that_cannot_be_built_ahead_fails_its_call_not_the_lane() -> None:
    """A build that raises is tried again as the call is sent, where its error is answered
    as any wire's: the caller gets a typed error, the calls around it go out."""

    class Picky:  # as the core's Pipeline: calling it builds, then delivers
        def __init__(self) -> None:
            self.sent: list[tuple[str, Nonce]] = []

        def build(self, call: PrivateCall, nonce: Nonce) -> Nonce:
            if call.endpoint == "bad":
                raise ValueError("cannot encode")
            return nonce

        async def deliver(self, call: PrivateCall, built: Nonce) -> Any:
            self.sent.append((call.endpoint, built))
            await asyncio.sleep(0)
            return built

        async def __call__(self, call: PrivateCall, nonce: Nonce) -> Any:
            return await self.deliver(call, self.build(call, nonce))

    wire = Picky()
    async with strict_lane(wire) as lane:  # type: ignore[arg-type]
        results = await asyncio.gather(
            *(lane.submit(PrivateCall(name)) for name in ("E0", "bad", "E2")),
            return_exceptions=True,
        )
    assert results[0] == 1 and results[2] == 3
    assert isinstance(results[1], ExchangeError) and "ValueError" in results[1].message
    assert wire.sent == [("E0", 1), ("E2", 3)]


async def test_a_call_signed_ahead_is_not_sent_once_a_state_file_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills while E0 is in flight and E1 is signed: E0's outcome cannot be
    recorded, so the lane stops sending; E0's caller still gets its answer, E1 never goes."""
    history = NonceHistory(tmp_path / "h.jsonl", max_bytes=100)  # every record written at once
    wire = Wire()
    wire.gate = asyncio.Event()

    def refused(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    async with strict_lane(wire, history=history) as lane:
        calls = [asyncio.create_task(lane.submit(PrivateCall(f"E{i}"))) for i in (0, 1)]
        await until(lambda: len(wire.built) == 2)
        monkeypatch.setattr("framework.nonce.history.os.write", refused)
        wire.gate.set()
        async with asyncio.timeout(5):
            results = await asyncio.gather(*calls, return_exceptions=True)
        assert results[0] == {"endpoint": "E0", "nonce": 1}
        assert isinstance(results[1], StateError) and lane.broken is not None
        assert wire.sent == [("E0", 1)]
        monkeypatch.undo()
    history.close()
