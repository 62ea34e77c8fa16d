"""A rate limit shared by every process of a key, kept in Redis: calls are granted slots one
interval apart on Redis's own clock (so hosts with skewed clocks agree), by one Lua script.

Even spacing, not a sliding window: the exchange counts a call when it arrives, the pacer
when it grants it. A window lets a full burst go at the end of one second and the next at
the start of the following one; a few milliseconds of delay on the first burst then puts
both in one exchange-side second (CI saw Bitunix answer 10006 that way). Spaced calls need
a delay of a whole interval to collide. A caller waits until its slot (a computed sleep,
never polling); a caller cancelled while waiting leaves its slot unused, which only slows
the others. Used by exchanges whose keys need no single sender (random nonces) but whose
rate limits count every process: Bitunix.
"""

from __future__ import annotations

import asyncio

import redis.asyncio

#: Grant the next slot of limit ``KEYS[1]``, at least ``ARGV[1]`` µs after the last one and
#: not before now: returns the slot (µs on Redis's clock) and how long to wait for it (µs).
TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(now, last + interval)
local keep_ms = math.ceil((slot - now + interval) / 1000)
redis.call('SET', KEYS[1], string.format('%d', slot), 'PX', keep_ms)
return {slot, slot - now}
"""


class SharedSpacing:
    """Calls at least ``interval`` seconds apart across every process using ``name``."""

    def __init__(self, client: redis.asyncio.Redis, name: str, interval: float) -> None:
        self._redis = client
        self.name = name
        self.interval_us = int(interval * 1_000_000)

    async def take(self) -> int:
        """Wait for the next slot; returns it (µs on Redis's clock)."""
        slot, wait_us = await self._redis.eval(TAKE, 1, self.name, self.interval_us)
        if wait_us > 0:
            await asyncio.sleep(wait_us / 1_000_000)
        return int(slot)

    async def acquire(self) -> None:
        await self.take()
