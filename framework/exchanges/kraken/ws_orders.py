"""Kraken's WebSocket order methods (``add_order``, ``batch_add``, ``cancel_order``) on one
private v2 connection: the transport of ``[exchange] order_entry = "ws"``.

Each request carries the connection's token and a ``req_id``; the answer with that
``req_id`` settles it. The token comes from ``GetWebSocketsToken`` through the key's lane
(fetched for each connection). What this changes against REST order entry:

- no nonce: orders leave the lane's ordering and its nonce history (the token's fetch is in
  it); they still wait for the key's rate counters (the same pacer as REST: Kraken shares
  the matching-engine counter between REST, WebSocket and FIX);
- a request whose answer does not come within ``timeout_s``, or whose connection drops
  first, is ``AmbiguousOutcome`` for an order and is reconciled by its client order id
  exactly as a lost REST answer is; nothing is ever sent twice on a guess;
- one round trip on an open connection instead of an HTTP request (a few ms less a call).

Every other call (reads, polls, the dead-man switch, cancel_all) stays on REST.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from framework.errors import AmbiguousOutcome, TransientError
from framework.exchanges.kraken.errors import translate
from framework.log import get_logger
from framework.transport import decode_json

log = get_logger("framework.exchanges.kraken.ws_orders")

#: Order methods: a lost answer means the call may have run.
_MUTATING = frozenset({"add_order", "batch_add", "cancel_order", "amend_order"})


def v2_order(rest: dict[str, Any]) -> dict[str, Any]:
    """One order's AddOrder fields as v2's add_order / batch_add fields."""
    fields: dict[str, Any] = {
        "order_type": rest["ordertype"],
        "side": rest["type"],
        "order_qty": float(rest["volume"]),
        "cl_ord_id": rest["cl_ord_id"],
    }
    if "price" in rest:
        fields["limit_price"] = float(rest["price"])
    if rest.get("oflags") == "post":
        fields["post_only"] = True
    if "timeinforce" in rest:
        fields["time_in_force"] = str(rest["timeinforce"]).lower()
    if rest.get("reduce_only") is True:
        fields["reduce_only"] = True
    return fields


class OrderSocket:
    """Order requests over one private Kraken WebSocket v2 connection, made on first use
    and made again after it drops."""

    def __init__(
        self,
        url: str,
        token: Callable[[], Awaitable[str]],
        *,
        key_id: str,
        exchange: str,
        timeout_s: float = 10.0,
    ) -> None:
        self.url = url
        self._token = token
        self.key_id = key_id
        self.exchange = exchange
        self.timeout_s = timeout_s
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._token_value = ""
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._connecting = asyncio.Lock()
        self.connections = 0

    async def call(self, method: str, params: dict[str, Any]) -> Any:
        """Send ``method`` and return its ``result``, or raise the typed error."""
        try:
            ws = await self._connected()
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:  # nothing was sent
            raise TransientError(
                f"Kraken WebSocket unreachable for {method}: {exc}",
                exchange=self.exchange,
                endpoint=method,
                key_id=self.key_id,
            ) from None
        req_id = next(self._ids)
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = answer
        request = {
            "method": method,
            "params": {**params, "token": self._token_value},
            "req_id": req_id,
        }
        try:
            await ws.send_str(json.dumps(request))
            async with asyncio.timeout(self.timeout_s):
                reply = await answer
        except (aiohttp.ClientError, OSError, TimeoutError, ConnectionError) as exc:
            cls = AmbiguousOutcome if method in _MUTATING else TransientError
            raise cls(
                f"Kraken WebSocket {method}: no answer ({type(exc).__name__}); it may have run",
                exchange=self.exchange,
                endpoint=method,
                key_id=self.key_id,
            ) from None
        finally:
            self._pending.pop(req_id, None)
        if reply.get("success") is False:
            raise translate(
                [str(reply.get("error"))],
                endpoint=method,
                key_id=self.key_id,
                exchange=self.exchange,
            )
        return reply.get("result")

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        if self._ws is not None:
            await self._ws.close()
        if self._http is not None:
            await self._http.close()

    async def _connected(self) -> aiohttp.ClientWebSocketResponse:
        async with self._connecting:
            if self._ws is not None and not self._ws.closed:
                return self._ws
            if self._http is None:
                self._http = aiohttp.ClientSession()
            ws = await self._http.ws_connect(
                self.url, timeout=aiohttp.ClientWSTimeout(ws_close=self.timeout_s)
            )
            try:  # the token once connected: an unreachable host costs no private call
                self._token_value = await self._token()
            except BaseException:
                await ws.close()
                raise
            self._ws = ws
            self.connections += 1
            self._reader = asyncio.create_task(self._read(self._ws))
            return self._ws

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Settle each request by its ``req_id``; when the connection ends, every request
        still waiting fails (ambiguous: it may have run)."""
        try:
            async for frame in ws:
                if frame.type is not aiohttp.WSMsgType.TEXT:
                    break
                message = decode_json(frame.data)  # None: not JSON, or too deep to read
                req_id = message.get("req_id") if isinstance(message, dict) else None
                waiting = self._pending.get(req_id) if isinstance(req_id, int) else None
                if waiting is not None and not waiting.done():
                    waiting.set_result(message)
        finally:
            for waiting in self._pending.values():
                if not waiting.done():
                    waiting.set_exception(ConnectionError("the order WebSocket closed"))
            log.info("order_socket_closed", key_id=self.key_id)
