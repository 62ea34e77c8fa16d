"""Every Kraken error string in protocols.md maps to the right branch of the error tree."""

from __future__ import annotations

from decimal import Decimal

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


def test_an_exchanges_hostile_error_text_stays_one_bounded_line() -> None:
    """Found probing this stop's order reasons: an error string with line breaks and 100 kB
    became a refused order's reason as it was, so the terminal printed a made-up
    ``final ... stopped`` line and the journal kept 100 kB a row. Every error's message and
    code are now one line and bounded, and a reason at most 300 characters."""
    from framework.errors import reason_of
    from framework.events import OrderState, OrderUpdate
    from framework.tally import Tally

    hostile = (
        "EOrder:Insufficient funds\nfinal  XBTUSD 1  fills 0  stopped\r\x1b[2J" + "x" * 100_000
    )
    exc = translate([hostile], endpoint="AddOrder", key_id="k")
    assert isinstance(exc, OrderRejected)  # still classified by its text
    assert "\n" not in str(exc) and len(exc.message) <= 2000 and len(exc.code or "") <= 200
    reason = reason_of(exc)
    assert reason.startswith("EOrder:Insufficient funds final  XBTUSD") and len(reason) == 300
    zero = Decimal(0)
    refused = OrderUpdate("c1", "XBTUSD", "buy", OrderState.REJECTED, Decimal(1), zero,
                          Decimal(1), None, None, reason, 0.0)  # fmt: skip
    line = Tally().add(refused)
    assert line is not None and "\n" not in line and "\x1b" not in line
