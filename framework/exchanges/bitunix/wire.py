"""Bitunix's wire format: compact JSON bodies, a private call's signed request, and an
answer's envelope turned into its ``data`` or a typed error. :class:`BitunixWire` is
Bitunix's :class:`~framework.transport.ExchangeWire`: the core's pipeline calls it; it does
no I/O. It keeps one piece of state: the server's clock offset, read from each answer's
``Date`` header, which stamps the next requests."""

from __future__ import annotations

import json
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

from framework.call import PrivateCall
from framework.clock import Clock, wall
from framework.errors import ExchangeError, OrderlyError, RateLimited, TransientError
from framework.exchanges.bitunix.errors import EXCHANGE, translate
from framework.exchanges.bitunix.signer import sign
from framework.nonce.source import Nonce
from framework.secret import Secret
from framework.transport import Answer, ClockOffset, Request, decode_json

#: POST endpoints that change state: a lost answer is ambiguous, never blindly resent.
MUTATING = frozenset(
    {"place_order", "batch_order", "cancel_orders", "cancel_all_orders", "modify_order"}
)


def compact(data: Any) -> str:
    """JSON without spaces: the exact text that is signed and sent."""
    return json.dumps(data, separators=(",", ":"), default=str)


def parse(name: str, status: int, payload: bytes, *, key_id: str) -> Any:
    """Bitunix's ``data`` from an answer, or the typed error its ``code`` carries. An answer
    without the envelope is transient at HTTP 5xx and otherwise not understood."""
    envelope = decode_json(payload)  # None: not JSON, or nested too deep to decode
    if not isinstance(envelope, dict) or not isinstance(envelope.get("code"), int):
        cls = TransientError if status >= 500 else ExchangeError
        raise cls(
            f"Bitunix {name} answered HTTP {status} without its envelope",
            exchange=EXCHANGE,
            code=f"HTTP {status}",
            endpoint=name,
            key_id=key_id,
        )
    if envelope["code"] != 0:
        raise translate(
            envelope["code"], str(envelope.get("msg", "")), endpoint=name, key_id=key_id
        )
    return envelope.get("data")


def _split(endpoint: str) -> tuple[str, str, str]:
    """``"POST /api/v1/futures/trade/place_order"`` -> (method, path, short name)."""
    method, path = endpoint.split(" ", 1)
    return method, path, path.rsplit("/", 1)[-1]


class BitunixWire:
    """Bitunix's pure parts for one key: stamp and sign a call, parse its answer."""

    exchange = EXCHANGE

    def __init__(
        self, api_key: Secret, api_secret: Secret, base_url: str, *, key_id: str, clock: Clock
    ) -> None:
        self._api_key = api_key
        self._api_secret = api_secret
        self._base_url = base_url
        self._key_id = key_id
        self._clock = clock
        self._sent_at: dict[int, float] = {}
        #: Server clock minus local clock, in ms (from the HTTP Date header).
        self.clock_offset_ms = 0.0
        self._offsets = ClockOffset(EXCHANGE)

    def mutating(self, endpoint: str) -> bool:
        method, _, name = _split(endpoint)
        return method == "POST" and name in MUTATING

    def not_executed(self, error: OrderlyError) -> bool:
        return isinstance(error, RateLimited)

    def timestamp(self) -> str:
        return str(int(self._clock.wall_ns() / 1e6 + self.clock_offset_ms))

    def build(self, call: PrivateCall, nonce: Nonce) -> Request:
        method, path, _ = _split(call.endpoint)
        timestamp = self.timestamp()
        if method == "GET":
            query, body = dict(call.params), ""
            url = self._base_url + path + (f"?{urlencode(query)}" if query else "")
        else:
            query, body = {}, compact(call.params)
            url = self._base_url + path
        key = self._api_key.reveal()
        headers = {
            "api-key": key,
            "nonce": str(nonce),
            "timestamp": timestamp,
            "sign": sign(
                nonce=str(nonce),
                timestamp=timestamp,
                api_key=key,
                query=query,
                body=body,
                secret=self._api_secret.reveal(),
            ),
            "Content-Type": "application/json",
            "language": "en-US",
        }
        self._sent_at[id(call)] = wall(self._clock)
        return Request(method, url, headers, body.encode() or None)

    def parse(self, call: PrivateCall, answer: Answer) -> Any:
        sent_at = self._sent_at.pop(id(call), wall(self._clock))
        result = parse(_split(call.endpoint)[2], answer.status, answer.body, key_id=self._key_id)
        self.observe(answer.headers, sent_at)  # only a successful answer teaches the clock
        return result

    def observe(self, headers: Mapping[str, str], sent_at: float) -> None:
        """Learn the server's clock from a successful answer's ``Date`` (whole seconds, so
        offsets under a second are not applied; past an hour it is not believed)."""
        date = headers.get("Date")
        if not date:
            return
        try:
            server = parsedate_to_datetime(date).timestamp() + 0.5  # whole seconds
        except (TypeError, ValueError):
            return
        offset = (server - (sent_at + wall(self._clock)) / 2) * 1000
        self.clock_offset_ms = self._offsets.observe(offset)
