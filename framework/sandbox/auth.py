"""The sandbox's gatekeeper: Kraken's private-call authentication and nonce rules.

In the order Kraken applies them (protocols.md, "What a conformance mock server must enforce"):

1. a key in temporary lockout gets ``EGeneral:Temporary lockout``;
2. a missing or unknown ``API-Key`` gets ``EAPI:Invalid key``;
3. a body (form or JSON) without ``nonce`` gets ``EGeneral:Invalid arguments``;
4. ``API-Sign`` is recomputed over the raw body bytes; a mismatch gets ``EAPI:Invalid signature``;
5. (optional random delay, to model network reordering)
6. the nonce must exceed the last accepted one for the key, or, with a nonce window ``W``,
   lie above ``last - W`` and not have been accepted before; else ``EAPI:Invalid nonce``.

Consecutive failures of 2, 4 and 6 for a key count towards the lockout threshold; an
accepted call resets the count.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from framework.clock import Clock
from framework.sandbox.kraken_rules import api_sign as kraken_signature


class KrakenFailure(Exception):
    """A Kraken error string to send back in the envelope."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


SANDBOX_PERMISSIONS = (
    "query-funds",
    "query-open-trades",
    "query-closed-trades",
    "modify-trades",
    "close-trades",
)


@dataclass(slots=True)
class KeyNonces:
    """Per-key state of the gatekeeper."""

    last: int = 0
    recent: set[int] = field(default_factory=set)
    failures_in_a_row: int = 0
    locked_until: float = 0.0
    accepted: int = 0
    invalid_nonce: int = 0
    invalid_signature: int = 0
    locked_out: int = 0
    accepted_nonces: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class AuthRules:
    """How strict the gatekeeper is. Every value is a sandbox setting, not a Kraken fact."""

    nonce_window: int = 0
    #: Kraken does not say whether an exact repeat inside the window passes; we refuse it.
    repeat_in_window: bool = False
    lockout_threshold: int = 10
    lockout_seconds: float = 900.0
    record_nonces: bool = True


def parse_body(raw: bytes, content_type: str) -> dict[str, Any]:
    """The body as a dict, from JSON (by content type, or a body that starts with ``{``) or
    form encoding."""
    if "json" in content_type or ("form" not in content_type and raw.lstrip().startswith(b"{")):
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            raise KrakenFailure("EGeneral:Invalid arguments:body is not JSON") from None
        if not isinstance(data, dict):
            raise KrakenFailure("EGeneral:Invalid arguments:body is not an object")
        return data
    return dict(parse_qsl(raw.decode(errors="replace"), keep_blank_values=True))


class Gatekeeper:
    """Checks keys, signatures and nonces for the sandbox."""

    def __init__(self, accounts: dict[str, str], rules: AuthRules, clock: Clock) -> None:
        self.accounts = accounts  # API key -> base64 secret
        self.rules = rules
        self.clock = clock
        self.keys: dict[str, KeyNonces] = {}
        self.by_ip: dict[str, KeyNonces] = {}

    def key_info(self, api_key: str) -> dict[str, Any]:
        """Kraken's ``GetApiKeyInfo`` result for ``api_key`` (docs.kraken.com, Get API Key
        Info): its highest accepted nonce, nonce window and permissions. The sandbox key may
        trade but not withdraw; "query-funds", "query-open-trades", "modify-trades" and
        "withdraw-funds" are the documented names, "query-closed-trades" and "close-trades"
        are the sandbox's guess for the other two a bot needs."""
        state = self.state(api_key)
        stamp = str(self.clock.wall_ns() // 1_000_000_000)
        return {
            "apiKeyName": "orderly-sandbox",
            "apiKey": api_key,
            "nonce": str(state.last),
            "nonceWindow": self.rules.nonce_window,
            "permissions": list(SANDBOX_PERMISSIONS),
            "iban": "AA00 SAND BOXX 0000",
            "validUntil": "0",
            "queryFrom": "0",
            "queryTo": "0",
            "createdTime": stamp,
            "modifiedTime": stamp,
            "ipAllowlist": [],
            "lastUsed": stamp,
        }

    def state(self, api_key: str) -> KeyNonces:
        state = self.keys.get(api_key)
        if state is None:
            state = self.keys[api_key] = KeyNonces()
        return state

    def _fail(self, state: KeyNonces, error: str) -> KrakenFailure:
        state.failures_in_a_row += 1
        if state.failures_in_a_row >= self.rules.lockout_threshold:
            state.locked_until = self.clock.monotonic() + self.rules.lockout_seconds
            state.failures_in_a_row = 0
        return KrakenFailure(error)

    def _check_lockout(self, state: KeyNonces) -> None:
        if state.locked_until > self.clock.monotonic():
            state.locked_out += 1
            raise KrakenFailure("EGeneral:Temporary lockout")

    def authenticate(
        self,
        path: str,
        api_key: str | None,
        api_sign: str | None,
        raw: bytes,
        content_type: str,
        remote: str = "-",
    ) -> tuple[KeyNonces, int, dict[str, Any]]:
        """Steps 1-4: the key's state, the nonce and the parsed body; raises KrakenFailure.

        Invalid keys are counted per remote address, everything else per key."""
        by_ip = self.by_ip.setdefault(remote, KeyNonces())
        self._check_lockout(by_ip)
        if not api_key or api_key not in self.accounts:
            raise self._fail(by_ip, "EAPI:Invalid key")
        by_ip.failures_in_a_row = 0
        state = self.state(api_key)
        self._check_lockout(state)
        body = parse_body(raw, content_type)
        try:
            nonce = int(str(body["nonce"]))
        except (KeyError, ValueError):
            raise KrakenFailure("EGeneral:Invalid arguments:nonce") from None
        if not 0 < nonce < 2**64:
            raise KrakenFailure("EGeneral:Invalid arguments:nonce")
        expected = kraken_signature(path, str(body["nonce"]), raw, self.accounts[api_key])
        if not api_sign or not hmac.compare_digest(expected, api_sign):
            state.invalid_signature += 1
            raise self._fail(state, "EAPI:Invalid signature")
        return state, nonce, body

    def check_nonce(self, state: KeyNonces, nonce: int) -> None:
        """Step 6, atomic within the event loop: accept and record, or raise."""
        window = self.rules.nonce_window
        if nonce > state.last:
            state.last = nonce
        elif (
            window > 0
            and nonce > state.last - window
            and (self.rules.repeat_in_window or nonce not in state.recent)
        ):
            pass
        else:
            state.invalid_nonce += 1
            raise self._fail(state, "EAPI:Invalid nonce")
        if window > 0:
            state.recent.add(nonce)
            if len(state.recent) > 4096:
                state.recent = {n for n in state.recent if n > state.last - window}
        state.failures_in_a_row = 0
        state.accepted += 1
        if self.rules.record_nonces:
            state.accepted_nonces.append(nonce)
