"""Several processes on one API key through Redis (framework/shared.py), against a real
redis-server the tests start and stop themselves."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

from framework.exchanges.kraken.client import KrakenClient
from framework.nonce import SqliteStore
from framework.nonce.history import NonceHistory
from framework.sandbox import Sandbox
from framework.shared import Sharing
from tests.helpers.redis_server import RedisServer


def shared_client(
    creds: tuple[str, str], url: str, state: Path, redis_url: str, **options: Any
) -> KrakenClient:
    state.mkdir(parents=True, exist_ok=True)
    return KrakenClient(
        *creds,
        url,
        store=SqliteStore(state / "nonces.sqlite"),
        history=NonceHistory(state / "history.jsonl"),
        tier=None,
        sharing=Sharing(redis_url, ttl_s=1.0),
        **options,
    )


async def test_two_clients_sharing_nothing_but_redis_never_refuse_a_nonce(
    tmp_path: Path, creds: tuple[str, str], redis_server: RedisServer
) -> None:
    async with Sandbox(dict([creds]), delay_ms=(0, 5), seed=2) as sandbox:
        async with (
            shared_client(creds, sandbox.base_url, tmp_path / "a", redis_server.url) as a,
            shared_client(creds, sandbox.base_url, tmp_path / "b", redis_server.url) as b,
        ):

            async def calls(kraken: KrakenClient) -> None:
                for _ in range(5):
                    await kraken.balance()

            async with asyncio.timeout(30):
                await asyncio.gather(*(calls(k) for k in (a, b) for _ in range(16)))
        (stats,) = sandbox.stats().values()
        nonces = sandbox.accepted_nonces(creds[0])
    assert stats["invalid_nonce"] == 0
    assert all(y > x for x, y in itertools.pairwise(nonces))
    assert len(nonces) >= 160
