"""What every exchange client shares: one aiohttp session and one lane per key.

A client subclasses :class:`LaneClient`, sets ``exchange`` and ``key_id``, and calls
:meth:`_start` and :meth:`_stop` from its own open/close. It hands the lane its exchange's
pure parts (an :class:`~framework.transport.ExchangeWire`): the core's pipeline builds,
signs, sends and parses, so the lane never calls back into the client. Every HTTP exchange
goes through the core's transport (framework/transport.py), the one place a failed send is
given its meaning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, ClassVar, Generic, TypeVar

import aiohttp

from framework.call import LaneStats
from framework.config import Config
from framework.dispatch import Lane
from framework.errors import UsageError
from framework.events import Fill
from framework.log import get_logger
from framework.nonce.history import NonceHistory
from framework.transport import (
    USER_AGENT,
    AiohttpTransport,
    Answer,
    ExchangeWire,
    Request,
    exchange,
    pipeline,
)
from framework.venue import VenueOrder


class LaneClient:
    exchange: ClassVar[str] = ""
    key_id: str
    _session: aiohttp.ClientSession | None = None
    _lane: Lane | None = None
    _transport: AiohttpTransport | None = None
    #: Longest wait, when closing, for calls still queued or in flight (None: no limit).
    close_grace: float | None = None

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
        self._session = aiohttp.ClientSession(
            timeout=timeout, headers={"User-Agent": USER_AGENT, **(headers or {})}
        )
        self._transport = AiohttpTransport(self._session)
        send = pipeline(wire, self._transport, key_id=self.key_id)
        self._lane = Lane(key_id=self.key_id, wire=send, exchange=self.exchange, **lane)
        self._lane.start()

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
    def lane(self) -> Lane:
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


class ClientVenue(Generic[Client]):
    """What a venue over one :class:`LaneClient` shows the runner about its lane: the
    counters, and a way to stop it at once (a forced exit still writes the nonce floor)."""

    client: Client

    @property
    def lane(self) -> Lane:
        return self.client.lane

    @property
    def stats(self) -> LaneStats:
        return self.client.lane.stats

    async def abort(self) -> None:
        await self.client.lane.close(grace=0)

    async def find(self, cl_ord_id: str) -> VenueOrder | None:
        raise NotImplementedError

    async def find_many(self, cl_ord_ids: Sequence[str], *, since: float) -> dict[str, VenueOrder]:
        """One :meth:`find` per id; a venue that can look many up at once overrides it."""
        found = {}
        for cl_ord_id in cl_ord_ids:
            order = await self.find(cl_ord_id)
            if order is not None:
                found[cl_ord_id] = order
        return found


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
        price=Decimal(str(price)),
        volume=Decimal(str(volume)),
        fee=abs(Decimal(str(fee or "0"))),
        maker=maker,
        time=at,
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
