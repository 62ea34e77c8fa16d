"""The lane's breaker outlives its process, and a strict lane whose nonces are refused says
that someone else is using the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from framework.errors import AuthError, LanePaused, NonceError
from framework.nonce import SqliteStore
from framework.sandbox import Sandbox
from framework.sandbox.auth import AuthRules
from tests.helpers.kraken import client


async def test_ten_restarts_against_a_refusing_key_never_reach_the_lockout(
    tmp_path: Path, creds: tuple[str, str]
) -> None:
    """The secret is wrong: every call is refused. Each process makes three calls; without
    a breaker that outlives it, ten of them give the exchange 30 refusals in a row, past its
    lockout threshold of 10."""
    key, _ = creds
    outcomes: list[str] = []
    async with Sandbox(dict([creds]), rules=AuthRules(lockout_threshold=10)) as sandbox:
        for _ in range(10):
            store = SqliteStore(tmp_path / "nonces.sqlite")
            async with client(key, "A" * 88, sandbox.base_url, store=store) as wrong:
                for _ in range(3):
                    try:
                        await wrong.balance()
                    except LanePaused:
                        outcomes.append("paused")
                    except AuthError:
                        outcomes.append("refused")
            store.close()
        (stats,) = sandbox.stats().values()
    assert outcomes[:3] == ["refused"] * 3 and set(outcomes[3:]) == {"paused"}
    assert stats["invalid_signature"] == 3 and stats["locked_out"] == 0


async def test_two_stores_on_one_key_are_named_in_the_first_pause(
    tmp_path: Path, creds: tuple[str, str]
) -> None:
    """Two processes (here two clients, each with its own store) send on one key: the
    exchange refuses the one behind; its strict lane knows its own nonces only go up."""
    key, secret = creds
    async with Sandbox(dict([creds])) as sandbox:
        stores = [SqliteStore(tmp_path / f"{name}.sqlite") for name in ("a", "b")]
        async with client(
            key, secret, sandbox.base_url, store=stores[0], nonce_unit="counter"
        ) as a:
            for _ in range(10):
                await a.balance()
        async with client(
            key, secret, sandbox.base_url, store=stores[1], nonce_unit="counter"
        ) as b:
            with pytest.raises(NonceError):
                await b.balance()  # three nonces refused in a row: the breaker trips
            with pytest.raises(LanePaused) as paused:
                await b.balance()
        for store in stores:
            store.close()
    assert "another process or program may be using this key" in str(paused.value)
    assert "[state].store" in str(paused.value)
