"""Kraken spot registers itself: ``[exchange] name = "kraken"`` and its own keys."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from framework.registry import ExchangeSpec, register


class KrakenSettings(BaseModel):
    """Kraken's keys in ``[exchange]``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tier: Literal["starter", "intermediate", "pro", "none"] = Field(
        "starter", description="Kraken verification tier whose rate limits the client keeps to"
    )
    order_deadline_s: float = Field(
        5.0, ge=2, le=60, description="Kraken deadline on each order; bounds reconciliation"
    )


SECRETS = ("ORDERLY_KRAKEN_API_KEY", "ORDERLY_KRAKEN_API_SECRET")


SPEC = register(
    ExchangeSpec(
        name="kraken",
        venue="framework.exchanges.kraken.venue:open_venue",
        settings=KrakenSettings,
        secrets=SECRETS,
    )
)
