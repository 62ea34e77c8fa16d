"""Execution: sends a strategy's orders through a Venue and turns what the exchange reports
into events (order updates and fills), in order, without duplicates.

    place(order)          record (client order id) -> send -> ACCEPTED / REJECTED / UNKNOWN
    place_batch(orders)   record all -> one venue batch call per pair and chunk of
                          ``venue.max_batch`` (one nonce each) -> per-order results mapped back
    poll()                fills since the last poll (de-duplicated by trade id), then the
                          final state of orders that left the exchange's open list

Exchange refusals do not raise: the order comes back REJECTED with the exchange's reason, and
the same update is delivered to ``on_order``.

An order is never sent twice blindly. When a send's answer is lost (timeout, dropped
connection, 5xx, an error that does not say nothing ran), the order goes UNKNOWN and is
reconciled by its client order id: looked up at once (open, then closed orders); if it is
not there, looked up again once the venue's order deadline has passed, after which it can no
longer reach the book; only then, if it is still absent, it is sent again with the *same*
client order id (at most ``max_resends`` times). If the lookups themselves keep failing the
order stays UNKNOWN and each ``poll`` looks for it again; it is never resent on a guess. A
batch whose answer was lost is reconciled order by order.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Sequence

from framework.errors import (
    AmbiguousOutcome,
    InvalidRequest,
    OrderlyError,
    OrderRejected,
    TransientError,
)
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
#: Extra wait past the order deadline before concluding an order was never placed.
_DEADLINE_MARGIN_S = 1.0
#: Lookups tried before a reconciliation gives up for now (the order stays UNKNOWN).
_LOOKUPS = 8


class Execution:
    """Orders of one strategy on one venue."""

    def __init__(self, venue: Venue, emit: Emit, *, since: float | None = None) -> None:
        self.venue = venue
        self.book = OrderBook()
        self._emit = emit
        self._since = since if since is not None else time.time()
        self.accepting = True
        self.fills = 0
        self.resent = 0
        self.max_resends = 3

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
        for attempt in range(self.max_resends + 1):
            if attempt:
                log.warning("order_resent", cl_ord_id=order.cl_ord_id, attempt=attempt)
                self.resent += 1
            try:
                txid = await self.venue.place(order.request, order.cl_ord_id)
            except AmbiguousOutcome as exc:
                self._refused(order, exc)
                if await self._reconcile(order, sent_by=time.time()) != "absent":
                    return
            except OrderlyError as exc:
                if self.venue.is_duplicate(exc):  # an earlier send did land
                    await self._reconcile(order, sent_by=None)
                else:
                    self._refused(order, exc)
                return
            else:
                self._accepted(order, txid)
                return
        # every send's answer was lost and each time the order proved absent: not placed
        self._update(
            order,
            OrderState.REJECTED,
            f"not placed: {self.max_resends + 1} sends, every answer lost",
        )

    async def _lookup(self, order: TrackedOrder) -> tuple[str, VenueOrder | None]:
        """("found", order) / ("absent", None) / ("unsure", None) if lookups keep failing."""
        for attempt in range(_LOOKUPS):
            try:
                found = await self.venue.find(order.cl_ord_id)
            except (TransientError, AmbiguousOutcome) as exc:
                log.info("order_lookup_failed", cl_ord_id=order.cl_ord_id, error=str(exc))
                await asyncio.sleep(min(0.1 * 2**attempt, 5.0))
                continue
            return ("found", found) if found is not None else ("absent", None)
        return "unsure", None

    async def _reconcile(self, order: TrackedOrder, sent_by: float | None) -> str:
        """Find an order whose send was ambiguous. ``sent_by``: a time at or after the last
        send (None: no waiting). Returns "found", "absent" (safe to resend) or "unsure"."""
        verdict, found = await self._lookup(order)
        if verdict == "absent" and sent_by is not None:
            deadline = self.venue.order_deadline_s
            if deadline is None:
                return "unsure"  # without a deadline absence now proves nothing
            await asyncio.sleep(max(0.0, sent_by + deadline + _DEADLINE_MARGIN_S - time.time()))
            verdict, found = await self._lookup(order)
        if found is not None:
            self._adopt(order, found)
        log.info("order_reconciled", cl_ord_id=order.cl_ord_id, verdict=verdict)
        return verdict

    def _adopt(self, order: TrackedOrder, found: VenueOrder) -> None:
        """The exchange has the order: take its id; fills and final state come by polling."""
        if order.txid is None:
            self.book.set_txid(order, found.txid)
        self._since = min(self._since, order.created - _OVERLAP_S)
        self._update(order, OrderState.ACCEPTED)

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
        except AmbiguousOutcome as exc:  # reconcile each order; resend the absent ones singly
            sent_by = time.time()
            for order in chunk:
                self._refused(order, exc)
            verdicts = await asyncio.gather(*(self._reconcile(o, sent_by) for o in chunk))
            for order, verdict in zip(chunk, verdicts, strict=True):
                if verdict == "absent":
                    await self._send_one(order)
            return
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
        lost, error = False, ""
        for attempt in range(self.max_resends + 1):
            try:
                await self.venue.cancel(cl_ord_id, pair=order.request.pair, txid=order.txid)
            except (AmbiguousOutcome, TransientError) as exc:  # cancelling again is harmless
                log.warning("cancel_retried", cl_ord_id=cl_ord_id, attempt=attempt, error=str(exc))
                lost, error = lost or isinstance(exc, AmbiguousOutcome), str(exc)
                await asyncio.sleep(min(0.1 * 2**attempt, 2.0))
                continue
            except OrderRejected as exc:  # gone: filled, or cancelled by a lost attempt
                log.info("cancel_refused", cl_ord_id=cl_ord_id, code=exc.code)
                return lost  # either way polling reports the final state
            self._update(order, OrderState.CANCELLED, "cancelled by the strategy")
            return True
        raise TransientError(
            f"could not cancel order {cl_ord_id} in {self.max_resends + 1} tries: {error}"
        )

    async def cancel_all(self) -> int:
        """Cancel every open order of the key (CancelAll), then mark ours cancelled."""
        for attempt in range(self.max_resends + 1):
            try:
                count = await self.venue.cancel_all()
                break
            except (AmbiguousOutcome, TransientError) as exc:  # cancelling again is harmless
                if attempt == self.max_resends:
                    raise
                log.warning("cancel_all_retried", attempt=attempt, error=str(exc))
                await asyncio.sleep(min(0.1 * 2**attempt, 2.0))
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
        for order in tracked:  # still unsure after their send: look again, never resend
            if order.state is OrderState.UNKNOWN and order.txid is None:
                found = await self.venue.find(order.cl_ord_id)
                if found is not None:
                    self._adopt(order, found)
        still_open = {v.txid: v for v in await self.venue.open_orders()}
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
