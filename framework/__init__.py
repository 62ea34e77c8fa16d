"""Orderly: an asyncio trading-bot framework built around an ordered, crash-safe nonce manager."""

# Names are imported on first use (PEP 562), so ``orderly --help`` and a bare
# ``import framework`` stay fast; type checkers see the real imports.
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from framework.call import PrivateCall
    from framework.dispatch import Lane
    from framework.errors import (
        AmbiguousOutcome,
        AuthError,
        ConfigError,
        ExchangeError,
        InsufficientFunds,
        InvalidArguments,
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
    from framework.events import (
        BookTop,
        Candle,
        Fill,
        OrderState,
        OrderUpdate,
        Started,
        Stopping,
        Ticker,
    )
    from framework.market import Market
    from framework.orders import LimitOrder, MarketOrder
    from framework.secret import Secret
    from framework.strategy import Context, Strategy

_WHERE = {
    "Lane": "framework.dispatch",
    "PrivateCall": "framework.call",
    "BookTop": "framework.events",
    "Candle": "framework.events",
    "Fill": "framework.events",
    "OrderState": "framework.events",
    "OrderUpdate": "framework.events",
    "Started": "framework.events",
    "Stopping": "framework.events",
    "Ticker": "framework.events",
    "Market": "framework.market",
    "LimitOrder": "framework.orders",
    "MarketOrder": "framework.orders",
    "Secret": "framework.secret",
    "Context": "framework.strategy",
    "Strategy": "framework.strategy",
}


def __getattr__(name: str) -> Any:
    if name in __all__:
        module = importlib.import_module(_WHERE.get(name, "framework.errors"))
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'framework' has no attribute {name!r}")


__all__ = [
    "AmbiguousOutcome",
    "AuthError",
    "BookTop",
    "Candle",
    "ConfigError",
    "Context",
    "ExchangeError",
    "Fill",
    "InsufficientFunds",
    "InvalidArguments",
    "InvalidRequest",
    "Lane",
    "LaneClosed",
    "LanePaused",
    "LimitOrder",
    "LockedOut",
    "Market",
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
