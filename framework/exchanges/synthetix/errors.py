"""Synthetix error envelopes, translated to Orderly's exception tree. The only place read.

``{"status": "error", "error": {"code", "message", "details"}}``. Codes seen in the docs:
``UNAUTHORIZED`` (bad signature), ``VALIDATION_ERROR`` (with messages such as "Nonce already
used", "Invalid nonce", "Nonce must be greater", "Signature expired"); HTTP 429 is the rate
limit, 5xx the service.
"""

from __future__ import annotations

from typing import Any

from framework.errors import (
    AuthError,
    ExchangeError,
    InsufficientFunds,
    InvalidRequest,
    NonceError,
    OrderlyError,
    OrderRejected,
    RateLimited,
    TransientError,
)

EXCHANGE = "synthetix"
#: Messages (lower case, by prefix) that mean the nonce was refused: nothing ran.
NONCE_MESSAGES = ("nonce already used", "invalid nonce", "nonce must be greater")
CODES: dict[str, type[OrderlyError]] = {
    "UNAUTHORIZED": AuthError,
    "FORBIDDEN": AuthError,
    "RATE_LIMITED": RateLimited,
    "RATE_LIMIT_EXCEEDED": RateLimited,
    "INSUFFICIENT_MARGIN": InsufficientFunds,
    "NOT_FOUND": OrderRejected,
    "VALIDATION_ERROR": InvalidRequest,
    "INTERNAL_ERROR": TransientError,
    "SERVICE_UNAVAILABLE": TransientError,
}


def translate(
    status: int, error: dict[str, Any], *, endpoint: str, key_id: str | None
) -> OrderlyError:
    code = str(error.get("code", ""))
    message = str(error.get("message", ""))
    if message.lower().startswith(NONCE_MESSAGES):
        cls: type[OrderlyError] = NonceError
    elif message.lower().startswith("signature expired"):
        cls = TransientError  # refused as stale: nothing ran
    elif code in CODES:
        cls = CODES[code]
    elif status == 429:
        cls = RateLimited
    elif status >= 500:
        cls = TransientError
    else:
        cls = ExchangeError
    return cls(
        f"Synthetix refused {endpoint}: {code} {message}",
        exchange=EXCHANGE,
        code=code or f"HTTP {status}",
        endpoint=endpoint,
        key_id=key_id,
    )
