"""Bitunix response codes, translated to Orderly's exception tree. The only place they are read.

The envelope is ``{"code": int, "msg": str, "data": ...}``; ``code == 0`` is success. Codes
come from the official demos' tables (protocols.md 2.5); an unknown code falls back by its
family: 100xx request/auth, 200xx market/account, 300xx trading.
"""

from __future__ import annotations

from framework.errors import (
    AuthError,
    ExchangeError,
    InsufficientFunds,
    InvalidRequest,
    OrderlyError,
    OrderRejected,
    RateLimited,
    TransientError,
)

EXCHANGE = "bitunix"
CLIENT_ID_DUPLICATE = 30042
ORDER_NOT_FOUND = 20007

CODES: dict[int, type[OrderlyError]] = {
    10001: TransientError,  # Network Error
    10002: InvalidRequest,  # Parameter Error (also: our choice for an expired timestamp)
    10003: AuthError,  # api-key can't be empty
    10004: AuthError,  # The current ip is not in the apikey ip whitelist
    10005: RateLimited,  # Too many requests, please try again later
    10006: RateLimited,  # Request too frequently
    10007: AuthError,  # Sign signature error
    10008: InvalidRequest,  # {value} does not comply with the rule
    20001: InvalidRequest,  # Market not exists
    20003: InsufficientFunds,  # Insufficient balance
    ORDER_NOT_FOUND: OrderRejected,  # Order not found, please try it later
    CLIENT_ID_DUPLICATE: OrderRejected,  # Client ID duplicate
}
FAMILIES: dict[int, type[OrderlyError]] = {
    100: ExchangeError,
    200: OrderRejected,
    300: OrderRejected,
}


def error_class(code: int) -> type[OrderlyError]:
    return CODES.get(code) or FAMILIES.get(code // 100, ExchangeError)


def translate(code: int, msg: str, *, endpoint: str, key_id: str | None) -> OrderlyError:
    cls = error_class(code)
    return cls(
        f"Bitunix refused {endpoint}: {code} {msg}",
        exchange=EXCHANGE,
        code=str(code),
        endpoint=endpoint,
        key_id=key_id,
    )
