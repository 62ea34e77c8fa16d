"""A rate limit shared by every process of a key, kept in Redis: a sliding window per limit,
checked and taken by one Lua script on Redis's own clock (so hosts with skewed clocks agree).
A call that does not fit waits exactly until the oldest call in the window leaves it: a
computed sleep, never polling. Used by exchanges whose keys need no single sender (random
nonces) but whose rate limits count every process: Bitunix.
"""

from __future__ import annotations

import asyncio
import uuid

import redis.asyncio

#: Take a place in the window ``KEYS[1]`` (``ARGV[1]`` calls per ``ARGV[2]`` ms) for member
#: ``ARGV[3]``: 0 when taken, else the ms to wait until a place frees.
TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
    redis.call('ZADD', KEYS[1], now, ARGV[3])
    redis.call('PEXPIRE', KEYS[1], window)
    return 0
end
local oldest = tonumber(redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2])
return oldest + window - now + 1
"""


class SharedWindow:
    """At most ``calls`` per ``period`` seconds across every process using ``name``."""

    def __init__(self, client: redis.asyncio.Redis, name: str, calls: int, period: float) -> None:
        self._redis = client
        self.name = name
        self.calls = calls
        self.window_ms = int(period * 1000)

    async def acquire(self) -> None:
        member = uuid.uuid4().hex
        while True:
            wait_ms = int(
                await self._redis.eval(TAKE, 1, self.name, self.calls, self.window_ms, member)
            )
            if wait_ms <= 0:
                return
            await asyncio.sleep(wait_ms / 1000)
