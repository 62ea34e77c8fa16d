"""Bitunix futures registers itself: ``[exchange] name = "bitunix"`` and its own keys."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from framework.registry import ExchangeSpec, register


class BitunixSettings(BaseModel):
    """Bitunix's keys in ``[exchange]``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    margin_coin: str = Field("USDT", min_length=1, description="Bitunix futures margin coin")
    position_mode: Literal["one_way", "hedge"] = Field(
        "one_way",
        description="Bitunix: the account's position mode, checked at start; hedge sends"
        " tradeSide OPEN on every order",
    )


SPEC = register(
    ExchangeSpec(
        name="bitunix",
        venue="framework.exchanges.bitunix.venue:open_venue",
        settings=BitunixSettings,
        secrets=("ORDERLY_BITUNIX_API_KEY", "ORDERLY_BITUNIX_API_SECRET"),
    )
)
