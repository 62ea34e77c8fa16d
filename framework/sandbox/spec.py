"""The embedded sandbox registers itself as ``[exchange] name = "sandbox"``: paper trading
against an in-process exchange that speaks Kraken's API, so it takes Kraken's keys."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from framework.exchanges.kraken.spec import KrakenSettings
from framework.registry import ExchangeSpec, register

if TYPE_CHECKING:
    from framework.config import Config


def open_venue(config: Config) -> Any:
    from framework.sandbox.paper import open_venue as opener

    return opener(config)


SPEC = register(ExchangeSpec(name="sandbox", open_venue=open_venue, settings=KrakenSettings))
