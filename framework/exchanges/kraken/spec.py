"""Kraken spot registers itself: ``[exchange] name = "kraken"`` and its own keys."""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from framework.registry import ExchangeSpec, register

if TYPE_CHECKING:
    from framework.config import Config


class KrakenSettings(BaseModel):
    """Kraken's keys in ``[exchange]``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tier: Literal["starter", "intermediate", "pro", "none"] = Field(
        "starter", description="Kraken verification tier whose rate limits the client keeps to"
    )
    order_deadline_s: float = Field(
        5.0, ge=2, le=60, description="Kraken deadline on each order; bounds reconciliation"
    )
    ws_url: str | None = Field(
        None,
        description="Kraken WebSocket v2, public (ticker, book, ohlc); default: Kraken's, or"
        " ws://HOST:PORT/v2 of base_url when base_url is not Kraken's (an orderly sandbox)",
    )
    ws_auth_url: str | None = Field(
        None, description="Kraken WebSocket v2, private (executions); default as ws_url"
    )
    order_entry: Literal["rest", "ws"] = Field(
        "rest",
        description="send orders and cancels by REST through the lane (default), or by"
        " Kraken's WebSocket order methods (no nonce; see the README's trade-offs)",
    )
    pool_keys: int = Field(
        1,
        ge=1,
        le=16,
        description="keys of the account to spread calls over: key 1 is ORDERLY_KRAKEN_API_KEY,"
        " key n ORDERLY_KRAKEN_API_KEY_<n> (and _SECRET_<n>)",
    )


SECRETS = ("ORDERLY_KRAKEN_API_KEY", "ORDERLY_KRAKEN_API_SECRET")
PUBLIC = "https://api.kraken.com"


def check_secret(value: str) -> str | None:
    """A Kraken private key is base64 (of 64 bytes)."""
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return "is not base64, as Kraken's private keys are (copy it again from Kraken)"
    return None


async def listed_pairs(config: Config) -> set[str] | None:
    """Kraken's pairs by every name it takes (``XBTUSD``, ``XXBTZUSD``), from its public
    AssetPairs; None when Kraken cannot be reached."""
    import aiohttp  # here: registering an exchange stays cheap

    url = (config.exchange.base_url or PUBLIC).rstrip("/") + "/0/public/AssetPairs"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http,
            http.get(url) as answer,
        ):
            result = (await answer.json(content_type=None)).get("result") or {}
    except (aiohttp.ClientError, TimeoutError, ValueError, AttributeError):
        return None
    return {str(n) for name, info in result.items() for n in (name, info.get("altname"))}


SPEC = register(
    ExchangeSpec(
        name="kraken",
        venue="framework.exchanges.kraken.venue:open_venue",
        settings=KrakenSettings,
        secrets=SECRETS,
        secret_checks={"ORDERLY_KRAKEN_API_SECRET": check_secret},
        pairs=listed_pairs,
    )
)
