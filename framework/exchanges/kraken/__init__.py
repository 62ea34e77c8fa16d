"""Kraken spot REST: signer, error translation and the client."""

from framework.exchanges.kraken.client import KrakenClient
from framework.exchanges.kraken.signer import sign
from framework.exchanges.kraken.wire import AddOrderResult, CancelResult, ServerTime

__all__ = ["AddOrderResult", "CancelResult", "KrakenClient", "ServerTime", "sign"]
