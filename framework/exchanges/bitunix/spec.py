"""Bitunix futures registers itself: ``[exchange] name = "bitunix"`` and its own keys."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from framework.registry import ExchangeSpec, register

if TYPE_CHECKING:
    from framework.config import Config


class BitunixSettings(BaseModel):
    """Bitunix's keys in ``[exchange]``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    margin_coin: str = Field("USDT", min_length=1, description="Bitunix futures margin coin")
    position_mode: Literal["one_way", "hedge"] = Field(
        "one_way",
        description="Bitunix: the account's position mode, checked at start; hedge sends"
        " tradeSide OPEN on every order",
    )


PUBLIC = "https://fapi.bitunix.com"


async def listed_pairs(config: Config) -> set[str] | None:
    """Bitunix's futures symbols, from its public trading_pairs; None when unreachable."""
    import aiohttp  # here: registering an exchange stays cheap

    base = (config.exchange.base_url or PUBLIC).rstrip("/")
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http,
            http.get(base + "/api/v1/futures/market/trading_pairs") as answer,
        ):
            data = (await answer.json(content_type=None)).get("data") or []
    except (aiohttp.ClientError, TimeoutError, ValueError, AttributeError):
        return None
    return {str(p.get("symbol")) for p in data if isinstance(p, dict)}


SPEC = register(
    ExchangeSpec(
        name="bitunix",
        venue="framework.exchanges.bitunix.venue:open_venue",
        settings=BitunixSettings,
        secrets=("ORDERLY_BITUNIX_API_KEY", "ORDERLY_BITUNIX_API_SECRET"),
        pairs=listed_pairs,
    )
)
