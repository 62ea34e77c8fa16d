"""Exchanges by the name used in ``[exchange] name``.

The core never imports an exchange package: each entry is a dotted path to an
``open_venue(config)`` async context manager, imported only when that exchange is used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import cast

from framework.config import Config
from framework.errors import ConfigError
from framework.venue import Venue

VenueOpener = Callable[[Config], AbstractAsyncContextManager[Venue]]

VENUES: dict[str, str] = {
    "sandbox": "framework.sandbox.paper:open_venue",
    "kraken": "framework.exchanges.kraken.venue:open_venue",
    "bitunix": "framework.exchanges.bitunix.venue:open_venue",
    "synthetix": "framework.exchanges.synthetix.venue:open_venue",
}
#: The secrets each exchange reads (environment, .env or ``[exchange].secrets_file``).
SECRETS: dict[str, tuple[str, ...]] = {
    "kraken": ("ORDERLY_KRAKEN_API_KEY", "ORDERLY_KRAKEN_API_SECRET"),
    "bitunix": ("ORDERLY_BITUNIX_API_KEY", "ORDERLY_BITUNIX_API_SECRET"),
    "synthetix": ("ORDERLY_SYNTHETIX_PRIVATE_KEY",),
}


def venue_opener(name: str) -> VenueOpener:
    if name not in VENUES:
        raise ConfigError(
            f"exchange.name: unknown exchange {name!r}; known: {', '.join(sorted(VENUES))}"
        )
    module, _, attribute = VENUES[name].partition(":")
    return cast(VenueOpener, getattr(importlib.import_module(module), attribute))
