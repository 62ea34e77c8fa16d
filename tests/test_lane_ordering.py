"""The promise of the lane, over real HTTP against the sandbox with random server delays:
a strict lane never gets a nonce refused, whatever the number of producers; a windowed lane
against a server window neither; a plain client without the lane does."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framework.sandbox import AuthRules, Sandbox, generate_credentials
from tests.helpers.kraken import client, plain_client_burst, producers


def increasing(values: list[int]) -> bool:
    return all(b > a for a, b in itertools.pairwise(values))


@pytest.mark.parametrize("count", [1, 16, 64])
async def test_strict_lane_gets_zero_rejections(count: int, creds: tuple[str, str]) -> None:
    key, secret = creds
    async with Sandbox({key: secret}, delay_ms=(0, 5), seed=count) as sandbox:
        async with client(key, secret, sandbox.base_url) as kraken:
            results = await producers(kraken, count, calls_each=4)
        stats = sandbox.stats()[kraken.key_id]
        assert stats["invalid_nonce"] == 0
        assert stats["accepted"] == count * 4 == sum(len(r) for r in results)
        assert increasing(sandbox.accepted_nonces(key))


async def _strict_run(count: int, calls_each: int, delay_hi: float, seed: int) -> dict[str, int]:
    key, secret = generate_credentials()
    async with Sandbox({key: secret}, delay_ms=(0, delay_hi), seed=seed) as sandbox:
        async with client(key, secret, sandbox.base_url) as kraken:
            await producers(kraken, count, calls_each)
        assert increasing(sandbox.accepted_nonces(key))
        stats: dict[str, int] = sandbox.stats()[kraken.key_id]
        return stats


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    count=st.integers(min_value=1, max_value=64),
    calls_each=st.integers(min_value=1, max_value=3),
    delay_hi=st.floats(min_value=0.0, max_value=5.0),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_strict_lane_property(count: int, calls_each: int, delay_hi: float, seed: int) -> None:
    stats = asyncio.run(_strict_run(count, calls_each, delay_hi, seed))
    assert stats["invalid_nonce"] == 0
    assert stats["accepted"] == count * calls_each


async def test_windowed_lane_within_server_window_gets_zero_rejections(
    creds: tuple[str, str],
) -> None:
    key, secret = creds
    rules = AuthRules(nonce_window=10_000)  # 10 s in ms nonces, as Kraken suggests
    async with Sandbox({key: secret}, rules=rules, delay_ms=(0, 5), seed=7) as sandbox:
        async with client(key, secret, sandbox.base_url, max_in_flight=8) as kraken:
            assert kraken.lane.ordering == "windowed"
            await producers(kraken, 64, calls_each=4)
        stats = sandbox.stats()[kraken.key_id]
        assert stats["invalid_nonce"] == 0 and stats["accepted"] == 256
        # the window was really used: some nonces arrived below an earlier one
        assert not increasing(sandbox.accepted_nonces(key))


async def test_windowed_lane_without_server_window_is_refused(creds: tuple[str, str]) -> None:
    """The same windowed lane against a key with no window: the test above can fail."""
    key, secret = creds
    async with Sandbox({key: secret}, delay_ms=(0, 5), seed=7) as sandbox:
        async with client(
            key,
            secret,
            sandbox.base_url,
            max_in_flight=8,
            nonce_retries=5,
            breaker_threshold=10_000,
        ) as kraken:
            await asyncio.gather(
                *(producers(kraken, 8, 4) for _ in range(4)), return_exceptions=True
            )
        assert sandbox.stats()[kraken.key_id]["invalid_nonce"] > 0


@pytest.mark.parametrize("count", [16, 64])
async def test_plain_client_without_lane_gets_rejections(
    count: int, creds: tuple[str, str]
) -> None:
    key, secret = creds
    async with Sandbox({key: secret}, delay_ms=(0, 5), seed=count) as sandbox:
        errors = await plain_client_burst(key, secret, sandbox.base_url, count, calls_each=4)
        refused = [e for per in errors for e in per]
        assert refused and set(refused) <= {"EAPI:Invalid nonce", "EGeneral:Temporary lockout"}
        assert sandbox.stats()[next(iter(sandbox.stats()))]["invalid_nonce"] > 0
