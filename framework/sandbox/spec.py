"""The embedded sandbox registers itself as ``[exchange] name = "sandbox"``: paper trading
against an in-process exchange that speaks Kraken's API, so it takes Kraken's keys."""

from __future__ import annotations

from framework.exchanges.kraken.spec import KrakenSettings
from framework.registry import ExchangeSpec, register

SPEC = register(
    ExchangeSpec(
        name="sandbox", venue="framework.sandbox.paper:open_venue", settings=KrakenSettings
    )
)
