"""Nonce sources: units, monotonicity whatever the clock does, bounds, random strings."""

from __future__ import annotations

import itertools
import re

import pytest

from framework.clock import ManualClock
from framework.errors import ConfigError, NonceExhausted
from framework.nonce.source import SYNTHETIX_MAX, IncreasingNonces, RandomNonces
from framework.nonce.store import MemoryStore

WALL = 1_700_000_000_123_456_789


@pytest.mark.parametrize(
    ("unit", "expected"),
    [("ms", WALL // 10**6), ("us", WALL // 10**3), ("ns", WALL), ("counter", 1)],
)
async def test_units(unit: str, expected: int) -> None:
    source = IncreasingNonces(MemoryStore(), "k", unit=unit, clock=ManualClock(WALL))
    assert await source.next() == expected


async def test_same_instant_gives_last_plus_one() -> None:
    source = IncreasingNonces(MemoryStore(), "k", unit="ms", clock=ManualClock(WALL))
    values = [await source.next() for _ in range(5)]
    assert values == list(range(values[0], values[0] + 5))


async def test_clock_stepped_back_ten_seconds_still_increases() -> None:
    clock = ManualClock(WALL)
    source = IncreasingNonces(MemoryStore(), "k", unit="ms", clock=clock)
    before = [await source.next() for _ in range(3)]
    clock.step_wall(-10)
    after = [await source.next() for _ in range(3)]
    clock.advance(11)
    later = await source.next()
    sequence = [*before, *after, later]
    assert all(b > a for a, b in itertools.pairwise(sequence))
    assert later == (WALL + 1_000_000_000) // 10**6  # the clock wins again once it passes


async def test_overflow_is_an_error_not_a_wrap() -> None:
    store = MemoryStore()
    store.acquire("k", "counter")
    store.reserve("k", SYNTHETIX_MAX - 2)
    store.release("k", SYNTHETIX_MAX - 2)
    source = IncreasingNonces(store, "k", unit="counter", max_value=SYNTHETIX_MAX)
    assert await source.next() == SYNTHETIX_MAX - 1
    assert await source.next() == SYNTHETIX_MAX
    with pytest.raises(NonceExhausted, match="exceed the maximum"):
        await source.next()


async def test_kraken_bound_is_u64() -> None:
    clock = ManualClock(2**64 + 5)  # a clock in ns past u64
    source = IncreasingNonces(MemoryStore(), "k", unit="ns", clock=clock)
    with pytest.raises(NonceExhausted):
        await source.next()


def test_unknown_unit_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="nonce unit"):
        IncreasingNonces(MemoryStore(), "k", unit="minutes")


async def test_random_nonces_are_32_lowercase_hex_and_unique() -> None:
    source = RandomNonces("k")
    values = [await source.next() for _ in range(2000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", v) for v in values)
    assert len(set(values)) == len(values)


class SlowStore(MemoryStore):
    """A store whose commit takes a while, as an fsync does."""

    def reserve(self, key_id: str, ceiling: int) -> None:
        import time

        time.sleep(0.01)
        super().reserve(key_id, ceiling)


async def test_concurrent_callers_across_a_reservation_get_distinct_nonces() -> None:
    import asyncio

    source = IncreasingNonces(SlowStore(), "k", unit="counter", block=10)
    values = await asyncio.gather(*(source.next() for _ in range(200)))
    assert len(set(values)) == 200
    assert sorted(values) == list(range(1, 201))
