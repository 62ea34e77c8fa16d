"""Orderly: an asyncio trading-bot framework built around an ordered, crash-safe nonce manager."""

from framework.dispatch import Lane, PrivateCall
from framework.errors import (
    AmbiguousOutcome,
    AuthError,
    ConfigError,
    ExchangeError,
    InsufficientFunds,
    InvalidRequest,
    LaneClosed,
    LanePaused,
    LockedOut,
    NonceError,
    NonceExhausted,
    NonceUnitError,
    OrderlyError,
    OrderRejected,
    RateLimited,
    StoreLocked,
    TransientError,
)
from framework.secret import Secret

__all__ = [
    "AmbiguousOutcome",
    "AuthError",
    "ConfigError",
    "ExchangeError",
    "InsufficientFunds",
    "InvalidRequest",
    "Lane",
    "LaneClosed",
    "LanePaused",
    "LockedOut",
    "NonceError",
    "NonceExhausted",
    "NonceUnitError",
    "OrderRejected",
    "OrderlyError",
    "PrivateCall",
    "RateLimited",
    "Secret",
    "StoreLocked",
    "TransientError",
]
