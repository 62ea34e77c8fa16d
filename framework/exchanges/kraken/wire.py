"""Kraken's wire format: a private call's signed request and an answer's envelope turned into
its ``result`` or a typed error. :class:`KrakenWire` is Kraken's
:class:`~framework.transport.ExchangeWire`: the core's pipeline calls it; it does no I/O.

Bodies are form-encoded by default (the documented signing vector uses that form); a call
whose parameters nest (AddOrderBatch's ``orders``) is sent as JSON, as Kraken's spec shows,
and ``encoding="json"`` sends every call as JSON. The signature covers the exact bytes.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal
from urllib.parse import quote_plus

from framework.call import PrivateCall
from framework.clock import Clock, wall
from framework.errors import (
    ExchangeError,
    InvalidArguments,
    OrderlyError,
    RateLimited,
    TransientError,
)
from framework.exchanges.kraken.errors import EXCHANGE, NOT_EXECUTED, translate
from framework.exchanges.kraken.limits import Pacer
from framework.exchanges.kraken.signer import sign
from framework.log import get_logger
from framework.nonce.source import Nonce
from framework.secret import Secret
from framework.transport import Answer, Request, decode_json

log = get_logger("framework.exchanges.kraken")

#: Private endpoints that change state: a lost answer is ambiguous, never blindly resent.
MUTATING = frozenset(
    {
        "AddOrder",
        "AddOrderBatch",
        "EditOrder",
        "AmendOrder",
        "CancelOrder",
        "CancelOrderBatch",
        "CancelAll",
        "CancelAllOrdersAfter",
        "Withdraw",
    }
)


def form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


#: What form encoding leaves as it is (``urlencode``'s unreserved characters).
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


def _form(text: str) -> str:
    """``text`` form-encoded as ``urlencode`` does it; most of what Kraken is sent (numbers,
    pairs, sides, hex ids) needs no quoting and is taken as it is."""
    return text if _UNRESERVED.issuperset(text) else quote_plus(text)


#: Types sent as one form value as they are (checked first: an ABC check costs ten times more).
_FLAT = frozenset({str, int, Decimal, bool, float})


def _nested(params: Mapping[str, Any]) -> bool:
    return any(
        type(v) not in _FLAT and isinstance(v, Mapping | list | tuple) for v in params.values()
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot send {type(value).__name__} to Kraken")


def encode(
    params: Mapping[str, Any], nonce: int, encoding: Literal["form", "json"] = "form"
) -> tuple[bytes, str]:
    """The body of a private call and its content type."""
    if encoding == "json" or _nested(params):
        body = json.dumps({"nonce": nonce, **params}, separators=(",", ":"), default=_json_default)
        return body.encode(), "application/json"
    fields = "".join(f"&{_form(str(k))}={_form(form_value(v))}" for k, v in params.items())
    return f"nonce={nonce}{fields}".encode(), "application/x-www-form-urlencoded"


def deadline(at: float) -> str:
    """Kraken's ``deadline`` (RFC 3339, ms) for the Unix time ``at``."""
    return (
        dt.datetime.fromtimestamp(at, dt.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def parse(endpoint: str, status: int, payload: bytes, *, exchange: str, key_id: str) -> Any:
    """Kraken's ``result`` from an answer, or the typed error it carries. An answer without
    a JSON envelope is transient at HTTP 5xx and otherwise not understood (ExchangeError)."""
    envelope = decode_json(payload)  # None: not JSON, or nested too deep to decode
    if type(envelope) is dict and envelope.get("error") == []:  # the common answer
        return envelope.get("result")
    if not isinstance(envelope, dict) or not isinstance(envelope.get("error", []), list):
        cls = TransientError if status >= 500 else ExchangeError
        raise cls(
            f"Kraken {endpoint} answered HTTP {status} without a JSON envelope",
            exchange=exchange,
            code=f"HTTP {status}",
            endpoint=endpoint,
            key_id=key_id,
        )
    errors = [e for e in envelope.get("error", []) if isinstance(e, str)]
    if any(e.startswith("E") for e in errors):
        raise translate(errors, endpoint=endpoint, key_id=key_id, exchange=exchange)
    if errors:
        log.warning("kraken_warning", endpoint=endpoint, key_id=key_id, warnings=errors)
    return envelope.get("result")


#: Order calls that carry Kraken's ``deadline``.
_DEADLINED = frozenset({"AddOrder", "AddOrderBatch", "AmendOrder"})


class KrakenWire:
    """Kraken's pure parts for one key: build and sign a private call, parse its answer."""

    def __init__(
        self,
        api_key: Secret,
        api_secret: Secret,
        base_url: str,
        *,
        exchange: str,
        key_id: str,
        clock: Clock,
        encoding: Literal["form", "json"] = "form",
        order_deadline_s: float | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        self.exchange = exchange
        self._api_key = api_key
        self._api_secret = api_secret
        self._base_url = base_url
        self._key_id = key_id
        self._clock = clock
        self._encoding: Literal["form", "json"] = encoding
        self.order_deadline_s = order_deadline_s
        self._pacer = pacer
        #: Exchange time minus local time (s), from the Time endpoint; deadlines use it.
        self.clock_offset_s = 0.0

    def mutating(self, endpoint: str) -> bool:
        return endpoint in MUTATING

    def not_executed(self, error: OrderlyError) -> bool:
        return isinstance(error, RateLimited) or error.code in NOT_EXECUTED

    def deadline_in(self, seconds: float) -> str:
        """Kraken's ``deadline`` ``seconds`` from now, in the exchange's time."""
        return deadline(wall(self._clock) + self.clock_offset_s + seconds)

    def build(self, call: PrivateCall, nonce: Nonce) -> Request:
        """Every order call carries a ``deadline`` ``order_deadline_s`` from now, in the
        exchange's time; the signature covers the exact body sent."""
        params = call.params
        if call.endpoint in _DEADLINED and self.order_deadline_s and "deadline" not in params:
            params = {**params, "deadline": self.deadline_in(self.order_deadline_s)}
        path = f"/0/private/{call.endpoint}"
        body, content_type = encode(params, int(nonce), self._encoding)
        headers = {
            "API-Key": self._api_key.reveal(),
            "API-Sign": sign(path, int(nonce), body, self._api_secret.reveal()),
            "Content-Type": content_type,
        }
        return Request("POST", self._base_url + path, headers, body)

    def parse(self, call: PrivateCall, answer: Answer) -> Any:
        try:
            result = parse(
                call.endpoint,
                answer.status,
                answer.body,
                exchange=self.exchange,
                key_id=self._key_id,
            )
        except RateLimited:
            if self._pacer is not None:  # the exchange's counter is fuller than ours
                self._pacer.refused(call)
            raise
        if self._pacer is not None:  # placement times decide what cancelling will cost
            self._pacer.answered(call, result)
        return result


@dataclass(frozen=True, slots=True)
class ServerTime:
    unixtime: int
    rfc1123: str


@dataclass(frozen=True, slots=True)
class AddOrderResult:
    txids: tuple[str, ...]
    description: str


@dataclass(frozen=True, slots=True)
class CancelResult:
    count: int
    pending: bool


def order_amount(value: Any, endpoint: str, *, field: str = "amount") -> Decimal:
    """An amount a caller gave: InvalidArguments for an order, ExchangeError otherwise."""
    try:
        return Decimal(str(value))
    except InvalidOperation:
        cls: type[OrderlyError] = InvalidArguments if endpoint == "AddOrder" else ExchangeError
        raise cls(
            f"{field} is not a number: {value!r}", exchange=EXCHANGE, endpoint=endpoint
        ) from None
