"""KrakenClient: Kraken spot REST over one lane per API key.

    async with KrakenClient(api_key=..., api_secret=..., base_url=...) as kraken:
        balances = await kraken.balance()
        raw = await kraken.private("Balance")

Every private call is an unsigned :class:`PrivateCall` submitted to the key's
:class:`~framework.dispatch.Lane`; the lane paces it (limits.py), assigns the nonce in queue
order, and sends it through the core's pipeline (framework/transport.py) with Kraken's pure
parts (:class:`~framework.exchanges.kraken.wire.KrakenWire`: build, sign, parse). The lane
never calls back into this client. Bodies are form-encoded by default; a call whose
parameters nest is sent as JSON, and ``body_encoding="json"`` sends every call as JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

import aiohttp

from framework.call import PrivateCall
from framework.clock import SYSTEM_CLOCK, Clock, wall
from framework.dispatch import Lane
from framework.errors import ConfigError, ExchangeError, InvalidArguments
from framework.events import Ticker
from framework.exchanges.base import LaneClient, amount, plain
from framework.exchanges.kraken.errors import EXCHANGE
from framework.exchanges.kraken.limits import TIERS, Pacer
from framework.exchanges.kraken.spec import check_secret
from framework.exchanges.kraken.wire import (
    AddOrderResult,
    CancelResult,
    KrakenWire,
    ServerTime,
    form_value,
    order_amount,
    parse,
)
from framework.log import get_logger
from framework.nonce.history import NonceHistory
from framework.nonce.source import KRAKEN_MAX, IncreasingNonces
from framework.nonce.store import NonceStore, SqliteStore
from framework.paths import default_history_path, default_store_path
from framework.pool import PoolLane
from framework.secret import Secret, key_id
from framework.transport import Request, pipeline

if TYPE_CHECKING:
    from framework.shared import Sharing

log = get_logger("framework.exchanges.kraken")

DEFAULT_BASE_URL = "https://api.kraken.com"


class KrakenClient(LaneClient):
    """Kraken spot REST client. Use as an async context manager.

    ``store`` keeps the key's nonce floor (default: the SQLite store in the state directory);
    ``history`` records every nonce (default: the JSON-lines file in the state directory).
    ``nonce_unit`` is ``ms`` (Kraken's suggestion), ``us``, ``ns`` or ``counter``.
    ``nonce_block`` is how far ahead the floor is reserved (default: 1 s of the unit).
    ``max_in_flight=1`` is a strict lane; set it above 1 only if the key has a nonce window.
    ``close_grace`` bounds how long closing waits for calls still queued or in flight.
    ``tier`` (``starter``, ``intermediate``, ``pro``; None = no pacing) sets the rate limits
    the client keeps to (see :mod:`framework.exchanges.kraken.limits`).
    ``order_deadline_s`` (2..60, None = off) sets Kraken's ``deadline`` on every AddOrder and
    AddOrderBatch when it is sent: the engine refuses the order after that moment, so once
    it has passed, an order whose answer was lost and that cannot be found was never placed
    and can be sent again.
    """

    exchange = EXCHANGE
    state_changing = frozenset({"add_order", "cancel_order"})

    def __init__(
        self,
        api_key: str | Secret,
        api_secret: str | Secret,
        base_url: str = DEFAULT_BASE_URL,
        *,
        store: NonceStore | None = None,
        history: NonceHistory | None = None,
        nonce_unit: str = "ms",
        force_unit: bool = False,
        nonce_block: int | None = None,
        max_in_flight: int = 1,
        nonce_retries: int = 2,
        breaker_threshold: int = 3,
        breaker_cooldown: float = 60.0,
        body_encoding: Literal["form", "json"] = "form",
        timeout: float = 10.0,
        close_grace: float | None = None,
        tier: str | None = "starter",
        order_deadline_s: float | None = 5.0,
        clock: Clock = SYSTEM_CLOCK,
        sharing: Sharing | None = None,
        pool: Sequence[tuple[str | Secret, str | Secret]] = (),
    ) -> None:
        self._api_key = api_key if isinstance(api_key, Secret) else Secret(api_key)
        self._api_secret = api_secret if isinstance(api_secret, Secret) else Secret(api_secret)
        if not self._api_key.reveal() or not self._api_secret.reveal():
            raise ConfigError("Kraken API key and secret must both be set", exchange=self.exchange)
        problem = check_secret(self._api_secret.reveal())
        if problem:
            raise ConfigError(f"the Kraken API secret {problem}", exchange=self.exchange)
        self.key_id = key_id(self._api_key)
        self.base_url = base_url.rstrip("/")
        self._store = store
        self._owns_store = store is None
        self._history = history
        self._owns_history = history is None
        self._lane_options: dict[str, Any] = {
            "max_in_flight": max_in_flight,
            "nonce_retries": nonce_retries,
            "breaker_threshold": breaker_threshold,
            "breaker_cooldown": breaker_cooldown,
        }
        self._nonce_unit = nonce_unit
        self._force_unit = force_unit
        self._nonce_block = nonce_block
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self.close_grace = close_grace
        if tier is not None and tier not in TIERS:
            raise ConfigError(
                f"unknown Kraken tier {tier!r}; one of {', '.join(TIERS)}", exchange=self.exchange
            )
        self.pacer = Pacer(TIERS[tier], name=tier) if tier is not None else None
        if order_deadline_s is not None and not 2 <= order_deadline_s <= 60:
            raise ConfigError(
                "order_deadline_s must be within Kraken's 2..60 s", exchange=self.exchange
            )
        self.order_deadline_s = order_deadline_s
        self.clock = clock
        #: Several processes on this key, through Redis (None: this process alone).
        self.sharing = sharing
        #: More keys of the same account, each with its own strict lane (framework/pool.py).
        self._pool = [
            (k if isinstance(k, Secret) else Secret(k), v if isinstance(v, Secret) else Secret(v))
            for k, v in pool
        ]
        if self._pool and sharing is not None:
            raise ConfigError(
                "a key pool and a key shared through Redis do not combine yet",
                exchange=self.exchange,
            )
        self._tier = tier
        self._encoding: Literal["form", "json"] = body_encoding
        #: Kraken's pure parts for this key; the lane sends through the core's pipeline.
        self.wire = KrakenWire(
            self._api_key,
            self._api_secret,
            self.base_url,
            exchange=self.exchange,
            key_id=self.key_id,
            clock=clock,
            encoding=body_encoding,
            order_deadline_s=order_deadline_s,
            pacer=self.pacer,
        )

    @property
    def clock_offset_s(self) -> float:
        """Exchange time minus local time (s), from the Time endpoint; deadlines use it."""
        return self.wire.clock_offset_s

    @clock_offset_s.setter
    def clock_offset_s(self, offset: float) -> None:
        self.wire.clock_offset_s = offset

    def __repr__(self) -> str:
        return f"KrakenClient(key_id={self.key_id!r}, base_url={self.base_url!r})"

    # --- life cycle -----------------------------------------------------------------------

    async def __aenter__(self) -> KrakenClient:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def open(self) -> None:
        if self._store is None:
            self._store = SqliteStore(default_store_path())
        if self._history is None:
            self._history = NonceHistory(default_history_path())
        history = self._history

        def source(store: NonceStore) -> IncreasingNonces:
            made = self._nonces(store, self.key_id, history)
            if self.pacer is not None:  # the exchange's counters remember the last process
                self.pacer.idle_s = made.idle_s
            return made

        lane: dict[str, Any] = {
            "timeout": self._timeout,
            "history": history,
            "clock": self.clock,
            "pace": self.pacer.pace_call if self.pacer is not None else None,
            "wire": self.wire,
            **self._lane_options,
        }
        if self.sharing is None:
            self._start(source=source(self._store), **lane)
            if self._pool:
                self._lane = PoolLane(
                    [self.lane, *(self._pool_lane(k, s, history) for k, s in self._pool)]
                )
                self._lane.start()
        else:  # the sender's nonce source is made when this process takes the lease
            self._start_shared(
                self.sharing,
                source=source,
                local_store=self._store,
                warmup=PrivateCall("Balance"),
                **lane,
            )

    def _nonces(self, store: NonceStore, for_key: str, history: NonceHistory) -> IncreasingNonces:
        """The strictly increasing nonces of one key of this client."""
        return IncreasingNonces(
            store,
            for_key,
            unit=self._nonce_unit,
            clock=self.clock,
            max_value=KRAKEN_MAX,
            block=self._nonce_block,
            force_unit=self._force_unit,
            history=history,
        )

    def _pool_lane(self, api_key: Secret, api_secret: Secret, history: NonceHistory) -> Lane:
        """The strict lane of one more key of the account: its own wire, nonces and pacer
        (engine counters shared with the first key's), over this client's HTTP session."""
        assert self._store is not None
        pool_key_id = key_id(api_key)
        pacer = (
            Pacer(TIERS[self._tier], name=self._tier, account=self.pacer) if self._tier else None
        )
        wire = KrakenWire(
            api_key,
            api_secret,
            self.base_url,
            exchange=self.exchange,
            key_id=pool_key_id,
            clock=self.clock,
            encoding=self._encoding,
            order_deadline_s=self.order_deadline_s,
            pacer=pacer,
        )
        source = self._nonces(self._store, pool_key_id, history)
        return Lane(
            key_id=pool_key_id,
            wire=pipeline(wire, self.transport, key_id=pool_key_id),
            source=source,
            history=history,
            clock=self.clock,
            exchange=self.exchange,
            pace=pacer.pace_call if pacer is not None else None,
            **self._lane_options,
        )

    async def close(self) -> None:
        """Drain the lane (at most ``close_grace`` s), persist the nonce floor, close HTTP."""
        await self._stop()
        if self._owns_history and self._history is not None:
            self._history.close()
        if self._owns_store and isinstance(self._store, SqliteStore):
            self._store.close()

    # --- raw calls ------------------------------------------------------------------------

    async def private(self, endpoint: str, params: Mapping[str, Any] | None = None) -> Any:
        """Call ``/0/private/<endpoint>`` through the key's lane; return Kraken's ``result``."""
        return await self.lane.submit(PrivateCall(endpoint, dict(params or {})))

    async def private_batch(self, calls: Sequence[tuple[str, Mapping[str, Any]]]) -> list[Any]:
        """Several private calls as one contiguous block of the lane (results or errors)."""
        return await self.lane.submit_batch([PrivateCall(e, dict(p)) for e, p in calls])

    async def public(self, endpoint: str, params: Mapping[str, Any] | None = None) -> Any:
        """``GET /0/public/<endpoint>``; no nonce, no lane."""
        url = f"{self.base_url}/0/public/{endpoint}"
        query = {k: form_value(v) for k, v in (params or {}).items()}
        answer = await self._read(Request("GET", url, query=query), endpoint=endpoint)
        return self._parse(endpoint, answer.status, answer.body)

    def _parse(self, endpoint: str, status: int, payload: bytes) -> Any:
        return parse(endpoint, status, payload, exchange=self.exchange, key_id=self.key_id)

    # --- typed calls ----------------------------------------------------------------------

    async def balance(self) -> dict[str, Decimal]:
        """Asset → balance (``ZUSD``, ``XXBT``, ...)."""
        result = await self.private("Balance")
        return {str(asset): amount(value, asset) for asset, value in result.items()}

    async def add_order(
        self,
        *,
        pair: str,
        side: Literal["buy", "sell"],
        ordertype: str,
        volume: Decimal | str,
        price: Decimal | str | None = None,
        cl_ord_id: str | None = None,
        userref: int | None = None,
        validate: bool = False,
        **extra: Any,
    ) -> AddOrderResult:
        """Place one order. ``cl_ord_id`` and ``userref`` are mutually exclusive."""
        if side not in ("buy", "sell"):
            raise InvalidArguments(
                f"side must be 'buy' or 'sell'; got {side!r}", endpoint="AddOrder"
            )
        if order_amount(volume, "AddOrder", field="volume") <= 0:
            raise InvalidArguments(f"volume must be positive; got {volume}", endpoint="AddOrder")
        if ordertype == "limit" and price is None:
            raise InvalidArguments("a limit order needs a price", endpoint="AddOrder")
        if cl_ord_id is not None and userref is not None:
            raise InvalidArguments(
                "cl_ord_id and userref are mutually exclusive", endpoint="AddOrder"
            )
        params: dict[str, Any] = {
            "ordertype": ordertype,
            "pair": pair,
            "type": side,
            "volume": plain(volume),
            **extra,
        }
        optional = {"price": price, "cl_ord_id": cl_ord_id, "userref": userref}
        params.update({k: str(v) for k, v in optional.items() if v is not None})
        if price is not None:
            params["price"] = plain(price)
        if validate:
            params["validate"] = True
        result = await self.private("AddOrder", params)
        return AddOrderResult(
            txids=tuple(result.get("txid", ())),
            description=str(result.get("descr", {}).get("order", "")),
        )

    async def cancel_order(
        self, *, txid: str | None = None, cl_ord_id: str | None = None
    ) -> CancelResult:
        """Cancel by ``txid`` (or userref) or by ``cl_ord_id``."""
        if (txid is None) == (cl_ord_id is None):
            raise InvalidArguments("give exactly one of txid or cl_ord_id", endpoint="CancelOrder")
        params = {"txid": txid} if txid is not None else {"cl_ord_id": cl_ord_id}
        result = await self.private("CancelOrder", params)
        return CancelResult(
            count=int(result.get("count", 0)), pending=bool(result.get("pending", False))
        )

    async def query_orders(self, txids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Orders by txid (at most 50)."""
        if not 1 <= len(txids) <= 50:
            raise InvalidArguments("QueryOrders takes 1 to 50 txids", endpoint="QueryOrders")
        result: dict[str, dict[str, Any]] = await self.private(
            "QueryOrders", {"txid": ",".join(txids)}
        )
        return result

    async def open_orders(
        self, *, cl_ord_id: str | None = None, userref: int | None = None
    ) -> dict[str, dict[str, Any]]:
        """Open orders by txid, optionally filtered by ``cl_ord_id`` or ``userref``."""
        params = {
            k: v for k, v in (("cl_ord_id", cl_ord_id), ("userref", userref)) if v is not None
        }
        result = await self.private("OpenOrders", params)
        open_: dict[str, dict[str, Any]] = result.get("open", {})
        return open_

    async def server_time(self) -> ServerTime:
        result = await self.public("Time")
        return ServerTime(unixtime=int(result["unixtime"]), rfc1123=str(result["rfc1123"]))

    async def ticker(self, pair: str) -> Ticker:
        result = await self.public("Ticker", {"pair": pair})
        if not isinstance(result, dict) or not result:
            raise ExchangeError(
                f"Kraken Ticker returned nothing for {pair}",
                exchange=self.exchange,
                endpoint="Ticker",
            )
        data = next(iter(result.values()))
        return Ticker(
            pair=pair,
            ask=amount(data["a"][0], "ask", positive=True),
            bid=amount(data["b"][0], "bid", positive=True),
            last=amount(data["c"][0], "last", positive=True),
            time=wall(self.clock),
        )
