"""At start the bot asks Kraken about its key (GetApiKeyInfo) and checks it against how it
will use it: a windowed lane needs a nonce window; withdraw rights, missing order rights and
a key about to expire are told on the terminal."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from framework.config import load
from framework.errors import ConfigError
from framework.exchanges.kraken import KrakenClient
from framework.exchanges.kraken.key_info import key_report, key_warnings
from framework.nonce import MemoryStore
from framework.runner import Runner
from framework.sandbox import Sandbox
from framework.sandbox.auth import AuthRules, KrakenFailure
from tests.test_runner import write_config

#: The example answer of Kraken's "Get API Key Info" page (a key that may withdraw).
DOCUMENTED = {
    "apiKeyName": "my-api-key",
    "nonce": "1772627060997",
    "nonceWindow": 0,
    "permissions": ["query-funds", "withdraw-funds", "query-open-trades", "modify-trades"],
    "validUntil": "0",
    "ipAllowlist": [],
}
NOW = 1_790_000_000.0


def test_the_documented_example_warns_of_withdraw_rights_only() -> None:
    assert key_warnings(DOCUMENTED, ordering="strict", now=NOW) == [
        "warning: this key may withdraw funds; a trading bot needs no such permission "
        "(Kraken: Settings, API)"
    ]


def test_a_key_without_order_rights_or_about_to_expire_is_told() -> None:
    info = {
        **DOCUMENTED,
        "permissions": ["query-funds", "query-open-trades"],
        "validUntil": str(int(NOW) + 86_400),
    }
    warnings = key_warnings(info, ordering="strict", now=NOW)
    assert len(warnings) == 2
    assert "modify-trades" in warnings[0] and "refuse every order" in warnings[0]
    assert (
        warnings[1]
        == "warning: this key expires at 2026-09-22 14:13 UTC; the bot stops working then"
    )


@pytest.mark.parametrize(("ordering", "window"), [("windowed", 0), ("windowed", "0")])
def test_a_windowed_lane_on_a_key_without_a_nonce_window_does_not_start(
    ordering: str, window: Any
) -> None:
    with pytest.raises(ConfigError, match=r"max_in_flight > 1 needs a key with a nonce window"):
        key_warnings({**DOCUMENTED, "nonceWindow": window}, ordering=ordering, now=NOW)


@pytest.mark.parametrize(("ordering", "window"), [("strict", 0), ("strict", 5), ("windowed", 5)])
def test_any_window_suits_a_strict_lane_and_a_window_suits_a_windowed_one(
    ordering: str, window: int
) -> None:
    info = {**DOCUMENTED, "nonceWindow": window, "permissions": ["modify-trades"]}
    assert key_warnings(info, ordering=ordering, now=NOW) == []


async def test_the_sandbox_answers_with_the_keys_last_nonce_and_window(
    creds: tuple[str, str],
) -> None:
    async with (
        Sandbox(dict([creds]), rules=AuthRules(nonce_window=7)) as sandbox,
        KrakenClient(*creds, sandbox.base_url, store=MemoryStore(), tier=None) as kraken,
    ):
        await kraken.balance()
        info = await kraken.private("GetApiKeyInfo")
        assert int(info["nonce"]) == sandbox.accepted_nonces(creds[0])[-1]
        assert info["nonceWindow"] == 7 and "withdraw-funds" not in info["permissions"]
        assert info["apiKey"] == creds[0] and "secret" not in str(info).lower()
        assert await key_report(kraken) == []  # a sandbox key: nothing to warn of


async def test_an_exchange_that_does_not_know_the_call_is_not_checked(
    creds: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def unknown(self: Any, api_key: str) -> dict[str, Any]:
        raise KrakenFailure("EGeneral:Unknown method")

    monkeypatch.setattr("framework.sandbox.auth.Gatekeeper.key_info", unknown)
    async with (
        Sandbox(dict([creds])) as sandbox,
        KrakenClient(*creds, sandbox.base_url, store=MemoryStore(), tier=None) as kraken,
    ):
        assert await key_report(kraken) == []


async def test_orderly_run_refuses_a_windowed_lane_on_a_key_without_a_window(
    tmp_path: Path, creds: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDERLY_KRAKEN_API_KEY", creds[0])
    monkeypatch.setenv("ORDERLY_KRAKEN_API_SECRET", creds[1])
    config = write_config(tmp_path, "tests.helpers.strategies:Recorder")
    async with Sandbox(dict([creds])) as sandbox:  # Kraken's default: nonce window 0
        kraken = f'name = "kraken"\nbase_url = "{sandbox.base_url}"\ntier = "none"'
        text = config.read_text().replace('name = "sandbox"', kraken)
        config.write_text(text + "[nonce]\nmax_in_flight = 4\n")
        runner = Runner(load(config), out=io.StringIO())
        with pytest.raises(ConfigError, match="nonceWindow is 0"):
            await runner.main(install_signals=False)
        assert not sandbox.engine.orders  # stopped before any order


@pytest.mark.parametrize(
    "odd",
    [
        {"nonceWindow": {}, "permissions": "withdraw-funds", "validUntil": "nan"},
        {"nonceWindow": None, "permissions": [1, None], "validUntil": -(10**15)},
        {"nonceWindow": "1e9", "permissions": None, "validUntil": 10**30},
        {"validUntil": "1"},
        {},
    ],
)
def test_a_hostile_key_info_answer_gives_no_crash(odd: dict[str, Any]) -> None:
    """Whatever the answer holds, the check says what it can and never raises (but the
    ConfigError of a windowed lane on a window of 0)."""
    warnings = key_warnings(odd, ordering="windowed", now=NOW)
    assert all(w.startswith("warning: ") for w in warnings)
