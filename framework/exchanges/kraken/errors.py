"""Kraken error strings, translated to Orderly's exception tree. The only place that reads them.

Kraken errors look like ``<E|W><Category>:<Message>[:<extra>]``. A string is looked up whole,
then without its extra part (``EGeneral:Invalid arguments:volume``), then by its category.
"""

from __future__ import annotations

from framework.errors import (
    AuthError,
    ExchangeError,
    InsufficientFunds,
    InvalidRequest,
    LockedOut,
    NonceError,
    OrderlyError,
    OrderRejected,
    RateLimited,
    TransientError,
)

EXCHANGE = "kraken"

#: The placeholder we use for a duplicate ``cl_ord_id`` among open orders (Kraken's own
#: string is undocumented; the sandbox sends this one).
DUPLICATE_CL_ORD_ID = "EOrder:Duplicate cl_ord_id"

ERRORS: dict[str, type[OrderlyError]] = {
    # auth
    "EAPI:Invalid key": AuthError,
    "EAPI:Invalid signature": AuthError,
    "EAPI:Invalid nonce": NonceError,
    "EGeneral:Permission denied": AuthError,
    "EAPI:Permission denied": AuthError,
    "EGeneral:Temporary lockout": LockedOut,
    "EAPI:Invalid token": AuthError,
    "EAuth:Account temporary disabled": LockedOut,
    # rate
    "EAPI:Rate limit exceeded": RateLimited,
    "EAuth:Rate limit exceeded": RateLimited,
    "EService:Throttled": RateLimited,
    "EService: Throttled": RateLimited,
    "EOrder:Rate limit exceeded": RateLimited,
    "EOrder:Domain rate limit exceeded": RateLimited,
    "EGeneral:Too many requests": RateLimited,
    # general
    "EGeneral:Invalid arguments": InvalidRequest,
    "EGeneral:Internal error": TransientError,
    "EQuery:Unknown asset pair": InvalidRequest,
    "EQuery:Unknown asset": InvalidRequest,
    # service
    "EService:Unavailable": TransientError,
    "EService:Busy": TransientError,
    "EService:Deadline elapsed": TransientError,
    "EService:Market in cancel_only mode": OrderRejected,
    "EService:Market in post_only mode": OrderRejected,
    # orders
    "EOrder:Insufficient funds": InsufficientFunds,
    "EOrder:Margin allowance exceeded": InsufficientFunds,
    "EOrder:Margin level too low": InsufficientFunds,
    "EOrder:Insufficient margin": InsufficientFunds,
    "EOrder:Order minimum not met": InvalidRequest,
    "EOrder:Cost minimum not met": InvalidRequest,
    "EOrder:Tick size check failed": InvalidRequest,
    "EOrder:Invalid price": InvalidRequest,
    "EOrder:Orders limit exceeded": OrderRejected,
    "EOrder:Scheduled orders limit exceeded": OrderRejected,
    "EOrder:Positions limit exceeded": OrderRejected,
    "EOrder:Cannot open position": OrderRejected,
    "EOrder:Cannot open opposing position": OrderRejected,
    "EOrder:Reduce only:No position exists": OrderRejected,
    "EOrder:Unknown order": OrderRejected,
    "EOrder:Invalid order": OrderRejected,
    DUPLICATE_CL_ORD_ID: OrderRejected,
}

#: Fallback by category for strings not in the table.
CATEGORIES: dict[str, type[OrderlyError]] = {
    "EAPI": AuthError,
    "EAuth": AuthError,
    "EOrder": OrderRejected,
    "EQuery": InvalidRequest,
    "EService": TransientError,
    "EGeneral": ExchangeError,
    "EFunding": OrderRejected,
    "ETrade": OrderRejected,
}

#: Errors after which Kraken has definitely not executed the call, even on AddOrder.
NOT_EXECUTED = frozenset(
    {"EService:Deadline elapsed", "EAPI:Rate limit exceeded", "EOrder:Rate limit exceeded"}
)


def error_class(error: str) -> type[OrderlyError]:
    """The exception class for one Kraken error string."""
    if error in ERRORS:
        return ERRORS[error]
    parts = error.split(":")
    for cut in range(len(parts) - 1, 0, -1):
        head = ":".join(parts[:cut])
        if head in ERRORS:
            return ERRORS[head]
    return CATEGORIES.get(parts[0], ExchangeError)


def translate(
    errors: list[str], *, endpoint: str, key_id: str | None, exchange: str = EXCHANGE
) -> OrderlyError:
    """The typed error for a non-empty Kraken ``error`` array (its first error wins);
    ``exchange`` labels it (a Kraken-compatible exchange passes its own name)."""
    first = next((e for e in errors if not e.startswith("W")), errors[0])
    cls = error_class(first)
    return cls(
        f"Kraken refused {endpoint}: {first}",
        exchange=exchange,
        code=first,
        endpoint=endpoint,
        key_id=key_id,
    )
