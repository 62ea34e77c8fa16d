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
    UsageError,
)
from framework.events import Fill, OrderState, OrderUpdate, Started, Stopping, Ticker
from framework.orders import LimitOrder, MarketOrder
from framework.secret import Secret
from framework.strategy import Context, Strategy

__all__ = [
    "AmbiguousOutcome",
    "AuthError",
    "ConfigError",
    "Context",
    "ExchangeError",
    "Fill",
    "InsufficientFunds",
    "InvalidRequest",
    "Lane",
    "LaneClosed",
    "LanePaused",
    "LimitOrder",
    "LockedOut",
    "MarketOrder",
    "NonceError",
    "NonceExhausted",
    "NonceUnitError",
    "OrderRejected",
    "OrderState",
    "OrderUpdate",
    "OrderlyError",
    "PrivateCall",
    "RateLimited",
    "Secret",
    "Started",
    "Stopping",
    "StoreLocked",
    "Strategy",
    "Ticker",
    "TransientError",
    "UsageError",
]
