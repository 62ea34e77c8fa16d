"""``fakex``: a Kraken-compatible exchange (it speaks the sandbox's API) with its own name,
config keys and secret names, registered from outside the framework."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from framework.config import Config
from framework.exchanges.base import history_from
from framework.exchanges.kraken.client import KrakenClient
from framework.exchanges.kraken.venue import KrakenVenue
from framework.nonce import SqliteStore
from framework.registry import ExchangeSpec, register, settings_of

NAME = "fakex"
SECRETS = ("ORDERLY_FAKEX_KEY", "ORDERLY_FAKEX_SECRET")


class FakexSettings(BaseModel):
    """fakex's own keys in ``[exchange]``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    desk: str = Field(min_length=1, description="which desk the key belongs to (required)")
    order_deadline_s: float = Field(5.0, ge=2, le=60)


class FakexClient(KrakenClient):
    exchange = NAME  # its errors and logs say fakex


@contextlib.asynccontextmanager
async def open_venue(config: Config) -> AsyncIterator[Any]:
    settings = settings_of(config, FakexSettings)
    if config.exchange.base_url is None:
        raise ValueError("fakex has no public URL: set [exchange] base_url")
    store, history = SqliteStore(config.state.store), history_from(config)
    client = FakexClient(
        *(config.secret(name) for name in SECRETS),
        config.exchange.base_url,
        store=store,
        history=history,
        tier=None,
        order_deadline_s=settings.order_deadline_s,
    )
    try:
        async with client:
            yield KrakenVenue(client, NAME)
    finally:
        history.close()
        store.close()


SPEC = register(ExchangeSpec(name=NAME, venue=open_venue, settings=FakexSettings, secrets=SECRETS))
