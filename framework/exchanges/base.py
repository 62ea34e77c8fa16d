"""What every exchange client shares: one aiohttp session and one lane per key.

A client subclasses :class:`LaneClient`, sets ``exchange`` and ``key_id``, and calls
:meth:`_start` and :meth:`_stop` from its own open/close. It hands the lane its exchange's
pure parts (an :class:`~framework.transport.ExchangeWire`): the core's pipeline builds,
signs, sends and parses, so the lane never calls back into the client. Every HTTP exchange
goes through the core's transport (framework/transport.py), the one place a failed send is
given its meaning.

**Answers Orderly cannot read.** Parsing an exchange's answer is Python code reading data
someone else wrote: a missing key, a list where a dict was, ``"NaN"`` where an amount was.
Every public coroutine of a client and every Venue call is guarded (``__init_subclass__``):
what such parsing raises (``SHAPE_ERRORS``) leaves it as an :class:`ExchangeError` naming
the exchange, the call and what was wrong, or as :class:`AmbiguousOutcome` when the call
changes state (it may have run). Amounts are read with :func:`amount`: finite, in range,
never a boolean.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Collection, Coroutine, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import aiohttp

from framework.call import KeyLane, LaneStats, PrivateCall, Wire
from framework.config import Config
from framework.dispatch import Lane
from framework.errors import AmbiguousOutcome, ExchangeError, OrderlyError, UsageError
from framework.events import Fill
from framework.log import get_logger
from framework.market import Market
from framework.nonce.history import NonceHistory
from framework.nonce.source import NonceSource
from framework.nonce.store import NonceStore
from framework.transport import (
    USER_AGENT,
    AiohttpTransport,
    Answer,
    ExchangeWire,
    Request,
    exchange,
    pipeline,
)
from framework.venue import Amend, VenueOrder

if TYPE_CHECKING:
    from framework.shared import Sharing

#: What Python raises while reading an answer of an unexpected shape.
SHAPE_ERRORS = (KeyError, IndexError, TypeError, AttributeError, ValueError, ArithmeticError)
#: The largest amount believed (prices, volumes, balances, fees).
MAX_AMOUNT = Decimal(10) ** 18
#: Venue calls, and whether each changes state at the exchange.
VENUE_CALLS: dict[str, bool] = {
    "place": True,
    "place_batch": True,
    "cancel": True,
    "amend": True,
    "cancel_all": True,
    "arm_dead_man": True,
    "find": False,
    "find_many": False,
    "balances": False,
    "open_orders": False,
    "query_orders": False,
    "fills_since": False,
    "ticker": False,
    "clock_offset": False,
    "pair_assets": False,
    "market": False,
}


def amount(value: Any, what: str = "amount", *, positive: bool = False) -> Decimal:
    """An amount from an answer: a number or numeric string, finite, under 1e18 (and above
    0 when ``positive``); else ValueError, which a guarded call reports as unreadable."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ValueError(f"{what} is not a number: {value!r:.40}")
    number = Decimal(str(value).strip())
    if not number.is_finite() or abs(number) >= MAX_AMOUNT or (positive and number <= 0):
        raise ValueError(f"{what} is out of range: {value!r:.40}")
    return number


def plain(value: Decimal | str | int) -> str:
    """An amount as the wire takes it: plain decimal digits, never an exponent
    (``Decimal("3E+4")`` is ``30000``, ``Decimal("1E-8")`` is ``0.00000001``)."""
    return format(Decimal(value), "f")


def unreadable(
    exc: BaseException, *, exchange: str, endpoint: str, key_id: str | None, mutating: bool
) -> OrderlyError:
    """The typed error for an answer whose shape Orderly could not read."""
    detail = f"{type(exc).__name__}: {exc}"[:200]
    if mutating:
        return AmbiguousOutcome(
            f"{exchange} answered {endpoint} in a shape Orderly cannot read ({detail});"
            " the call may have run",
            exchange=exchange,
            code="unreadable answer",
            endpoint=endpoint,
            key_id=key_id,
        )
    return ExchangeError(
        f"{exchange} answered {endpoint} in a shape Orderly cannot read ({detail})",
        exchange=exchange,
        code="unreadable answer",
        endpoint=endpoint,
        key_id=key_id,
    )


Method = Callable[..., Coroutine[Any, Any, Any]]


def _guarded(method: Method, name: str, mutating: bool) -> Method:
    @functools.wraps(method)
    async def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await method(self, *args, **kwargs)
        except SHAPE_ERRORS as exc:
            exchange = str(getattr(self, "name", None) or getattr(self, "exchange", ""))
            raise unreadable(
                exc,
                exchange=exchange,
                endpoint=name,
                key_id=getattr(self, "key_id", None),
                mutating=mutating,
            ) from None

    return call


def guard(cls: type, names: Collection[str], mutating: Collection[str]) -> None:
    """Guard ``cls``'s own coroutine methods among ``names`` (see the module's text)."""
    for name in names:
        method = cls.__dict__.get(name)
        if inspect.iscoroutinefunction(method):
            setattr(cls, name, _guarded(method, name, name in mutating))


class LaneClient:
    exchange: ClassVar[str] = ""
    #: The client's public calls that change state at the exchange (the rest only read).
    state_changing: ClassVar[frozenset[str]] = frozenset()
    #: Calls that hand back the answer as the exchange sent it (nothing parsed): unguarded.
    raw_calls: ClassVar[frozenset[str]] = frozenset({"private", "public", "read", "info"})
    key_id: str
    _session: aiohttp.ClientSession | None = None
    _lane: KeyLane | None = None
    _transport: AiohttpTransport | None = None
    #: Longest wait, when closing, for calls still queued or in flight (None: no limit).
    close_grace: float | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        parsing = [n for n in cls.__dict__ if not n.startswith("_") and n not in cls.raw_calls]
        guard(cls, parsing, cls.state_changing)

    def _start(
        self,
        *,
        timeout: aiohttp.ClientTimeout,
        headers: Mapping[str, str] | None = None,
        wire: ExchangeWire,
        **lane: Any,
    ) -> None:
        """Open the HTTP session and start the key's lane (``lane`` = Lane's options); the
        lane sends through the core's pipeline with ``wire``, the exchange's pure parts."""
        send = self._open_transport(timeout, headers, wire)
        self._lane = Lane(key_id=self.key_id, wire=send, exchange=self.exchange, **lane)
        self._lane.start()

    def _start_shared(
        self,
        sharing: Sharing,
        *,
        timeout: aiohttp.ClientTimeout,
        wire: ExchangeWire,
        source: Callable[[NonceStore], NonceSource],
        local_store: NonceStore,
        warmup: PrivateCall,
        **lane: Any,
    ) -> None:
        """As :meth:`_start`, for a key several processes share through Redis: the lane
        sends through whichever process holds the key's lease (framework/shared.py);
        ``source(store)`` makes this process's nonce source when it becomes the sender."""
        from framework.shared import SharedLane  # redis is imported only when it is used

        send = self._open_transport(timeout, None, wire)
        self._lane = SharedLane(
            sharing,
            key_id=self.key_id,
            exchange=self.exchange,
            wire=send,
            mutating=wire.mutating,
            source=source,
            local_store=local_store,
            warmup=warmup,
            **lane,
        )
        self._lane.start()

    def _open_transport(
        self, timeout: aiohttp.ClientTimeout, headers: Mapping[str, str] | None, wire: ExchangeWire
    ) -> Wire:
        self._session = aiohttp.ClientSession(
            timeout=timeout, headers={"User-Agent": USER_AGENT, **(headers or {})}
        )
        self._transport = AiohttpTransport(self._session)
        return pipeline(wire, self._transport, key_id=self.key_id)

    async def _stop(self) -> None:
        """Drain the lane (at most ``close_grace`` s; it persists the nonce floor), close
        HTTP."""
        if self._lane is not None:
            await self._lane.close(self.close_grace)
        if self._session is not None:
            await self._session.close()

    def _not_open(self) -> UsageError:
        return UsageError(
            f"{type(self).__name__} is not open: use `async with` on it", exchange=self.exchange
        )

    @property
    def lane(self) -> KeyLane:
        if self._lane is None:
            raise self._not_open()
        return self._lane

    @property
    def transport(self) -> AiohttpTransport:
        """The core's transport over this client's session."""
        if self._transport is None:
            raise self._not_open()
        return self._transport

    async def _read(self, request: Request, *, endpoint: str) -> Answer:
        """One call beside the lane (public data, unsigned or nonce-free reads), through
        the core's transport (framework/transport.py, the one place a failed send is given
        its meaning); nothing it sends changes state."""
        return await exchange(
            self.transport,
            request,
            endpoint=endpoint,
            mutating=False,
            name=self.exchange,
            key_id=self.key_id,
        )


Client = TypeVar("Client", bound=LaneClient)


class WireClock:
    """A client whose wire learns the exchange's clock (``clock_offset_ms``: server minus
    local, ms) from answers: Bitunix's HTTP Date header, Synthetix's ``timestamp``."""

    wire: Any

    @property
    def clock_offset_ms(self) -> float:
        return float(self.wire.clock_offset_ms)

    @clock_offset_ms.setter
    def clock_offset_ms(self, offset: float) -> None:
        self.wire.clock_offset_ms = offset


class ClientVenue(Generic[Client]):
    """What a venue over one :class:`LaneClient` shows the runner about its lane: the
    counters, and a way to stop it at once (a forced exit still writes the nonce floor)."""

    client: Client

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        guard(cls, VENUE_CALLS, {name for name, changes in VENUE_CALLS.items() if changes})

    @property
    def lane(self) -> KeyLane:
        return self.client.lane

    @property
    def stats(self) -> LaneStats:
        return self.client.lane.stats

    @property
    def broken(self) -> OrderlyError | None:
        """Why the key's lane stopped sending for good (a state file it cannot write)."""
        return self.client.lane.broken

    async def abort(self) -> None:
        await self.client.lane.close(grace=0)

    #: Whether :meth:`stream` pushes real-time data (the runner polls otherwise).
    streaming = False

    async def stream(self, sink: Any, pairs: Sequence[str]) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not stream")

    async def find(self, cl_ord_id: str) -> VenueOrder | None:
        raise NotImplementedError

    async def key_report(self) -> list[str]:
        return []  # an exchange with nothing to say about the key beyond the Balance check

    can_amend = False  # the order manager refuses ctx.amend before calling amend

    async def market(self, pair: str) -> Market:
        return Market(pair)  # an exchange whose rules Orderly does not read: all unknown

    async def amend(self, cl_ord_id: str, change: Amend) -> None:
        raise NotImplementedError(f"{type(self).__name__} cannot amend an order")

    async def find_many(self, cl_ord_ids: Sequence[str], *, since: float) -> dict[str, VenueOrder]:
        """One :meth:`find` per id; a venue that can look many up at once overrides it."""
        found = {}
        for cl_ord_id in cl_ord_ids:
            order = await self.find(cl_ord_id)
            if order is not None:
                found[cl_ord_id] = order
        return found


def sharing_of(config: Config) -> Sharing | None:
    """How ``[state]`` shares the key with other processes (None: the SQLite default, one
    process per key)."""
    state = config.state
    if state.backend != "redis":
        return None
    from framework.shared import Sharing  # redis is imported only when it is used

    assert state.redis_url is not None  # the config's model refuses redis without a URL
    return Sharing(state.redis_url, ttl_s=state.lease_ttl_s, sender=state.sender)


def history_from(config: Config) -> NonceHistory:
    """The nonce history ``[state]`` asks for (file, rotation size, backups)."""
    state = config.state
    return NonceHistory(
        state.history,
        max_bytes=int(state.history_max_mb * 1024 * 1024),
        backups=state.history_backups,
    )


def venue_fill(
    *,
    order_id: Any,
    trade_id: Any,
    pair: Any,
    side: Any,
    price: Any,
    volume: Any,
    fee: Any,
    maker: bool,
    at: float,
    alt_id: Any = None,
) -> tuple[str, Fill]:
    """One exchange trade as a Venue reports it: ``(order id, Fill)``, amounts as Decimal
    from the exchange's strings, the fee as a positive cost, the client order id left empty
    for the order book to fill in."""
    txid = str(order_id)
    return txid, Fill(
        trade_id=str(trade_id),
        cl_ord_id="",
        txid=txid,
        pair=str(pair),
        side=str(side).lower(),
        price=amount(price, "price", positive=True),
        volume=amount(volume, "volume", positive=True),
        fee=abs(amount(fee or "0", "fee")),
        maker=maker,
        time=float(at),
        alt_id=None if alt_id is None or alt_id == "" else str(alt_id),
    )


class NoDeadMan:
    """For a venue whose exchange documents no cancel-all-after: arming does nothing, and
    says so once, so a killed bot's orders stay on the book."""

    name: str
    _dead_man_warned = False

    async def arm_dead_man(self, timeout_s: int) -> None:
        if timeout_s and not self._dead_man_warned:
            self._dead_man_warned = True
            get_logger("framework.exchanges").warning(
                "dead_man_unsupported",
                exchange=self.name,
                detail="no documented cancel-all-after: orders stay if the bot dies",
            )
