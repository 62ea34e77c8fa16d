"""The contract every exchange client passes, against its conformance server over real HTTP:
signed round trip, ordering under 64 coroutines with server-side jitter, typed refusals,
duplicate client order ids, batch split with per-order results, secrets kept out."""

from __future__ import annotations

import asyncio
import io
import itertools
import math
from pathlib import Path

import pytest

from framework import log
from framework.errors import AuthError, OrderlyError, OrderRejected
from tests.contract.harness import HARNESSES, Harness


@pytest.fixture(params=HARNESSES, ids=[h.name for h in HARNESSES])
def exchange(request: pytest.FixtureRequest) -> Harness:
    harness: Harness = request.param
    return harness


async def test_signed_round_trip(exchange: Harness, tmp_path: Path) -> None:
    async with exchange.session(tmp_path) as session:
        assert await session.read() is not None
        assert session.calls() == len(session.nonces()) >= 1


async def test_ordering_under_64_coroutines_with_jitter(exchange: Harness, tmp_path: Path) -> None:
    async with exchange.session(tmp_path, jitter=(0, 5)) as session:

        async def producer() -> None:
            for _ in range(3):
                await session.read()

        await asyncio.gather(*(producer() for _ in range(64)))
        nonces = session.nonces()
        assert session.nonce_refusals() == 0
    assert len(nonces) >= 192 and len(set(nonces)) == len(nonces)  # none reused
    if exchange.ordered:
        assert all(b > a for a, b in itertools.pairwise(nonces))  # type: ignore[operator]


async def test_refusals_are_typed(exchange: Harness, tmp_path: Path) -> None:
    async with exchange.session(tmp_path, wrong_secret=True) as session:
        with pytest.raises(AuthError) as refused:
            await session.read()
    assert refused.value.exchange == exchange.name and refused.value.code


async def test_duplicate_client_order_id(exchange: Harness, tmp_path: Path) -> None:
    async with exchange.session(tmp_path) as session:
        (first,) = await session.place(["dup-1"])
        (second,) = await session.place(["dup-1"])
    assert not isinstance(first, OrderlyError)
    assert isinstance(second, OrderRejected) and second.exchange == exchange.name


async def test_batch_split_and_per_order_results(exchange: Harness, tmp_path: Path) -> None:
    size = 2 * (exchange.max_batch or 10) + 3
    ids = [f"b{i}" for i in range(size)]
    ids[size - 2] = "b1"  # a duplicate of an earlier one: refused alone
    async with exchange.session(tmp_path) as session:
        before = session.calls()
        results = await session.place(ids)
        calls = session.calls() - before
    expected_calls = math.ceil(size / exchange.max_batch) if exchange.max_batch else 1
    assert calls == expected_calls
    assert len(results) == size
    assert isinstance(results[size - 2], OrderRejected)
    assert all(not isinstance(r, OrderlyError) for i, r in enumerate(results) if i != size - 2)


async def test_secrets_stay_out_of_logs_reprs_and_errors(exchange: Harness, tmp_path: Path) -> None:
    stream = io.StringIO()
    log.configure("debug", stream=stream, json=True)
    texts: list[str] = []
    for wrong in (False, True):
        async with exchange.session(tmp_path / str(wrong), wrong_secret=wrong) as session:
            try:
                await session.read()
                await session.place(["s-1", "s-1"])
            except OrderlyError as exc:
                texts += [str(exc), repr(exc)]
            texts.append(repr(session.client))
    texts.append(stream.getvalue())
    assert "nonce_assigned" in stream.getvalue()
    for secret in exchange.secrets:
        assert all(secret not in text for text in texts)
