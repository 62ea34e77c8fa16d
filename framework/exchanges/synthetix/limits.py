"""Synthetix's rate limit, as data, and the pacer that keeps a subaccount under it.

A token bucket per subaccount (protocols.md "3.x Corrections", from the official SDK and the
docs): 1,000 tokens per 10 s on the base fee tier (more on higher tiers: ``[exchange]
rate_tokens`` / ``rate_window_s``). placeOrders takes 5 tokens per order, getOrderHistory
50, every other call 1. Past it Synthetix answers HTTP 429 and runs nothing. A second
bucket, 10,000 per 10 s per IP, is ten times larger and shared by every subaccount on the
host: it is not paced here.

:class:`Pacer` waits (aiolimiter: loop timers, never polling) until a call fits, keeping 5%
of the bucket as headroom for the network's jitter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiolimiter import AsyncLimiter

from framework.call import PrivateCall

#: Tokens per call, per action (placeOrders: per order); 1 for any other action.
COSTS: dict[str, int] = {"placeOrders": 5, "getOrderHistory": 50}
#: The base tier's bucket: tokens, per seconds.
BUCKET = (1000.0, 10.0)


def cost(action: str, params: Mapping[str, Any]) -> int:
    """Tokens one call takes from the subaccount's bucket."""
    orders = params.get("orders") if action == "placeOrders" else None
    return COSTS.get(action, 1) * (len(orders) if orders else 1)


class Pacer:
    """Keeps one subaccount under its token bucket, in the order calls are paced."""

    def __init__(self, bucket: tuple[float, float] = BUCKET, headroom: float = 0.95) -> None:
        tokens, period = bucket
        self.size = tokens * headroom
        self._bucket = AsyncLimiter(self.size, period)

    async def pace_call(self, call: PrivateCall) -> None:
        """:meth:`pace` for a lane."""
        await self.pace(call.endpoint, call.params)

    async def pace(self, action: str, params: Mapping[str, Any]) -> None:
        # A call larger than the whole bucket (a batch of 200+ orders) waits for a full one.
        await self._bucket.acquire(min(cost(action, params), self.size))
