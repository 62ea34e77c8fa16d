"""Bitunix's signature: two rounds of SHA-256, lowercase hex, no HMAC.

    digest = sha256hex(nonce + timestamp + api_key + query + body)
    sign   = sha256hex(digest + secret)

``query`` is every parameter sorted by key (ASCII), written ``key + value`` with no
separators, leaving out empty values (the official Java demo does); ``body`` is the exact
JSON text sent (compact), or "" for a GET.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any


def query_string(params: Mapping[str, Any]) -> str:
    return "".join(f"{k}{v}" for k, v in sorted(params.items()) if v is not None and v != "")


def sign(
    *, nonce: str, timestamp: str, api_key: str, query: Mapping[str, Any], body: str, secret: str
) -> str:
    digest = hashlib.sha256(f"{nonce}{timestamp}{api_key}{query_string(query)}{body}".encode())
    return hashlib.sha256((digest.hexdigest() + secret).encode()).hexdigest()
