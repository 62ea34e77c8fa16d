"""SynthetixClient: Synthetix off-chain perps trade actions over one strict lane per signer.

    async with SynthetixClient(private_key=..., sub_account_id=..., base_url=...) as snx:
        await snx.place_orders([{"symbol": "BTC-USDT", "side": "buy", "orderType": "limitGtc",
                                 "price": "50000.00", "quantity": "0.1"}])

Nonces are strictly increasing integers (ms by default, at most 2**63 - 1), persisted like
Kraken's, through a strict lane: the signed action carries the nonce, so it is signed when
the call leaves the queue. On "Nonce already used" / "Invalid nonce" the client resyncs from
``details.lastNonce`` when the server gives it (otherwise the next nonce is past the clock
anyway) and the lane retries with a fresh nonce.

``expiresAfter`` is part of the signed struct; the docs disagree on its unit, so it is
configurable (``expires_unit`` "s" or "ms", default "s"); ``expires_after_s=None`` sends 0
(no expiry). Requests use the current ``{"params": {...}, "nonce", "signature",
"expiresAfter"}`` shape (``envelope="action"`` sends the older ``{"action": {...}}`` one).

Reads (``getOpenOrders``, ``getOrderHistory``, ``getTrades``, ``getSubAccount``) are
"SubAccountAction" requests signed *without* a nonce (protocols.md 3.3): nothing to order,
so :meth:`SynthetixClient.read` signs and posts them directly, beside the lane. Public data
comes from ``POST /v1/info`` (:meth:`SynthetixClient.info`). The server's clock is learned
from the ``timestamp`` of every answer and applied to ``expiresAfter``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import aiohttp

from framework.call import PrivateCall
from framework.clock import SYSTEM_CLOCK, Clock
from framework.errors import (
    AmbiguousOutcome,
    ConfigError,
    ExchangeError,
    InvalidRequest,
    OrderlyError,
    OrderRejected,
    TransientError,
)
from framework.exchanges.base import LaneClient
from framework.exchanges.synthetix.errors import EXCHANGE, translate
from framework.exchanges.synthetix.signer import PRIMARY, READS, address_of, sign_action
from framework.nonce.history import NonceHistory
from framework.nonce.source import SYNTHETIX_MAX, IncreasingNonces, Nonce
from framework.nonce.store import MemoryStore, NonceStore
from framework.secret import Secret, key_id

DEFAULT_BASE_URL = "https://papi.synthetix.io"
ORDER_DEFAULTS: dict[str, Any] = {
    "price": "",
    "triggerPrice": "",
    "reduceOnly": False,
    "isTriggerMarket": False,
    "clientOrderId": "",
    "closePosition": False,
}


def order_id_of(status: Mapping[str, Any]) -> str | None:
    """The venue order id in one per-order status (``resting``, ``filled`` or ``canceled``;
    ``{"order": {"venueId"}}``, or the older flat ``id`` / ``orderId``)."""
    for kind in ("resting", "filled", "canceled"):
        inner = status.get(kind)
        if isinstance(inner, Mapping):
            ident = inner.get("order")
            found = ident.get("venueId") if isinstance(ident, Mapping) else None
            found = found or inner.get("id") or inner.get("orderId")
            return str(found) if found else None
    return None


class SynthetixClient(LaneClient):
    """Synthetix trade client for one signer and subaccount. Use as an async context manager."""

    exchange = EXCHANGE

    def __init__(
        self,
        private_key: str | Secret,
        sub_account_id: int,
        base_url: str = DEFAULT_BASE_URL,
        *,
        store: NonceStore | None = None,
        history: NonceHistory | None = None,
        nonce_unit: str = "ms",
        expires_after_s: float | None = None,
        expires_unit: Literal["s", "ms"] = "s",
        envelope: Literal["params", "action"] = "params",
        timeout: float = 10.0,
        clock: Clock = SYSTEM_CLOCK,
        nonce_retries: int = 2,
        breaker_threshold: int = 3,
        breaker_cooldown: float = 60.0,
    ) -> None:
        self._lane_options: dict[str, Any] = {
            "nonce_retries": nonce_retries,
            "breaker_threshold": breaker_threshold,
            "breaker_cooldown": breaker_cooldown,
        }
        self._key = private_key if isinstance(private_key, Secret) else Secret(private_key)
        try:
            self.address = address_of(self._key.reveal())
        except (ValueError, TypeError):
            raise ConfigError(
                "the Synthetix private key is not a valid hex key", exchange=EXCHANGE
            ) from None
        self.sub_account_id = int(sub_account_id)
        self.key_id = key_id(f"{self.address}:{self.sub_account_id}")
        self.base_url = base_url.rstrip("/")
        self._store = store if store is not None else MemoryStore()
        self._history = history if history is not None else NonceHistory(None)
        self._nonce_unit = nonce_unit
        self._expires_after_s = expires_after_s
        self._expires_unit = expires_unit
        self._envelope = envelope
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._clock = clock
        self._source: IncreasingNonces | None = None
        #: Server clock minus local clock, in ms (from each answer's ``timestamp``).
        self.clock_offset_ms = 0.0

    def __repr__(self) -> str:
        return f"SynthetixClient(key_id={self.key_id!r}, sub_account_id={self.sub_account_id})"

    async def __aenter__(self) -> SynthetixClient:
        self._source = IncreasingNonces(
            self._store,
            self.key_id,
            unit=self._nonce_unit,
            clock=self._clock,
            max_value=SYNTHETIX_MAX,
        )
        self._start(
            timeout=self._timeout,
            source=self._source,
            history=self._history,
            clock=self._clock,
            **self._lane_options,
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stop()

    def _expires_after(self) -> int:
        if self._expires_after_s is None:
            return 0
        at = self._clock.wall_ns() / 1e9 + self.clock_offset_ms / 1000 + self._expires_after_s
        return int(at * 1000) if self._expires_unit == "ms" else int(at)

    def _message(
        self, action: str, params: Mapping[str, Any], nonce: int, expires_after: int
    ) -> dict[str, Any]:
        """The typed-data message: integers where JSON has strings."""
        if action == "placeOrders":
            return {
                "subAccountId": self.sub_account_id,
                "orders": [dict(o) for o in params["orders"]],
                "grouping": params.get("grouping", "na"),
                "nonce": nonce,
                "expiresAfter": expires_after,
            }
        return {
            "subAccountId": self.sub_account_id,
            "orderIds": [int(i) for i in params["orderIds"]],
            "nonce": nonce,
            "expiresAfter": expires_after,
        }

    async def _send(self, call: PrivateCall, nonce: Nonce) -> Any:
        """The lane's wire: sign the action with its nonce, post, parse."""
        assert self._session is not None and self._source is not None
        assert isinstance(nonce, int)
        action = call.endpoint
        expires_after = self._expires_after()
        signature = sign_action(
            PRIMARY[action],
            self._message(action, call.params, nonce, expires_after),
            self._key.reveal(),
        )
        inner = {"action": action, "subAccountId": str(self.sub_account_id), **call.params}
        if action == "cancelOrders":
            inner["orderIds"] = [str(i) for i in call.params["orderIds"]]
        body = {
            self._envelope: inner,
            "nonce": nonce,
            "signature": signature,
            "expiresAfter": expires_after,
        }
        if self._envelope == "params":
            inner["source"] = "direct"
        return await self._post("/v1/trade", action, body, mutating=True)

    async def read(self, action: str, **params: Any) -> Any:
        """A signed read (SubAccountAction: no nonce, so not through the lane)."""
        if action not in READS:
            raise InvalidRequest(f"not a Synthetix read: {action}", exchange=EXCHANGE)
        expires_after = self._expires_after()
        message = {
            "subAccountId": self.sub_account_id,
            "action": action,
            "expiresAfter": expires_after,
        }
        body = {
            self._envelope: {"action": action, "subAccountId": str(self.sub_account_id), **params},
            "signature": sign_action("SubAccountAction", message, self._key.reveal()),
            "expiresAfter": expires_after,
        }
        return await self._post("/v1/trade", action, body, mutating=False)

    async def info(self, action: str, **params: Any) -> Any:
        """A public ``/v1/info`` call: ``{"action": ..., **params}``, unsigned."""
        return await self._post("/v1/info", action, {"action": action, **params}, mutating=False)

    async def _post(self, path: str, action: str, body: dict[str, Any], *, mutating: bool) -> Any:
        status, _, payload = await self._http(
            "POST",
            self.base_url + path,
            endpoint=action,
            mutating=mutating,
            data=json.dumps(body, separators=(",", ":")),
            headers={"Content-Type": "application/json"},
        )
        return self._parse(action, status, payload, mutating=mutating)

    def _parse(self, action: str, status: int, payload: bytes, *, mutating: bool) -> Any:
        try:
            envelope = json.loads(payload)
        except ValueError:
            envelope = None
        if not isinstance(envelope, dict) or envelope.get("status") not in ("ok", "error"):
            cls: type[OrderlyError] = ExchangeError
            if status >= 500:
                cls = AmbiguousOutcome if mutating else TransientError
            raise cls(
                f"Synthetix {action} answered HTTP {status} without its envelope",
                exchange=EXCHANGE,
                code=f"HTTP {status}",
                endpoint=action,
                key_id=self.key_id,
            )
        if isinstance(envelope.get("timestamp"), int):
            offset = envelope["timestamp"] - self._clock.wall_ns() / 1e6
            self.clock_offset_ms = offset if abs(offset) >= 1000 else 0.0
        if envelope["status"] == "ok":
            return envelope.get("response")
        error = envelope.get("error") or {}
        exc = translate(status, error, endpoint=action, key_id=self.key_id)
        last = (error.get("details") or {}).get("lastNonce")
        if isinstance(last, int) and self._source is not None:
            self._source.raise_floor(last)  # resync: the lane's retry goes past it
        if mutating and isinstance(exc, TransientError) and status >= 500:  # may have run
            raise AmbiguousOutcome(
                exc.message, exchange=EXCHANGE, code=exc.code, endpoint=action, key_id=self.key_id
            ) from None
        raise exc

    def _per_order(self, action: str, response: Any) -> list[dict[str, Any] | OrderlyError]:
        """One entry per order, in order: its status, or the OrderRejected that refused it."""
        statuses = response.get("statuses", []) if isinstance(response, dict) else []
        return [
            OrderRejected(
                f"Synthetix refused an order of {action}: {s['error']}",
                exchange=EXCHANGE,
                code=str(s["error"]),
                endpoint=action,
                key_id=self.key_id,
            )
            if isinstance(s, dict) and s.get("error")
            else s
            for s in statuses
        ]

    async def place_orders(
        self, orders: Sequence[Mapping[str, Any]], grouping: str = "na"
    ) -> list[dict[str, Any] | OrderlyError]:
        """Orders in Synthetix's fields (unset ones get the API's defaults), as one signed
        action; one result per order, in order."""
        full = [{**ORDER_DEFAULTS, **o} for o in orders]
        for order in full:
            missing = [k for k in ("symbol", "side", "orderType", "quantity") if not order.get(k)]
            if missing:
                raise InvalidRequest(
                    f"order misses {', '.join(missing)}", exchange=EXCHANGE, endpoint="placeOrders"
                )
        response = await self.lane.submit(
            PrivateCall("placeOrders", {"orders": full, "grouping": grouping})
        )
        return self._per_order("placeOrders", response)

    async def cancel_orders(
        self, order_ids: Sequence[int | str]
    ) -> list[dict[str, Any] | OrderlyError]:
        """One result per order id, in order."""
        response = await self.lane.submit(
            PrivateCall("cancelOrders", {"orderIds": [int(i) for i in order_ids]})
        )
        return self._per_order("cancelOrders", response)
