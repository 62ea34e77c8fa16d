"""Kraken spot REST: signer, error translation and the client."""

from framework.exchanges.kraken.client import (
    AddOrderResult,
    CancelResult,
    KrakenClient,
    ServerTime,
)
from framework.exchanges.kraken.signer import sign

__all__ = ["AddOrderResult", "CancelResult", "KrakenClient", "ServerTime", "sign"]
