"""Kraken as a :class:`~framework.venue.Venue`: KrakenClient calls in Orderly's types."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from typing import Any

from framework.call import PrivateCall
from framework.clock import SYSTEM_CLOCK, Clock, wall
from framework.config import Config
from framework.errors import ConfigError, ExchangeError, OrderlyError, RateLimited
from framework.events import Fill, Ticker
from framework.exchanges.base import (
    SHAPE_ERRORS,
    ClientVenue,
    history_from,
    sharing_of,
)
from framework.exchanges.kraken.client import DEFAULT_BASE_URL, KrakenClient
from framework.exchanges.kraken.errors import DUPLICATE_CL_ORD_ID, EXCHANGE, translate
from framework.exchanges.kraken.key_info import key_report
from framework.exchanges.kraken.order_fields import (
    PairInfo,
    Precision,
    amend_params,
    order_params,
    pair_info,
    venue_order,
    venue_trade,
)
from framework.exchanges.kraken.spec import SECRETS, KrakenSettings
from framework.exchanges.kraken.stream import (
    KRAKEN_WS,
    KRAKEN_WS_AUTH,
    KrakenStreams,
    ws_symbol,
    ws_urls_of,
)
from framework.exchanges.kraken.ws_orders import OrderSocket, v2_order
from framework.market import Market
from framework.nonce import SqliteStore
from framework.orders import Order
from framework.registry import settings_of
from framework.venue import Amend, PairAssets, VenueOrder

MAX_BATCH = 15


class KrakenVenue(ClientVenue[KrakenClient]):
    """A Venue over one KrakenClient (one key, one lane)."""

    max_batch = MAX_BATCH
    persistent = True
    streaming = True

    def __init__(
        self,
        client: KrakenClient,
        name: str = EXCHANGE,
        ws_urls: tuple[str, str] = (KRAKEN_WS, KRAKEN_WS_AUTH),
    ) -> None:
        self.name = name
        self.client = client
        self.ws_urls = ws_urls
        self.key_id = client.key_id
        self._pairs: dict[str, PairInfo] = {}  # pair -> what its AssetPairs entry says

    async def _pair_info(self, pair: str) -> PairInfo:
        """The pair's AssetPairs entry, asked until one can be read, then kept."""
        if pair not in self._pairs:
            result = await self.client.public("AssetPairs", {"pair": pair})
            if not isinstance(result, dict) or not result:
                raise ConfigError(f"Kraken does not know the pair {pair!r}", exchange=EXCHANGE)
            self._pairs[pair] = pair_info(pair, next(iter(result.values())))
        return self._pairs[pair]

    async def _precision(self, pair: str) -> Precision:
        """The pair's price and volume decimals; unknown when Kraken cannot say now (the
        amounts then go as given, in plain decimals)."""
        try:
            return (await self._pair_info(pair)).precision
        except (OrderlyError, *SHAPE_ERRORS):
            return (None, None)

    async def _ws_token(self) -> str:
        """A WebSocket token: a private call, so through the key's lane."""
        return str((await self.client.private("GetWebSocketsToken", {}))["token"])

    #: With ``[exchange] order_entry = "ws"``: orders and cancels go by WebSocket.
    order_socket: OrderSocket | None = None

    async def _ws_call(self, rest: PrivateCall, method: str, params: dict[str, Any]) -> Any:
        """One order method over the WebSocket, paced as its REST twin ``rest`` (Kraken
        shares the engine counter between them); as on REST, a rate-limit refusal tells the
        pacer, and so does an answer (the client ids in ``rest``: placement times)."""
        assert self.order_socket is not None
        pacer = self.client.pacer
        if pacer is not None:
            await pacer.pace_call(rest)
        try:
            result = await self.order_socket.call(method, params)
        except RateLimited:
            if pacer is not None:
                pacer.refused(rest)
            raise
        if pacer is not None:
            pacer.answered(rest, {})
        return result

    async def _ws_place(self, orders: Sequence[tuple[Order, str]]) -> list[str | OrderlyError]:
        assert self.order_socket is not None
        pair = orders[0][0].pair
        precision = await self._precision(pair)
        symbol = await self._ws_symbol(pair)
        common = {"symbol": symbol, "deadline": self._deadline()}
        refs = [{"cl_ord_id": cid} for _, cid in orders]  # the REST twin, for the pacer
        rest = (
            PrivateCall("AddOrder", {"pair": pair, **refs[0]})
            if len(orders) == 1
            else PrivateCall("AddOrderBatch", {"pair": pair, "orders": refs})
        )
        fields = [v2_order(order_params(o, cid, precision)) for o, cid in orders]
        if len(orders) == 1:
            result = await self._ws_call(rest, "add_order", {**fields[0], **common})
            return [str(result["order_id"])]
        results = await self._ws_call(rest, "batch_add", {**common, "orders": fields})
        if not isinstance(results, list) or len(results) != len(orders):
            raise ExchangeError(
                "batch_add answered a different number of orders",
                exchange=EXCHANGE,
                endpoint="batch_add",
            )
        return [
            str(r["order_id"])
            if "order_id" in r
            else translate([str(r.get("error"))], endpoint="batch_add", key_id=self.key_id)
            for r in results
        ]

    def _deadline(self) -> str:
        """Kraken's ``deadline`` for an order call sent now (60 s with no order deadline)."""
        return self.client.wire.deadline_in(self.client.order_deadline_s or 60)

    async def _ws_symbol(self, pair: str) -> str:
        return ws_symbol((await self._pair_info(pair)).wsname)

    async def place(self, order: Order, cl_ord_id: str) -> str:
        if self.order_socket is not None:
            (placed,) = await self._ws_place([(order, cl_ord_id)])
            assert isinstance(placed, str)
            return placed
        precision = await self._precision(order.pair)
        result = await self.client.private(
            "AddOrder", {"pair": order.pair, **order_params(order, cl_ord_id, precision)}
        )
        txids = result.get("txid") if isinstance(result, dict) else None
        if not txids:
            raise ExchangeError(
                "AddOrder answered without a txid", exchange=EXCHANGE, endpoint="AddOrder"
            )
        return str(txids[0])

    async def place_batch(self, orders: Sequence[tuple[Order, str]]) -> list[str | OrderlyError]:
        if self.order_socket is not None:
            return await self._ws_place(orders)
        pair = orders[0][0].pair
        precision = await self._precision(pair)
        body = {"pair": pair, "orders": [order_params(o, cid, precision) for o, cid in orders]}
        result = await self.client.private("AddOrderBatch", body)
        answers = result.get("orders", []) if isinstance(result, dict) else []
        if len(answers) != len(orders):
            raise ExchangeError(
                f"AddOrderBatch answered {len(answers)} results for {len(orders)} orders",
                exchange=EXCHANGE,
                endpoint="AddOrderBatch",
            )
        out: list[str | OrderlyError] = []
        for answer in answers:
            if answer.get("error"):
                out.append(
                    translate([str(answer["error"])], endpoint="AddOrderBatch", key_id=self.key_id)
                )
            else:
                out.append(str(answer["txid"]))
        return out

    @property
    def order_deadline_s(self) -> float | None:
        return self.client.order_deadline_s

    async def find(self, cl_ord_id: str) -> VenueOrder | None:
        """OpenOrders, then ClosedOrders, filtered by ``cl_ord_id`` (Kraken's own advice)."""
        found = await self.client.open_orders(cl_ord_id=cl_ord_id)
        if not found:
            result = await self.client.private("ClosedOrders", {"cl_ord_id": cl_ord_id})
            found = result.get("closed", {}) if isinstance(result, dict) else {}
        return next((venue_order(t, raw) for t, raw in found.items()), None)

    async def find_many(self, cl_ord_ids: Sequence[str], *, since: float) -> dict[str, VenueOrder]:
        """All open orders (one call), then the orders closed since ``since`` (50 a page),
        matched by client order id: a lost batch costs a few calls, not two per order."""
        if len(cl_ord_ids) == 1:
            one = await self.find(cl_ord_ids[0])
            return {cl_ord_ids[0]: one} if one is not None else {}
        wanted, found = set(cl_ord_ids), {}
        for order in await self.open_orders():
            if order.cl_ord_id in wanted:
                found[order.cl_ord_id] = order
        offset = 0
        while wanted - set(found) and offset < 5_000:
            result = await self.client.private("ClosedOrders", {"start": since, "ofs": offset})
            closed = result.get("closed", {}) if isinstance(result, dict) else {}
            for txid, raw in closed.items():
                order = venue_order(txid, raw)
                if order.cl_ord_id in wanted:
                    found[order.cl_ord_id] = order
            offset += len(closed)
            if not closed or offset >= int(result.get("count", 0)):
                break
        return found

    def is_duplicate(self, exc: OrderlyError) -> bool:
        return exc.code == DUPLICATE_CL_ORD_ID

    async def cancel(self, cl_ord_id: str, *, pair: str, txid: str | None) -> None:
        if self.order_socket is not None:
            rest = PrivateCall("CancelOrder", {"cl_ord_id": cl_ord_id})
            await self._ws_call(rest, "cancel_order", {"cl_ord_id": [cl_ord_id]})
            return
        await self.client.cancel_order(cl_ord_id=cl_ord_id)

    can_amend = True

    async def amend(self, cl_ord_id: str, change: Amend) -> None:
        fields = amend_params(cl_ord_id, change, await self._precision(change.pair))
        if self.order_socket is not None:  # v2 amend_order: the same fields, amounts as numbers
            v2 = {k: v if k in ("cl_ord_id", "post_only") else float(v) for k, v in fields.items()}
            v2["deadline"] = self._deadline()
            await self._ws_call(PrivateCall("AmendOrder", fields), "amend_order", v2)
            return
        await self.client.private("AmendOrder", fields)

    async def arm_dead_man(self, timeout_s: int) -> None:
        await self.client.private("CancelAllOrdersAfter", {"timeout": int(timeout_s)})

    async def key_report(self) -> list[str]:
        pacer = self.client.pacer
        note = pacer.restart_note() if pacer is not None else None
        return [*await key_report(self.client), *([note] if note else [])]

    async def clock_offset(self) -> float:
        """From the Time endpoint (whole seconds), against the middle of the round trip.
        Offsets under a second are below what Kraken's Time can show and are not applied."""
        clock = self.client.clock
        before = wall(clock)
        server = (await self.client.server_time()).unixtime
        after = wall(clock)
        offset = server + 0.5 - (before + after) / 2
        self.client.clock_offset_s = offset if abs(offset) >= 1.0 else 0.0
        return offset

    async def cancel_all(self) -> int:
        result = await self.client.private("CancelAll")
        return int(result.get("count", 0))

    async def balances(self) -> dict[str, Decimal]:
        return await self.client.balance()

    async def open_orders(self) -> list[VenueOrder]:
        return [venue_order(t, raw) for t, raw in (await self.client.open_orders()).items()]

    async def query_orders(self, txids: Sequence[str]) -> list[VenueOrder]:
        found: list[VenueOrder] = []
        for start in range(0, len(txids), 50):
            result = await self.client.query_orders(txids[start : start + 50])
            found += [venue_order(t, raw) for t, raw in result.items()]
        return found

    async def fills_since(self, since: float) -> list[tuple[str, Fill]]:
        fills: list[tuple[str, Fill]] = []
        offset = 0
        while True:  # newest first, 50 a page; bounded by the count Kraken reports
            result = await self.client.private("TradesHistory", {"start": since, "ofs": offset})
            trades = result.get("trades", {})
            fills += [venue_trade(trade_id, t) for trade_id, t in trades.items()]
            offset += len(trades)
            if not trades or offset >= int(result.get("count", 0)) or offset >= 5_000:
                return fills

    async def ticker(self, pair: str) -> Ticker:
        return await self.client.ticker(pair)

    async def stream(self, sink: Any, pairs: Sequence[str]) -> None:
        """Kraken WebSocket v2 (framework/exchanges/kraken/stream.py) until cancelled."""
        streams = KrakenStreams(
            url=self.ws_urls[0],
            auth_url=self.ws_urls[1],
            symbols={ws_symbol((await self._pair_info(p)).wsname): p for p in pairs},
            token=self._ws_token,
            clock=self.client.clock,
        )
        await streams.run(sink)

    async def pair_assets(self, pair: str) -> PairAssets:
        return (await self._pair_info(pair)).assets

    async def market(self, pair: str) -> Market:
        return (await self._pair_info(pair)).market


@contextlib.asynccontextmanager
async def open_venue(config: Config) -> AsyncIterator[KrakenVenue]:
    """The real Kraken, with the key from the environment, .env or the secrets file."""
    settings = settings_of(config, KrakenSettings)
    api_key, api_secret = (config.secret(name) for name in SECRETS)
    tier = None if settings.tier == "none" else settings.tier
    base_url = config.exchange.base_url or DEFAULT_BASE_URL
    pool = [
        (config.secret(f"{SECRETS[0]}_{n}"), config.secret(f"{SECRETS[1]}_{n}"))
        for n in range(2, settings.pool_keys + 1)
    ]
    async with kraken_venue(
        config,
        api_key,
        api_secret,
        base_url,
        tier=tier,
        pool=pool,
        ws_urls=ws_urls_of(config),
    ) as venue:
        yield venue


@contextlib.asynccontextmanager
async def kraken_venue(
    config: Config,
    api_key: Any,
    api_secret: Any,
    base_url: str,
    name: str = EXCHANGE,
    tier: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
    order_deadline_s: float | None = None,
    pool: Sequence[tuple[Any, Any]] = (),
    ws_urls: tuple[str, str] | None = None,
) -> AsyncIterator[KrakenVenue]:
    """A KrakenVenue whose store, history and lane follow ``config``; the order deadline
    is ``order_deadline_s``, or else the config's Kraken key of that name."""
    if order_deadline_s is None:
        order_deadline_s = settings_of(config, KrakenSettings).order_deadline_s
    store = SqliteStore(config.state.store)
    history = history_from(config)
    nonce = config.nonce
    client = KrakenClient(
        api_key,
        api_secret,
        base_url,
        store=store,
        history=history,
        nonce_unit=nonce.unit,
        force_unit=nonce.force_unit,
        nonce_block=nonce.reserve_block,
        max_in_flight=nonce.max_in_flight,
        nonce_retries=nonce.retries,
        breaker_threshold=nonce.breaker_threshold,
        breaker_cooldown=nonce.breaker_cooldown_s,
        timeout=config.exchange.timeout_s,
        close_grace=config.runner.drain_timeout_s,
        tier=tier,
        order_deadline_s=order_deadline_s,
        clock=clock,
        sharing=sharing_of(config),
        pool=pool,
    )
    venue = KrakenVenue(client, name, *([ws_urls] if ws_urls else []))
    if settings_of(config, KrakenSettings).order_entry == "ws":
        venue.order_socket = OrderSocket(
            venue.ws_urls[1],
            venue._ws_token,
            key_id=client.key_id,
            exchange=name,
            timeout_s=config.exchange.timeout_s,
        )
    try:
        async with client:
            try:
                yield venue
            finally:
                if venue.order_socket is not None:
                    await venue.order_socket.close()
    finally:
        history.close()
        store.close()
