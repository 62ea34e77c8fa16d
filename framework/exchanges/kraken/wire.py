"""Kraken's wire format as pure functions: a private call's body, an order deadline, and an
answer's envelope turned into its ``result`` or a typed error. No I/O, no state.

Bodies are form-encoded by default (the documented signing vector uses that form); a call
whose parameters nest (AddOrderBatch's ``orders``) is sent as JSON, as Kraken's spec shows,
and ``encoding="json"`` sends every call as JSON. The signature covers the exact bytes.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import urlencode

from framework.errors import ExchangeError, TransientError
from framework.exchanges.kraken.errors import translate
from framework.log import get_logger

log = get_logger("framework.exchanges.kraken")

#: Private endpoints that change state: a lost answer is ambiguous, never blindly resent.
MUTATING = frozenset(
    {
        "AddOrder",
        "AddOrderBatch",
        "EditOrder",
        "AmendOrder",
        "CancelOrder",
        "CancelOrderBatch",
        "CancelAll",
        "CancelAllOrdersAfter",
        "Withdraw",
    }
)


def form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _nested(params: Mapping[str, Any]) -> bool:
    return any(isinstance(v, Mapping | list | tuple) for v in params.values())


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot send {type(value).__name__} to Kraken")


def encode(
    params: Mapping[str, Any], nonce: int, encoding: Literal["form", "json"] = "form"
) -> tuple[bytes, str]:
    """The body of a private call and its content type."""
    if encoding == "json" or _nested(params):
        body = json.dumps({"nonce": nonce, **params}, separators=(",", ":"), default=_json_default)
        return body.encode(), "application/json"
    pairs = [("nonce", str(nonce)), *((k, form_value(v)) for k, v in params.items())]
    return urlencode(pairs).encode(), "application/x-www-form-urlencoded"


def deadline(at: float) -> str:
    """Kraken's ``deadline`` (RFC 3339, ms) for the Unix time ``at``."""
    return (
        dt.datetime.fromtimestamp(at, dt.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def parse(endpoint: str, status: int, payload: bytes, *, exchange: str, key_id: str) -> Any:
    """Kraken's ``result`` from an answer, or the typed error it carries. An answer without
    a JSON envelope is transient at HTTP 5xx and otherwise not understood (ExchangeError)."""
    try:
        envelope = json.loads(payload)
    except ValueError:
        envelope = None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("error", []), list):
        cls = TransientError if status >= 500 else ExchangeError
        raise cls(
            f"Kraken {endpoint} answered HTTP {status} without a JSON envelope",
            exchange=exchange,
            code=f"HTTP {status}",
            endpoint=endpoint,
            key_id=key_id,
        )
    errors = [e for e in envelope.get("error", []) if isinstance(e, str)]
    if any(e.startswith("E") for e in errors):
        raise translate(errors, endpoint=endpoint, key_id=key_id, exchange=exchange)
    if errors:
        log.warning("kraken_warning", endpoint=endpoint, key_id=key_id, warnings=errors)
    return envelope.get("result")
