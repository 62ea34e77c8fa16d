"""Several API keys of one account as one lane: more private calls per second.

Each key keeps its own strict lane (its own nonces, its own store floor, its own rate
counters). A call goes to the lane with the fewest calls queued or in flight; a batch goes
whole to one lane, so it stays contiguous on one key. Orders belong to the account, not to
the key that placed them, so lookups and cancels by client order id work from any key.

:class:`PoolLane` offers the lane interface a venue sees (``KeyLane``).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import Any

from framework.call import KeyLane, LaneStats, PrivateCall
from framework.errors import OrderlyError


class PoolLane:
    """Lanes of several keys of one account, each call to the least loaded."""

    def __init__(self, lanes: Sequence[KeyLane]) -> None:
        if not lanes:
            raise ValueError("a key pool needs at least one lane")
        self.lanes = list(lanes)
        self.key_id = self.lanes[0].key_id
        self._load = [0] * len(self.lanes)

    @property
    def ordering(self) -> str:
        return f"strict, pool of {len(self.lanes)} keys"

    @property
    def broken(self) -> OrderlyError | None:
        return next((lane.broken for lane in self.lanes if lane.broken is not None), None)

    @property
    def stats(self) -> LaneStats:
        total = LaneStats()
        for lane in self.lanes:
            for field in dataclasses.fields(LaneStats):
                setattr(
                    total, field.name, getattr(total, field.name) + getattr(lane.stats, field.name)
                )
        return total

    def start(self) -> None:
        for lane in self.lanes:
            lane.start()

    def _pick(self) -> int:
        usable = [i for i, lane in enumerate(self.lanes) if lane.broken is None] or [0]
        return min(usable, key=lambda i: self._load[i])

    async def submit(self, call: PrivateCall) -> Any:
        index = self._pick()
        self._load[index] += 1
        try:
            return await self.lanes[index].submit(call)
        finally:
            self._load[index] -= 1

    async def submit_batch(self, calls: Sequence[PrivateCall]) -> list[Any]:
        index = self._pick()
        self._load[index] += len(calls)
        try:
            return await self.lanes[index].submit_batch(calls)
        finally:
            self._load[index] -= len(calls)

    async def close(self, grace: float | None = None) -> None:
        await asyncio.gather(*(lane.close(grace) for lane in self.lanes))
