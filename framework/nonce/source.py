"""Nonce sources: how the next value for a key is made.

- :class:`IncreasingNonces` - strictly increasing integers: a timestamp in ms, µs or ns
  taken as ``max(now, last + 1)`` (a clock stepped backwards cannot make it go down), or a
  plain counter. The floor comes from a :mod:`store <framework.nonce.store>` and is
  reserved ahead, so a restart after ``kill -9`` starts above every nonce issued.

How far ahead: a timestamp key reserves up to ``block`` ahead of the *clock* (1 s by
default), and past the nonce that needed the reservation by as many nonces as were issued
since the previous one (at least ``block // 100``): a burst that outruns the clock still
pays one commit per block of nonces. Anchoring on the clock bounds the drift of restarts:
a key restarted after a crash starts about one block ahead of the clock, however many times
in a row it crashed (anchored on the last nonce, each crash would add a whole block). A
counter key reserves ``block`` (1,000) past its last nonce.

At open, the source compares the store's floor with the last nonce the key's history shows
sent: a store behind its history lost writes (deleted, replaced, its ``-wal`` file lost) and
would start below nonces the exchange already saw. That is refused (:class:`StoreBehind`)
with the way to resume: ``orderly nonces resume CONFIG``.
- :class:`RandomNonces` - a fresh random 32-char lowercase hex string per call (Bitunix).

Bounds are checked, never wrapped: Kraken takes an unsigned 64-bit integer
(:data:`KRAKEN_MAX`), Synthetix at most 2**63 - 1 (:data:`SYNTHETIX_MAX`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from typing import Protocol

from framework.clock import SYSTEM_CLOCK, Clock
from framework.errors import ConfigError, NonceExhausted, StoreBehind
from framework.nonce.history import NonceHistory
from framework.nonce.store import NonceStore

Nonce = int | str

KRAKEN_MAX = 2**64 - 1
SYNTHETIX_MAX = 2**63 - 1

#: Nanoseconds per unit; ``counter`` ignores the clock.
NS_PER_UNIT = {"ms": 1_000_000, "us": 1_000, "ns": 1}
#: Default reservation block: one second's worth of a timestamp unit, 1,000 for a counter.
DEFAULT_BLOCK = {"counter": 1_000, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


class NonceSource(Protocol):
    """What a lane asks for a nonce. ``next`` is awaited in queue order by the lane's worker."""

    ordered: bool

    def next_ready(self) -> Nonce | None:
        """The next nonce if it can be had without waiting (no store write), else None."""
        ...

    async def next(self) -> Nonce: ...

    def raise_floor(self, value: int) -> None:
        """Make every later nonce greater than ``value`` (resync after a refusal)."""
        ...

    def breaker(self) -> tuple[int, float]:
        """The key's breaker as last saved: (refusals in a row, wall second the pause ends)."""
        ...

    def save_breaker(self, refusals: int, paused_until: float) -> None:
        """Keep the key's breaker where the next process finds it."""
        ...

    async def close(self) -> None: ...


def _epoch(stamp: str) -> float:
    return dt.datetime.fromisoformat(stamp).timestamp()


class IncreasingNonces:
    """Strictly increasing integer nonces for one key, persisted through a store."""

    ordered = True

    def __init__(
        self,
        store: NonceStore,
        key_id: str,
        *,
        unit: str = "ms",
        clock: Clock = SYSTEM_CLOCK,
        max_value: int = KRAKEN_MAX,
        block: int | None = None,
        force_unit: bool = False,
        history: NonceHistory | None = None,
    ) -> None:
        if unit != "counter" and unit not in NS_PER_UNIT:
            raise ConfigError(f"nonce unit must be one of counter, ms, us, ns; got {unit!r}")
        self._store = store
        self.key_id = key_id
        self.unit = unit
        self._clock = clock
        self._max = max_value
        self._block = block or DEFAULT_BLOCK[unit]
        if self._block < 1:
            raise ConfigError(f"nonce reservation block must be positive; got {self._block}")
        self._div = NS_PER_UNIT.get(unit, 0)
        before = next((k for k in store.floors() if k.key_id == key_id), None)
        #: Seconds since the store last wrote this key (None: a key it never saw), less the
        #: reserved second in which it may still have sent: how long the key was idle, at least.
        self.idle_s = (
            max(0.0, self._clock.wall_ns() / 1e9 - _epoch(before.updated_at) - 1.0)
            if before is not None
            else None
        )
        self._last = store.acquire(key_id, unit, force_unit=force_unit)
        self._ceiling = self._last
        self._reserved_from = self._last  # where the last reservation started
        sent = history.last_nonce(key_id) if history is not None else None
        if sent is not None and sent > self._last:
            store.release(key_id, self._last)  # nothing issued: the floor stays as it was
            raise StoreBehind(
                f"nonce store {store} has floor {self._last} for key {key_id}, but its nonce "
                f"history {history} shows nonce {sent} already sent: the store lost writes "
                "(deleted, replaced, or its -wal file lost). To resume above the history: "
                "orderly nonces resume CONFIG",
                key_id=key_id,
            )
        self._reserving = asyncio.Lock()
        self._closed = False

    @property
    def last(self) -> int:
        """The last nonce issued (or the floor read from the store)."""
        return self._last

    def _now(self) -> int:
        return self._clock.wall_ns() // self._div if self._div else 0

    def next_ready(self) -> int | None:
        """``max(now, last + 1)`` if it is within the reserved ceiling (the hot path: no
        await), else None (a reservation is due: await :meth:`next`)."""
        value = max(self._now(), self._last + 1)
        if value <= self._ceiling and value <= self._max:
            self._last = value
            return value
        return None

    async def next(self) -> int:
        """``max(now, last + 1)``. Within the reserved ceiling this never awaits; past it,
        callers wait (in order) for one durable reservation of the next block."""
        while True:
            value = max(self._now(), self._last + 1)
            if value > self._max:
                raise NonceExhausted(
                    f"next nonce {value} would exceed the maximum {self._max}",
                    key_id=self.key_id,
                )
            if value <= self._ceiling:
                self._last = value
                return value
            async with self._reserving:
                now = self._now()
                wanted = max(now, self._last + 1)
                if wanted > self._ceiling and wanted <= self._max:
                    past = max(1, self._block // 100, self._last - self._reserved_from)
                    ahead = max(now + self._block, wanted + past) if self._div else None
                    ceiling = min(ahead or wanted + self._block, self._max)
                    await asyncio.to_thread(self._store.reserve, self.key_id, ceiling)
                    self._ceiling, self._reserved_from = ceiling, wanted

    def raise_floor(self, value: int) -> None:
        self._last = max(self._last, value)

    def breaker(self) -> tuple[int, float]:
        return self._store.breaker(self.key_id)

    def save_breaker(self, refusals: int, paused_until: float) -> None:
        self._store.save_breaker(self.key_id, refusals, paused_until)

    async def close(self) -> None:
        """Write the exact last nonce as the key's floor and release the key."""
        if not self._closed:
            self._closed = True
            await asyncio.to_thread(self._store.release, self.key_id, self._last)

    def __repr__(self) -> str:
        return f"IncreasingNonces(key_id={self.key_id!r}, unit={self.unit!r}, last={self._last})"


class RandomNonces:
    """A random, single-use 32-char lowercase hex string per call (128 bits)."""

    ordered = False

    def __init__(self, key_id: str) -> None:
        self.key_id = key_id
        self._breaker = (0, 0.0)

    def next_ready(self) -> str:
        return secrets.token_hex(16)

    async def next(self) -> str:
        return secrets.token_hex(16)

    def raise_floor(self, value: int) -> None:
        """Random nonces have no floor."""

    def breaker(self) -> tuple[int, float]:
        return self._breaker

    def save_breaker(self, refusals: int, paused_until: float) -> None:
        """Kept in memory: a random-nonce key has no store."""
        self._breaker = (refusals, paused_until)

    async def close(self) -> None:
        """Nothing to persist."""

    def __repr__(self) -> str:
        return f"RandomNonces(key_id={self.key_id!r})"
