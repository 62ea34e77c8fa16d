"""Bitunix futures REST: double SHA-256 signer, error translation and the client."""

from framework.exchanges.bitunix.client import BitunixClient
from framework.exchanges.bitunix.signer import query_string, sign

__all__ = ["BitunixClient", "query_string", "sign"]
