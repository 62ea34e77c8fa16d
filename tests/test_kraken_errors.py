"""Every Kraken error string in protocols.md maps to the right branch of the error tree."""

from __future__ import annotations

import pytest

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
from framework.exchanges.kraken.errors import error_class, translate

CASES: list[tuple[str, type[OrderlyError]]] = [
    ("EAPI:Invalid key", AuthError),
    ("EAPI:Invalid signature", AuthError),
    ("EAPI:Invalid nonce", NonceError),
    ("EGeneral:Permission denied", AuthError),
    ("EAPI:Permission denied", AuthError),
    ("EGeneral:Temporary lockout", LockedOut),
    ("EAPI:Invalid token", AuthError),
    ("EAuth:Rate limit exceeded", RateLimited),
    ("EAuth:Account temporary disabled", LockedOut),
    ("EAPI:Rate limit exceeded", RateLimited),
    ("EService: Throttled: 1700000000", RateLimited),
    ("EService:Throttled:1700000000", RateLimited),
    ("EOrder:Rate limit exceeded", RateLimited),
    ("EOrder:Domain rate limit exceeded", RateLimited),
    ("EGeneral:Too many requests", RateLimited),
    ("EGeneral:Invalid arguments", InvalidRequest),
    ("EGeneral:Invalid arguments:Index unavailable", InvalidRequest),
    ("EGeneral:Invalid arguments:volume", InvalidRequest),
    ("EGeneral:Internal error", TransientError),
    ("EGeneral:Internal error:12345", TransientError),
    ("EQuery:Unknown asset pair", InvalidRequest),
    ("EQuery:Unknown asset", InvalidRequest),
    ("EService:Unavailable", TransientError),
    ("EService:Busy", TransientError),
    ("EService:Market in cancel_only mode", OrderRejected),
    ("EService:Market in post_only mode", OrderRejected),
    ("EService:Deadline elapsed", TransientError),
    ("EOrder:Insufficient funds", InsufficientFunds),
    ("EOrder:Order minimum not met", InvalidRequest),
    ("EOrder:Cost minimum not met", InvalidRequest),
    ("EOrder:Tick size check failed", InvalidRequest),
    ("EOrder:Invalid price", InvalidRequest),
    ("EOrder:Orders limit exceeded", OrderRejected),
    ("EOrder:Scheduled orders limit exceeded", OrderRejected),
    ("EOrder:Positions limit exceeded", OrderRejected),
    ("EOrder:Margin allowance exceeded", InsufficientFunds),
    ("EOrder:Margin level too low", InsufficientFunds),
    ("EOrder:Insufficient margin", InsufficientFunds),
    ("EOrder:Cannot open position", OrderRejected),
    ("EOrder:Cannot open opposing position", OrderRejected),
    ("EOrder:Reduce only:No position exists", OrderRejected),
    ("EOrder:Unknown order", OrderRejected),
    ("EOrder:Invalid order", OrderRejected),
    ("EOrder:Something new", OrderRejected),
    ("EWhatever:Never seen", ExchangeError),
]


@pytest.mark.parametrize(("error", "cls"), CASES, ids=[c[0] for c in CASES])
def test_mapping(error: str, cls: type[OrderlyError]) -> None:
    assert error_class(error) is cls


def test_translated_error_says_what_and_where() -> None:
    exc = translate(["WGeneral:Note", "EAPI:Invalid nonce"], endpoint="Balance", key_id="abc")
    assert isinstance(exc, NonceError)
    assert exc.code == "EAPI:Invalid nonce"
    assert exc.exchange == "kraken" and exc.endpoint == "Balance" and exc.key_id == "abc"
    assert "EAPI:Invalid nonce" in str(exc) and "Balance" in str(exc)
