"""The nonce floor of a key shared by several processes, kept in Redis and fenced by a lease.

One process at a time is the key's *sender*. It holds the lease, a Redis string set with
``SET NX PX`` whose value is ``<process>:<epoch>``; the epoch counter is raised on every
grant, so each grant has its own token (the fencing token). The holder renews the lease
every third of its TTL; a holder that cannot renew in time stops sending at once (the
shared lane checks :meth:`Lease.holding` before every call it sends).

The floor of the key lives in Redis and is raised only by a Lua script that first checks
the caller's token is still the lease's value: a deposed sender can never reserve again,
so it can never issue a nonce past the block it already held. The floor is also kept in the
sender's local SQLite store (belt and braces: if Redis loses the floor, the next sender takes
``max(Redis floor, its local floor, clock)``).
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio

from framework.errors import StateError
from framework.nonce.store import KeyState, NonceStore

#: Grant the lease to ``ARGV[1]`` (the process) for ``ARGV[2]`` ms if free; raise the epoch.
#: Returns the epoch, or false when another process holds it.
ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    local epoch = redis.call('INCR', KEYS[2])
    redis.call('SET', KEYS[1], ARGV[1] .. ':' .. epoch, 'PX', ARGV[2])
    return epoch
end
return false
"""
#: Extend the lease by ``ARGV[2]`` ms if its value is still the token ``ARGV[1]``.
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
#: Give the lease up if it is still ours.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""
#: Raise the floor (``KEYS[2]``) to ``ARGV[2]`` if the token ``ARGV[1]`` holds the lease
#: (``KEYS[1]``); never lowers it. Returns the floor, or an error for a deposed sender.
RESERVE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
    return redis.error_reply('DEPOSED')
end
local floor = tonumber(redis.call('GET', KEYS[2]) or '0')
local wanted = tonumber(ARGV[2])
if wanted > floor then
    redis.call('SET', KEYS[2], ARGV[2])
    return ARGV[2]
end
return tostring(floor)
"""


def names(exchange: str, key_id: str) -> dict[str, str]:
    """The Redis keys of one API key."""
    base = f"orderly:{exchange}:{key_id}:"
    parts = ("lease", "epoch", "floor", "calls", "sent", "cancelled", "seen")
    return {name: base + name for name in parts}


class Lease:
    """The sender's lease on one key (async, redis-py's asyncio client)."""

    def __init__(
        self, client: redis.asyncio.Redis, keys: dict[str, str], owner: str, ttl_ms: int
    ) -> None:
        self._redis = client
        self._keys = keys
        self.owner = owner
        self.ttl_ms = ttl_ms
        self.token: str | None = None
        self.epoch = 0
        self._valid_until = 0.0  # loop time; past it the lease may be someone else's

    def holding(self, now: float) -> bool:
        """Whether the lease is surely still ours at loop time ``now``."""
        return self.token is not None and now < self._valid_until

    async def acquire(self, now: float) -> bool:
        epoch = await self._redis.eval(
            ACQUIRE, 2, self._keys["lease"], self._keys["epoch"], self.owner, self.ttl_ms
        )
        if not epoch:
            return False
        self.epoch = int(epoch)
        self.token = f"{self.owner}:{self.epoch}"
        self._valid_until = now + self.ttl_ms / 1000 * 0.9
        return True

    async def renew(self, now: float) -> bool:
        """Extend the lease; ``now`` is taken before the call, so a slow answer shortens
        the time the lease is trusted, never lengthens it."""
        if self.token is None:
            return False
        if await self._redis.eval(RENEW, 1, self._keys["lease"], self.token, self.ttl_ms):
            self._valid_until = now + self.ttl_ms / 1000 * 0.9
            return True
        self.token = None
        return False

    async def release(self) -> None:
        if self.token is not None:
            await self._redis.eval(RELEASE, 1, self._keys["lease"], self.token)
            self.token = None


class FencedStore:
    """A :class:`NonceStore` for the sender of a shared key: the floor in Redis, raised
    only under the lease's token, and in the process's own local store."""

    def __init__(self, url: str, keys: dict[str, str], token: str, local: NonceStore) -> None:
        self._redis = redis.Redis.from_url(url)
        self._keys = keys
        self._token = token
        self._local = local

    def _fail(self, doing: str, exc: BaseException, key_id: str) -> StateError:
        return StateError(f"Redis nonce floor: cannot {doing}: {exc}", key_id=key_id)

    def acquire(self, key_id: str, unit: str, *, force_unit: bool = False) -> int:
        local = self._local.acquire(key_id, unit, force_unit=force_unit)
        try:
            shared = int(self._redis.get(self._keys["floor"]) or 0)
        except (redis.RedisError, ValueError) as exc:
            self._local.release(key_id, local)
            raise self._fail("read the floor", exc, key_id) from None
        return max(local, shared)

    def reserve(self, key_id: str, ceiling: int) -> None:
        try:
            self._redis.eval(
                RESERVE, 2, self._keys["lease"], self._keys["floor"], self._token, str(ceiling)
            )
        except redis.ResponseError as exc:
            if "DEPOSED" in str(exc):
                raise StateError(
                    "this process is no longer the key's sender (its lease passed to another)",
                    key_id=key_id,
                ) from None
            raise self._fail("reserve nonces", exc, key_id) from None
        except redis.RedisError as exc:
            raise self._fail("reserve nonces", exc, key_id) from None
        self._local.reserve(key_id, ceiling)

    def release(self, key_id: str, last_issued: int) -> None:
        try:  # the Redis floor is never lowered: it already covers every nonce issued
            self._redis.eval(
                RESERVE, 2, self._keys["lease"], self._keys["floor"], self._token, str(last_issued)
            )
        except redis.RedisError:
            pass  # deposed or unreachable: the floor reserved before still holds
        finally:
            self._local.release(key_id, last_issued)
            self._redis.close()

    def floors(self) -> list[KeyState]:
        return self._local.floors()

    def breaker(self, key_id: str) -> tuple[int, float]:
        return self._local.breaker(key_id)

    def save_breaker(self, key_id: str, refusals: int, paused_until: float) -> None:
        self._local.save_breaker(key_id, refusals, paused_until)

    def __repr__(self) -> str:
        return f"FencedStore(local={self._local!r})"


def redis_client(url: str) -> Any:
    """redis-py's asyncio client for ``url`` (``redis://``, ``unix://``)."""
    return redis.asyncio.Redis.from_url(url)
