"""Execution: sends a strategy's orders through a Venue and turns what the exchange reports
into events (order updates and fills), in order, without duplicates.

    place(order)          record (client order id) -> send -> ACCEPTED / REJECTED / UNKNOWN
    place_batch(orders)   record all -> one venue batch call per pair and chunk of
                          ``venue.max_batch`` (one nonce each) -> per-order results mapped back
    poll()                fills since the last poll (de-duplicated by trade id), then the
                          final state of orders that left the exchange's open list

Exchange refusals do not raise: the order comes back REJECTED with the exchange's reason, and
the same update is delivered to ``on_order``. A send whose answer was lost leaves the order
UNKNOWN; ``poll`` finds it again by its client order id when it is open.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

from framework.errors import AmbiguousOutcome, InvalidRequest, OrderlyError, OrderRejected
from framework.events import Fill, OrderState, OrderUpdate
from framework.log import get_logger
from framework.orders import Order, OrderBook, TrackedOrder, batches
from framework.venue import Venue, VenueOrder

log = get_logger("framework.execution")

Emit = Callable[[OrderUpdate | Fill], None]

#: The state an order reaches when the exchange reports it closed with this status.
_FINAL = {
    "closed": OrderState.FILLED,
    "canceled": OrderState.CANCELLED,
    "expired": OrderState.CANCELLED,
}
#: How far back (s) each fills poll reaches before the newest fill seen; trade ids dedupe.
_OVERLAP_S = 5.0


class Execution:
    """Orders of one strategy on one venue."""

    def __init__(self, venue: Venue, emit: Emit, *, since: float | None = None) -> None:
        self.venue = venue
        self.book = OrderBook()
        self._emit = emit
        self._since = since if since is not None else time.time()
        self.accepting = True
        self.fills = 0

    def _update(self, order: TrackedOrder, state: OrderState, reason: str | None = None) -> None:
        if self.book.move(order, state, reason):
            self._emit(order.snapshot())

    def _refused(self, order: TrackedOrder, exc: OrderlyError) -> None:
        if isinstance(exc, AmbiguousOutcome):
            log.warning("order_outcome_unknown", cl_ord_id=order.cl_ord_id, error=str(exc))
            self._update(order, OrderState.UNKNOWN, str(exc))
        else:
            log.info("order_rejected", cl_ord_id=order.cl_ord_id, code=exc.code, error=str(exc))
            self._update(order, OrderState.REJECTED, exc.code or str(exc))

    def _accepted(self, order: TrackedOrder, txid: str) -> None:
        self.book.set_txid(order, txid)
        self._update(order, OrderState.ACCEPTED)

    def _record(self, requests: Sequence[Order]) -> list[TrackedOrder]:
        orders = [self.book.record(r) for r in requests]
        if not self.accepting:
            for order in orders:
                self._update(order, OrderState.REJECTED, "the bot is stopping")
        return orders

    async def place(self, request: Order) -> OrderUpdate:
        (order,) = self._record([request])
        if order.state is OrderState.SUBMITTED:
            await self._send_one(order)
        return order.snapshot()

    async def _send_one(self, order: TrackedOrder) -> None:
        try:
            txid = await self.venue.place(order.request, order.cl_ord_id)
        except OrderlyError as exc:
            self._refused(order, exc)
        else:
            self._accepted(order, txid)

    async def place_batch(self, requests: Sequence[Order]) -> list[OrderUpdate]:
        orders = self._record(requests)
        if self.accepting:
            for chunk in batches(requests, self.venue.max_batch):
                await self._send_chunk([orders[i] for i in chunk])
        return [o.snapshot() for o in orders]

    async def _send_chunk(self, chunk: list[TrackedOrder]) -> None:
        if len(chunk) == 1:
            await self._send_one(chunk[0])
            return
        try:
            results = await self.venue.place_batch([(o.request, o.cl_ord_id) for o in chunk])
        except OrderlyError as exc:
            for order in chunk:
                self._refused(order, exc)
            return
        for order, result in zip(chunk, results, strict=True):
            if isinstance(result, OrderlyError):
                self._refused(order, result)
            else:
                self._accepted(order, result)

    async def cancel(self, target: OrderUpdate | str) -> bool:
        """Cancel one order; False if it was no longer open."""
        cl_ord_id = target if isinstance(target, str) else target.cl_ord_id
        order = self.book.get(cl_ord_id)
        if order is None:
            raise InvalidRequest(f"no order with client order id {cl_ord_id!r}")
        if not order.state.is_open:
            return False
        try:
            await self.venue.cancel(cl_ord_id)
        except OrderRejected as exc:  # already gone (filled or cancelled): poll will tell
            log.info("cancel_refused", cl_ord_id=cl_ord_id, code=exc.code)
            return False
        self._update(order, OrderState.CANCELLED, "cancelled by the strategy")
        return True

    async def cancel_all(self) -> int:
        """Cancel every open order of the key (CancelAll), then mark ours cancelled."""
        count = await self.venue.cancel_all()
        for order in self.book.open():
            self._update(order, OrderState.CANCELLED, "cancel all")
        return count

    # --- polling --------------------------------------------------------------------------

    async def poll(self) -> None:
        """Fetch new fills and final states; emit what changed, oldest first."""
        await self._poll_fills()
        await self._poll_states()

    async def _poll_fills(self) -> None:
        found = await self.venue.fills_since(self._since - _OVERLAP_S)
        for txid, fill in sorted(found, key=lambda item: item[1].time):
            order = self.book.by_txid(txid)
            if order is None:  # not placed by this strategy
                continue
            fill = dataclasses.replace(fill, cl_ord_id=order.cl_ord_id, pair=order.request.pair)
            if not self.book.apply_fill(order, fill):
                continue
            self.fills += 1
            self._since = max(self._since, fill.time)
            self._emit(fill)
            full = order.filled >= order.request.volume
            self._update(order, OrderState.FILLED if full else OrderState.PARTIALLY_FILLED)

    async def _poll_states(self) -> None:
        tracked = [o for o in self.book.open() if o.txid or o.state is OrderState.UNKNOWN]
        if not tracked:
            return
        still_open = {v.txid: v for v in await self.venue.open_orders()}
        by_cl_ord_id = {v.cl_ord_id: v for v in still_open.values() if v.cl_ord_id}
        for order in tracked:
            if order.state is OrderState.UNKNOWN and order.cl_ord_id in by_cl_ord_id:
                self._accepted(order, by_cl_ord_id[order.cl_ord_id].txid)
        gone = [o.txid for o in tracked if o.txid and o.txid not in still_open]
        if gone:
            for reported in await self.venue.query_orders(gone):
                self._finish(reported)

    def _finish(self, reported: VenueOrder) -> None:
        order = self.book.by_txid(reported.txid)
        state = _FINAL.get(reported.status)
        if order is None or state is None:
            return
        if state is OrderState.FILLED and order.filled < reported.filled:
            return  # its last fills are not in yet; the next poll delivers them first
        self._update(order, state, reported.reason)

    def open_orders(self) -> list[OrderUpdate]:
        return [o.snapshot() for o in self.book.open()]
