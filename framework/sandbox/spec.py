"""The embedded sandbox registers itself as ``[exchange] name = "sandbox"``: paper trading
against an in-process exchange that speaks Kraken's API, so it takes Kraken's keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

from framework.exchanges.kraken.spec import KrakenSettings
from framework.registry import ExchangeSpec, register

if TYPE_CHECKING:
    from framework.config import Config


async def listed_pairs(config: Config) -> set[str]:
    """The sandbox's own pairs, by every name it takes."""
    from framework.sandbox.market import ALIASES

    return set(ALIASES)


SPEC = register(
    ExchangeSpec(
        name="sandbox",
        venue="framework.sandbox.paper:open_venue",
        settings=KrakenSettings,
        pairs=listed_pairs,
    )
)
