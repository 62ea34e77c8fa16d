"""SynthetixClient: Synthetix off-chain perps trade actions over one strict lane per signer.

    async with SynthetixClient(private_key=..., sub_account_id=..., base_url=...) as snx:
        await snx.place_orders([{"symbol": "BTC-USDT", "side": "buy", "orderType": "limitGtc",
                                 "price": "50000.00", "quantity": "0.1"}])

Nonces are strictly increasing integers (ms by default, at most 2**63 - 1), persisted like
Kraken's, through a strict lane: the signed action carries the nonce, so it is signed when
the call leaves the queue. On "Nonce already used" / "Invalid nonce" the client resyncs from
``details.lastNonce`` when the server gives it (otherwise the next nonce is past the clock
anyway) and the lane retries with a fresh nonce.

``expiresAfter`` is part of the signed struct, in Unix milliseconds on REST (the official
SDK and the REST pages; ``expires_unit="s"`` follows the WebSocket pages' seconds);
``expires_after_s=None`` sends 0 (no expiry). Requests use the current ``{"params": {...},
"nonce", "signature", "expiresAfter"}`` shape (``envelope="action"`` sends the older
``{"action": {...}}`` one).

Reads (``getOpenOrders``, ``getOrderHistory``, ``getTrades``, ``getSubAccount``) are
"SubAccountAction" requests. The docs sign them without a nonce; the official SDK signs
every one with a nonce from the same series as the trades. ``read_nonce=True`` (the SDK's
way, the default) sends them through the strict lane like trades; ``read_nonce=False``
signs them without a nonce and posts them beside the lane. A server that refuses the shape
gets an error naming the setting. Every call is paced to the subaccount's token bucket
(:mod:`framework.exchanges.synthetix.limits`; ``bucket=None`` turns it off). Public data
comes from ``POST /v1/info`` (:meth:`SynthetixClient.info`). The server's clock is learned
from the ``timestamp`` of every answer and applied to ``expiresAfter``. Building, signing and
parsing are Synthetix's pure parts (:class:`~framework.exchanges.synthetix.wire.SynthetixWire`);
trade actions go through the core's pipeline (framework/transport.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import aiohttp

from framework.call import PrivateCall
from framework.clock import SYSTEM_CLOCK, Clock
from framework.errors import (
    AuthError,
    ConfigError,
    InvalidArguments,
    InvalidRequest,
    OrderlyError,
    OrderRejected,
)
from framework.exchanges.base import LaneClient, WireClock
from framework.exchanges.synthetix.errors import EXCHANGE
from framework.exchanges.synthetix.limits import BUCKET, Pacer
from framework.exchanges.synthetix.signer import READS, address_of
from framework.exchanges.synthetix.wire import SynthetixWire
from framework.nonce.history import NonceHistory
from framework.nonce.source import SYNTHETIX_MAX, IncreasingNonces
from framework.nonce.store import MemoryStore, NonceStore
from framework.secret import Secret, key_id
from framework.transport import Request

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


class SynthetixClient(WireClock, LaneClient):
    """Synthetix trade client for one signer and subaccount. Use as an async context manager."""

    exchange = EXCHANGE
    state_changing = frozenset({"place_orders", "cancel_orders", "schedule_cancel"})

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
        expires_unit: Literal["s", "ms"] = "ms",
        read_nonce: bool = True,
        bucket: tuple[float, float] | None = BUCKET,
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
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._clock = clock
        self.read_nonce = read_nonce
        self.pacer = Pacer(bucket) if bucket is not None else None
        self._source: IncreasingNonces | None = None
        #: Synthetix's pure parts; trade actions go through the core's pipeline.
        self.wire = SynthetixWire(
            self._key,
            self.sub_account_id,
            self.base_url,
            key_id=self.key_id,
            clock=clock,
            expires_after_s=expires_after_s,
            expires_unit=expires_unit,
            envelope=envelope,
        )

    def __repr__(self) -> str:
        return f"SynthetixClient(key_id={self.key_id!r}, sub_account_id={self.sub_account_id})"

    async def __aenter__(self) -> SynthetixClient:
        self._source = IncreasingNonces(
            self._store,
            self.key_id,
            unit=self._nonce_unit,
            clock=self._clock,
            max_value=SYNTHETIX_MAX,
            history=self._history,
        )
        self.wire.resync = self._source.raise_floor
        self._start(
            timeout=self._timeout,
            source=self._source,
            history=self._history,
            clock=self._clock,
            wire=self.wire,
            pace=self.pacer.pace_call if self.pacer is not None else None,
            **self._lane_options,
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stop()

    async def read(self, action: str, **params: Any) -> Any:
        """A signed read (SubAccountAction): with a nonce through the lane, or without one
        beside it (``read_nonce``)."""
        if action not in READS:
            raise InvalidArguments(f"not a Synthetix read: {action}", exchange=EXCHANGE)
        try:
            if self.read_nonce:
                return await self.lane.submit(PrivateCall(action, params))
            if self.pacer is not None:
                await self.pacer.pace(action, params)
            return await self._post(self.wire.read(action, params), action)
        except (AuthError, InvalidRequest) as exc:
            if isinstance(exc, InvalidRequest) and "nonce" not in exc.message.lower():
                raise
            shape, other = ("with", "without") if self.read_nonce else ("without", "with")
            raise type(exc)(
                f"{exc.message}. Reads are signed {shape} a nonce ([exchange] read_nonce ="
                f" {str(self.read_nonce).lower()}); if the key is right, this server may want"
                f" them {other} one: set read_nonce = {str(not self.read_nonce).lower()}",
                exchange=EXCHANGE,
                code=exc.code,
                endpoint=action,
                key_id=self.key_id,
            ) from None

    async def info(self, action: str, **params: Any) -> Any:
        """A public ``/v1/info`` call: ``{"params": {"action": ..., **params}}``, unsigned."""
        return await self._post(self.wire.info(action, params), action)

    async def _post(self, request: Request, action: str) -> Any:
        answer = await self._read(request, endpoint=action)
        return self.wire.answer(action, answer.status, answer.body, mutating=False)

    def _per_order(self, action: str, response: Any) -> list[dict[str, Any] | OrderlyError]:
        """One entry per order, in order: its status, or the OrderRejected that refused it
        (its code is the answer's ``errorCode``, e.g. IDEMPOTENCY_CONFLICT; the message text
        when there is none)."""
        statuses = response.get("statuses", []) if isinstance(response, dict) else []
        return [
            OrderRejected(
                f"Synthetix refused an order of {action}: {s['error']}",
                exchange=EXCHANGE,
                code=str(s.get("errorCode") or s["error"]),
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
                raise InvalidArguments(
                    f"order misses {', '.join(missing)}", exchange=EXCHANGE, endpoint="placeOrders"
                )
        response = await self.lane.submit(
            PrivateCall("placeOrders", {"orders": full, "grouping": grouping})
        )
        return self._per_order("placeOrders", response)

    async def cancel_orders(
        self, order_ids: Sequence[int | str] = (), *, client_order_ids: Sequence[str] = ()
    ) -> list[dict[str, Any] | OrderlyError]:
        """Cancel by venue order ids (CancelOrders) or by client order ids
        (CancelOrdersByCloid), not both; one result per id, in order."""
        if bool(order_ids) == bool(client_order_ids):
            raise InvalidArguments(
                "give order ids or client order ids", exchange=EXCHANGE, endpoint="cancelOrders"
            )
        params: dict[str, Any] = (
            {"orderIds": [int(i) for i in order_ids]}
            if order_ids
            else {"clientOrderIds": [str(c) for c in client_order_ids]}
        )
        response = await self.lane.submit(PrivateCall("cancelOrders", params))
        return self._per_order("cancelOrders", response)

    async def schedule_cancel(self, timeout_s: int) -> Any:
        """The dead-man switch: Synthetix cancels every open order of the subaccount unless
        called again within ``timeout_s`` seconds; 0 disarms it."""
        return await self.lane.submit(
            PrivateCall("scheduleCancel", {"timeoutSeconds": int(timeout_s)})
        )
