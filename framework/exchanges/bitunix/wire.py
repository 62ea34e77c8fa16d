"""Bitunix's wire format as pure functions: compact JSON bodies, and an answer's envelope
turned into its ``data`` or a typed error. No I/O, no state."""

from __future__ import annotations

import json
from typing import Any

from framework.errors import ExchangeError, TransientError
from framework.exchanges.bitunix.errors import EXCHANGE, translate

#: POST endpoints that change state: a lost answer is ambiguous, never blindly resent.
MUTATING = frozenset(
    {"place_order", "batch_order", "cancel_orders", "cancel_all_orders", "modify_order"}
)


def compact(data: Any) -> str:
    """JSON without spaces: the exact text that is signed and sent."""
    return json.dumps(data, separators=(",", ":"), default=str)


def parse(name: str, status: int, payload: bytes, *, key_id: str) -> Any:
    """Bitunix's ``data`` from an answer, or the typed error its ``code`` carries. An answer
    without the envelope is transient at HTTP 5xx and otherwise not understood."""
    try:
        envelope = json.loads(payload)
    except ValueError:
        envelope = None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("code"), int):
        cls = TransientError if status >= 500 else ExchangeError
        raise cls(
            f"Bitunix {name} answered HTTP {status} without its envelope",
            exchange=EXCHANGE,
            code=f"HTTP {status}",
            endpoint=name,
            key_id=key_id,
        )
    if envelope["code"] != 0:
        raise translate(
            envelope["code"], str(envelope.get("msg", "")), endpoint=name, key_id=key_id
        )
    return envelope.get("data")
