"""The one exception tree of Orderly, shaped by what the caller should do.

    OrderlyError
    ├── ConfigError            fatal at start: fix the config or the call, then restart
    │   ├── StoreLocked        another process holds this key in this nonce store
    │   ├── StoreBehind        the nonce store is behind the key's history: it lost writes
    │   └── NonceUnitError     the key's stored nonce unit does not match the requested one
    ├── AuthError              stop the key until a human looks (bad key, signature, permission)
    │   └── LockedOut          the exchange locked the key for a while
    ├── NonceError             the exchange refused the nonce; nothing ran; retry with a fresh nonce
    ├── NonceExhausted         the nonce would pass the exchange's maximum; never wraps
    ├── TransientError         nothing ran, or only a read ran; retry later
    │   ├── RateLimited        back off until the limit decays
    │   └── LanePaused         the lane's breaker tripped after repeated auth refusals; wait
    ├── UsageError             the calling code used Orderly wrongly (e.g. a client not opened)
    │   └── InvalidArguments   found wrong before anything was recorded or sent (not a refusal)
    ├── OrderRejected          the exchange refused the order; never retried
    │   ├── InsufficientFunds
    │   └── InvalidRequest     the exchange found the call's parameters wrong
    ├── AmbiguousOutcome       the call may or may not have run: reconcile before anything else
    ├── ExchangeError          the exchange said something we do not understand
    ├── LaneClosed             the lane no longer accepts calls
    └── StateError             a state file (nonce store, nonce history, order journal) cannot
                               be read or written: what it guards was not sent

Every error carries the fields that say where it came from (``exchange``, ``code``,
``key_id``, ``endpoint``) and never a secret: ``key_id`` is a short hash of the API key.
"""

from __future__ import annotations


def one_line(text: str, limit: int) -> str:
    """``text`` on one line (control characters as spaces) and at most ``limit`` characters:
    an exchange's error text can be anything, and it reaches the terminal and the journal."""
    text = "".join(c if c.isprintable() else " " for c in text[: limit + 1])
    return text if len(text) <= limit else text[: limit - 3] + "..."


class OrderlyError(Exception):
    """Root of every error Orderly raises on purpose. Its message and code are kept on one
    line and bounded (2,000 and 200 characters), whatever text an exchange sent."""

    def __init__(
        self,
        message: str,
        *,
        exchange: str | None = None,
        code: str | None = None,
        key_id: str | None = None,
        endpoint: str | None = None,
    ) -> None:
        message = one_line(message, 2000)
        super().__init__(message)
        self.message = message
        self.exchange = exchange
        self.code = None if code is None else one_line(code, 200)
        self.key_id = key_id
        self.endpoint = endpoint

    def __str__(self) -> str:
        where = [
            f"{name}={value}"
            for name, value in (
                ("exchange", self.exchange),
                ("endpoint", self.endpoint),
                ("key", self.key_id),
                ("code", self.code),
            )
            if value is not None
        ]
        return f"{self.message} ({', '.join(where)})" if where else self.message


class ConfigError(OrderlyError):
    """Wrong configuration or wrong use of the API; fatal at start."""


class StoreLocked(ConfigError):
    """Another process already holds this API key in this nonce store."""


class StoreBehind(ConfigError):
    """The nonce store's floor is below a nonce the key's history shows sent: the store
    lost writes. Resume with ``orderly nonces resume CONFIG``."""


class NonceUnitError(ConfigError):
    """The requested nonce unit conflicts with what this key has already used."""


class AuthError(OrderlyError):
    """The exchange refused the key, signature or permission: stop the key."""


class LockedOut(AuthError):
    """The exchange temporarily locked the key after repeated failures."""


class NonceError(OrderlyError):
    """The exchange refused the nonce. Nothing was executed; a fresh nonce may be tried."""


class NonceExhausted(OrderlyError):
    """The next nonce would exceed the largest value the exchange accepts."""


class TransientError(OrderlyError):
    """Nothing was executed (or only a read): the same call may be retried later."""


class RateLimited(TransientError):
    """The exchange's rate limit was hit: back off."""


class UsageError(OrderlyError):
    """The calling code used Orderly wrongly (a client used outside ``async with``...)."""


class InvalidArguments(UsageError):
    """The arguments of a call are wrong, found by Orderly before anything was recorded or
    sent (an exchange's refusal of the parameters is :class:`InvalidRequest`)."""


class LanePaused(TransientError):
    """The lane stopped sending after repeated refusals, until ``resume_in`` seconds pass.
    Nothing was sent: a wait, not a nonce refusal."""

    def __init__(self, message: str, *, resume_in: float, **where: str | None) -> None:
        super().__init__(message, **where)
        self.resume_in = resume_in


class OrderRejected(OrderlyError):
    """The exchange definitively refused the order. Never retried."""


class InsufficientFunds(OrderRejected):
    """Not enough balance or margin for the order."""


class InvalidRequest(OrderRejected):
    """The call's parameters are wrong (unknown pair, bad price, missing argument...)."""


class AmbiguousOutcome(OrderlyError):
    """The call was sent but its outcome is unknown: reconcile before resending."""


class ExchangeError(OrderlyError):
    """The exchange answered with something Orderly cannot interpret."""


class LaneClosed(OrderlyError):
    """The lane is closed and accepts no more calls."""


class StateError(OrderlyError):
    """A state file (the nonce store, the nonce history, the order journal) cannot be read
    or written: the call it guards was not sent."""


def reason_of(exc: BaseException) -> str:
    """What an exchange said, as a refused order's reason: the code where it says it all
    (Kraken's ``EOrder:Insufficient funds``), with the exchange's words where the code is a
    number or a name (Bitunix's ``20003 Insufficient balance``, Synthetix's
    ``INSUFFICIENT_MARGIN: Insufficient margin``); the message when there is no code."""
    if not isinstance(exc, OrderlyError):
        return one_line(str(exc), 300)
    message, code = exc.message, exc.code
    if not code:  # Orderly's own refusal (an order the venue cannot send): its words
        reason = message
    elif code in message:  # "... refused X: <code> <words>", or the code is the words
        reason = message[message.index(code) :]
    else:
        words = message.rpartition(": ")[2]
        reason = f"{code}: {words}" if words and words != message else code
    return one_line(reason, 300)


def may_have_run(exc: BaseException) -> bool:
    """Whether a state-changing call that failed with ``exc`` may have run: its answer was
    lost, or came back and could not be understood. Only a typed refusal proves it did not."""
    return isinstance(exc, AmbiguousOutcome | ExchangeError) or not isinstance(exc, OrderlyError)
