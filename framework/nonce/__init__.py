"""Nonce sources, stores and history."""

from framework.nonce.history import NonceHistory
from framework.nonce.source import IncreasingNonces, NonceSource, RandomNonces
from framework.nonce.store import MemoryStore, NonceStore, SqliteStore

__all__ = [
    "IncreasingNonces",
    "MemoryStore",
    "NonceHistory",
    "NonceSource",
    "NonceStore",
    "RandomNonces",
    "SqliteStore",
]
