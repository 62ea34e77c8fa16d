"""Synthetix's wire format: signed trade actions (with a nonce, through the lane), signed
reads (SubAccountAction: with a nonce through the lane, as the official SDK signs them, or
without one beside it, as the docs say), public ``/v1/info`` bodies (in the same ``params``
wrapper), and an answer's envelope turned into its ``response`` or a typed error.
:class:`SynthetixWire` is Synthetix's :class:`~framework.transport.ExchangeWire`: the core's
pipeline calls it; it does no I/O.

It keeps two pieces of state: the server's clock offset (from each answer's ``timestamp``,
applied to ``expiresAfter``), and a ``resync`` hook the client points at its nonce source,
called with ``details.lastNonce`` when the server refuses a nonce.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Literal

from framework.call import PrivateCall
from framework.clock import Clock, wall
from framework.errors import (
    AmbiguousOutcome,
    ExchangeError,
    OrderlyError,
    TransientError,
)
from framework.exchanges.synthetix.errors import EXCHANGE, translate
from framework.exchanges.synthetix.signer import READS, TRADES, primary_of, sign_action
from framework.nonce.source import Nonce
from framework.secret import Secret
from framework.transport import Answer, ClockOffset, Request, decode_json

_JSON = {"Content-Type": "application/json"}


def _body(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


class SynthetixWire:
    """Synthetix's pure parts for one signer and subaccount."""

    exchange = EXCHANGE

    def __init__(
        self,
        key: Secret,
        sub_account_id: int,
        base_url: str,
        *,
        key_id: str,
        clock: Clock,
        expires_after_s: float | None,
        expires_unit: Literal["s", "ms"],
        envelope: Literal["params", "action"],
    ) -> None:
        self._key = key
        self._sub = sub_account_id
        self._base_url = base_url
        self._key_id = key_id
        self._clock = clock
        self._expires_after_s = expires_after_s
        self._expires_unit = expires_unit
        self._envelope = envelope
        #: Server clock minus local clock, in ms (from each answer's ``timestamp``).
        self.clock_offset_ms = 0.0
        self._offsets = ClockOffset(EXCHANGE)
        #: Called with the server's ``lastNonce`` after a nonce refusal.
        self.resync: Callable[[int], None] | None = None

    # --- the pipeline's parts (trade actions, through the lane) ----------------------------

    def mutating(self, endpoint: str) -> bool:
        return endpoint in TRADES  # a read signed with a nonce travels the lane too

    def not_executed(self, error: OrderlyError) -> bool:
        """A "try later" that :meth:`answer` did not already make ambiguous came with a 4xx:
        the server refused it before running anything."""
        return isinstance(error, TransientError)

    def build(self, call: PrivateCall, nonce: Nonce) -> Request:
        return self._signed(call.endpoint, call.params, int(nonce))

    def parse(self, call: PrivateCall, answer: Answer) -> Any:
        return self.answer(
            call.endpoint, answer.status, answer.body, mutating=self.mutating(call.endpoint)
        )

    # --- beside the lane --------------------------------------------------------------------

    def read(self, action: str, params: Mapping[str, Any]) -> Request:
        """A signed read without a nonce (the docs' SubAccountAction)."""
        return self._signed(action, params, None)

    def info(self, action: str, params: Mapping[str, Any]) -> Request:
        """A public ``/v1/info`` call, unsigned, in the ``params`` wrapper."""
        body = {"params": {"action": action, **params}}
        return Request("POST", self._base_url + "/v1/info", _JSON, _body(body))

    # --- shared -------------------------------------------------------------------------------

    def _secret(self) -> str:
        return self._key.reveal()

    def expires_after(self) -> int:
        if self._expires_after_s is None:
            return 0
        at = wall(self._clock) + self.clock_offset_ms / 1000 + self._expires_after_s
        return int(at * 1000) if self._expires_unit == "ms" else int(at)

    def _signed(self, action: str, params: Mapping[str, Any], nonce: int | None) -> Request:
        """The request of one action, signed (with ``nonce`` unless it is None)."""
        expires_after = self.expires_after()
        signature = sign_action(
            primary_of(action, params),
            self._message(action, params, nonce, expires_after),
            self._secret(),
        )
        inner = {"action": action, "subAccountId": str(self._sub), **params}
        if "orderIds" in params:
            inner["orderIds"] = [str(i) for i in params["orderIds"]]
        if self._envelope == "params" and action not in READS:
            inner["source"] = "direct"
        body: dict[str, Any] = {self._envelope: inner}
        if nonce is not None:
            body["nonce"] = nonce
        body.update(signature=signature, expiresAfter=expires_after)
        return Request("POST", self._base_url + "/v1/trade", _JSON, _body(body))

    def _message(
        self, action: str, params: Mapping[str, Any], nonce: int | None, expires_after: int
    ) -> dict[str, Any]:
        """The typed-data message: integers where JSON has strings; a read's nonce, when it
        has one, goes before ``expiresAfter`` (signer.typed_data adds it to the type)."""
        message: dict[str, Any] = {"subAccountId": self._sub}
        if action in READS:
            message["action"] = action
        elif action == "placeOrders":
            message["orders"] = [dict(o) for o in params["orders"]]
            message["grouping"] = params.get("grouping", "na")
        elif action == "scheduleCancel":
            message["timeoutSeconds"] = int(params["timeoutSeconds"])
        elif "clientOrderIds" in params:
            message["clientOrderIds"] = [str(c) for c in params["clientOrderIds"]]
        else:
            message["orderIds"] = [int(i) for i in params["orderIds"]]
        if nonce is not None:
            message["nonce"] = nonce
        message["expiresAfter"] = expires_after
        return message

    def answer(self, action: str, status: int, payload: bytes, *, mutating: bool) -> Any:
        """The ``response`` of an answer, or its typed error; a state-changing action that
        got a 5xx may have run (AmbiguousOutcome)."""
        envelope = decode_json(payload)  # None: not JSON, or nested too deep to decode
        where = {"exchange": EXCHANGE, "endpoint": action, "key_id": self._key_id}
        if not isinstance(envelope, dict) or envelope.get("status") not in ("ok", "error"):
            cls: type[OrderlyError] = ExchangeError
            if status >= 500:
                cls = AmbiguousOutcome if mutating else TransientError
            raise cls(
                f"Synthetix {action} answered HTTP {status} without its envelope",
                code=f"HTTP {status}",
                **where,
            )
        if envelope["status"] == "ok":
            stamp = envelope.get("timestamp")  # only a successful answer teaches the clock
            if isinstance(stamp, int) and not isinstance(stamp, bool):
                self.clock_offset_ms = self._offsets.observe(stamp - self._clock.wall_ns() / 1e6)
            return envelope.get("response")
        error = envelope.get("error") or {}
        exc = translate(status, error, endpoint=action, key_id=self._key_id)
        last = (error.get("details") or {}).get("lastNonce")
        if isinstance(last, int) and self.resync is not None:
            self.resync(last)  # the lane's retry goes past it
        if mutating and isinstance(exc, TransientError) and status >= 500:  # may have run
            raise AmbiguousOutcome(exc.message, code=exc.code, **where) from None
        raise exc
