"""Bitunix's documented rate limits, as data, and the pacer that keeps a key under them.

From the place_order, batch_order and cancel_orders pages (protocols.md 2.6 and "2.x
Corrections"): place_order 10 requests per second per uid, batch_order 5 per second (an
older mirror said 1; the current page wins), cancel_orders 5 per second.
Other endpoints have no documented limit here and are not paced. Over the limit Bitunix
answers 10005 / 10006.

Bitunix does not say whether "10 per second" is a bucket (a burst of 10, then 10/s) or a
sliding window (never more than 10 in any second); a burst honouring the first breaks the
second. So calls are spaced evenly at 90% of the rate, which satisfies both.
"""

from __future__ import annotations

import redis.asyncio
from aiolimiter import AsyncLimiter

from framework.call import PrivateCall
from framework.shared_limits import SharedSpacing

#: endpoint name -> (requests, per seconds)
LIMITS: dict[str, tuple[float, float]] = {
    "place_order": (10, 1.0),
    "batch_order": (5, 1.0),
    "cancel_orders": (5, 1.0),
}


class Pacer:
    """Waits (loop timers, no polling) until a call fits its endpoint's limit. With a
    ``redis_url`` the limits are shared by every process of the key (``key_id``): the same
    even spacing, kept in Redis (framework/shared_limits.py)."""

    def __init__(
        self,
        limits: dict[str, tuple[float, float]] = LIMITS,
        headroom: float = 0.9,
        *,
        redis_url: str | None = None,
        key_id: str = "",
    ) -> None:
        self._limiters: dict[str, AsyncLimiter | SharedSpacing] = {}
        if redis_url is None:
            self._limiters = {
                name: AsyncLimiter(1, period / (rate * headroom))
                for name, (rate, period) in limits.items()
            }
            return
        client = self._redis = redis.asyncio.Redis.from_url(redis_url)
        for name, (rate, period) in limits.items():
            self._limiters[name] = SharedSpacing(
                client, f"orderly:bitunix:{key_id}:limit:{name}", period / (rate * headroom)
            )

    _redis: redis.asyncio.Redis | None = None

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()

    async def pace_call(self, call: PrivateCall) -> None:
        """:meth:`pace` for a lane."""
        await self.pace(call.endpoint)

    async def pace(self, endpoint: str) -> None:
        limiter = self._limiters.get(endpoint.rsplit("/", 1)[-1])
        if limiter is not None:
            await limiter.acquire()
