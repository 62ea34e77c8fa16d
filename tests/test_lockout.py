"""The lockout guard: repeated auth refusals pause the lane before the exchange locks the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from framework.cli import main as orderly
from framework.clock import ManualClock
from framework.errors import AuthError, LanePaused, LockedOut, NonceError
from framework.nonce import NonceHistory
from framework.sandbox import AuthRules, Sandbox
from tests.helpers.kraken import client


async def test_refused_nonces_pause_the_lane_before_the_lockout(
    tmp_path: Path, creds: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    key, secret = creds
    history = NonceHistory(tmp_path / "h.jsonl")
    clock = ManualClock(wall_ns=1_800_000_000 * 10**9)
    rules = AuthRules(lockout_threshold=4)
    async with Sandbox({key: secret}, rules=rules) as sandbox:
        sandbox.gate.state(key).last = 2**63  # the exchange has seen a huge nonce: all refused
        async with client(
            key, secret, sandbox.base_url, history=history, clock=clock, breaker_cooldown=30
        ) as kraken:
            with pytest.raises(NonceError):
                await kraken.balance()  # first try + 2 fresh-nonce retries = 3 refusals
            with pytest.raises(LanePaused) as paused:
                await kraken.balance()  # fails at once: nothing sent
            assert paused.value.resume_in == pytest.approx(30)
            stats = sandbox.stats()[kraken.key_id]
            assert stats["invalid_nonce"] == 3 and stats["locked_out"] == 0
            sandbox.gate.state(key).last = 0  # the exchange recovers
            clock.advance(31)
            assert await kraken.balance()  # and so does the lane, after its cool-down
            assert kraken.lane.stats.paused == 1
    history.close()
    assert orderly(["nonces", "check", "--file", str(tmp_path / "h.jsonl")]) == 0
    out = capsys.readouterr().out
    assert "lane paused" in out and "3 refusals (EAPI:Invalid nonce)" in out


async def test_bad_signatures_pause_the_lane_before_the_lockout(creds: tuple[str, str]) -> None:
    key, secret = creds
    async with Sandbox({key: secret}, rules=AuthRules(lockout_threshold=4)) as sandbox:
        async with client(key, "A" * 88, sandbox.base_url) as kraken:
            for _ in range(3):
                with pytest.raises(AuthError, match="Invalid signature"):
                    await kraken.balance()
            for _ in range(5):
                with pytest.raises(LanePaused):
                    await kraken.balance()
        stats = sandbox.stats()[kraken.key_id]
    assert stats["invalid_signature"] == 3 and stats["locked_out"] == 0


async def test_a_lockout_answer_pauses_at_once(creds: tuple[str, str]) -> None:
    key, secret = creds
    async with Sandbox({key: secret}) as sandbox:
        sandbox.gate.state(key).locked_until = float("inf")
        async with client(key, secret, sandbox.base_url) as kraken:
            with pytest.raises(LockedOut):
                await kraken.balance()
            with pytest.raises(LanePaused):
                await kraken.balance()
        assert sandbox.stats()[kraken.key_id]["locked_out"] == 1
