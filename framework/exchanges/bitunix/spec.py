"""Bitunix futures registers itself: ``[exchange] name = "bitunix"`` and its own keys."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from framework.registry import ExchangeSpec, register

if TYPE_CHECKING:
    from framework.config import Config


class BitunixSettings(BaseModel):
    """Bitunix's keys in ``[exchange]``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    margin_coin: str = Field("USDT", min_length=1, description="Bitunix futures margin coin")


def open_venue(config: Config) -> Any:
    from framework.exchanges.bitunix.venue import open_venue as opener

    return opener(config)


SPEC = register(
    ExchangeSpec(
        name="bitunix",
        open_venue=open_venue,
        settings=BitunixSettings,
        secrets=("ORDERLY_BITUNIX_API_KEY", "ORDERLY_BITUNIX_API_SECRET"),
    )
)
