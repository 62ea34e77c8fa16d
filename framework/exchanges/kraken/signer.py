"""Kraken's API-Sign: base64(HMAC-SHA512(base64decode(secret), path + SHA256(nonce + body))).

``body`` is the exact bytes sent (form-encoded or JSON); the nonce's decimal text is prepended
to it even though the body also carries the nonce. ``path`` is ``/0/private/<Method>``.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac


@functools.lru_cache(maxsize=16)
def _key(secret_b64: str) -> bytes:
    """The HMAC key, decoded once per secret rather than on every call."""
    return base64.b64decode(secret_b64)


def sign(path: str, nonce: int, body: bytes, secret_b64: str) -> str:
    """The API-Sign header value for one private call."""
    inner = hashlib.sha256(str(nonce).encode() + body).digest()
    mac = hmac.new(_key(secret_b64), path.encode() + inner, hashlib.sha512)
    return base64.b64encode(mac.digest()).decode()
