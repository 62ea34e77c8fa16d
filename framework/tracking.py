"""Tracking: what the exchange reports about a strategy's orders, turned into events.

    poll()              fills since the last poll (de-duplicated by trade id), then the final
                        state of orders that left the exchange's open list, and a new look at
                        every order still UNKNOWN with no send running for it
    reconcile           orders whose send was ambiguous, looked up by client order id
                        (all at once), again past the order deadline: found / absent / unsure
    adopt / finish      an order found at the exchange / reported closed
    take_terms          an open order whose price or volume the exchange shows otherwise
    settle_unknown      found: adopted; proven absent past its deadline: closed REJECTED
    settle_closed       "no such open order" from a cancel: how did it end? (at once)
    restore / resume    after a restart: the journal's open orders, then how they fared

The :class:`~framework.execution.Execution` sends; this follows. Both share one
:class:`~framework.orders.OrderBook` (and its journal).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection

from framework.clock import Clock, wall
from framework.errors import OrderlyError
from framework.events import Fill, OrderState, OrderUpdate
from framework.log import get_logger
from framework.orders import LimitOrder, OrderBook, TrackedOrder
from framework.venue import Venue, VenueOrder

log = get_logger("framework.tracking")

Emit = Callable[[OrderUpdate | Fill], None]

#: The state an order reaches when the exchange reports it closed with this status.
_FINAL = {
    "closed": OrderState.FILLED,
    "canceled": OrderState.CANCELLED,
    "expired": OrderState.CANCELLED,
}
#: How far back (s) each fills poll reaches before the newest fill seen; trade ids dedupe.
OVERLAP_S = 5.0
#: Extra wait past the order deadline before concluding an order was never placed.
DEADLINE_MARGIN_S = 1.0
#: Lookups tried before a reconciliation gives up for now (the order stays UNKNOWN).
_LOOKUPS = 8


class Tracker:
    """Follows one strategy's orders at one venue and emits what changed."""

    def __init__(
        self,
        venue: Venue,
        book: OrderBook,
        emit: Emit,
        *,
        since: float,
        clock: Clock,
        held: bool = False,
    ) -> None:
        self.venue = venue
        self.book = book
        self.emit = emit
        self.since = since
        self.clock = clock
        #: With ``held`` (a runner gives the events to a strategy): the final updates
        #: emitted and not yet given (:meth:`given`) or told by a call's answer (:meth:`told`).
        self.untold: dict[str, OrderUpdate] | None = {} if held else None

    def update(self, order: TrackedOrder, state: OrderState, reason: str | None = None) -> None:
        if self.book.move(order, state, reason):
            update = order.snapshot()
            if self.untold is not None and not state.is_open:
                self.untold[order.cl_ord_id] = update
            self.emit(update)

    def given(self, event: object) -> None:
        """The runner gave ``event`` to the strategy (its fills were given before it)."""
        if (
            self.untold
            and isinstance(event, OrderUpdate)
            and self.untold.get(event.cl_ord_id) is event
        ):
            del self.untold[event.cl_ord_id]

    def told(self, cl_ord_id: str) -> None:
        """The strategy's own call (place, cancel, amend) answered how the order stands."""
        if self.untold:
            self.untold.pop(cl_ord_id, None)

    def amended(self, order: TrackedOrder, request: LimitOrder) -> None:
        """``order`` now has ``request``'s price and volume at the exchange: kept, and told
        (an OrderUpdate in the same state, with the new terms)."""
        self.book.amend(order, request)
        self.emit(order.snapshot())

    def past_deadline(self, order: TrackedOrder, sent_by: float) -> float | None:
        """Seconds until a send at ``sent_by`` can no longer reach the book (<= 0: it
        cannot any more); None if the venue gives no such certainty."""
        deadline = self.venue.order_deadline_s
        if deadline is None:
            return None
        return sent_by + deadline + DEADLINE_MARGIN_S - wall(self.clock)

    async def lookup(self, orders: list[TrackedOrder]) -> dict[str, VenueOrder] | None:
        """The exchange's view of ``orders`` by client id (absent ones left out), in as few
        calls as the venue can; None if the lookups keep failing."""
        ids = [o.cl_ord_id for o in orders]
        since = min(o.created for o in orders) - OVERLAP_S
        for attempt in range(_LOOKUPS):
            try:
                return await self.venue.find_many(ids, since=since)
            except OrderlyError as exc:
                log.info("order_lookup_failed", cl_ord_ids=ids[:3], count=len(ids), error=str(exc))
                await self.clock.sleep(min(0.1 * 2**attempt, 5.0))
        return None

    async def reconcile(self, orders: list[TrackedOrder], sent_by: float | None) -> list[str]:
        """Find orders whose send was ambiguous, all at once (a lost batch costs one lookup,
        not one per order). ``sent_by``: a time at or after the last send (None: no
        waiting). One verdict per order: "found", "absent" (safe to resend) or "unsure"."""
        found = await self.lookup(orders)
        if found is not None and sent_by is not None:
            missing = [o for o in orders if o.cl_ord_id not in found]
            wait = self.past_deadline(orders[0], sent_by) if missing else None
            if missing and wait is None:
                found = None  # without a deadline absence now proves nothing
            elif missing:
                await self.clock.sleep(max(0.0, wait or 0.0))
                again = await self.lookup(missing)
                found = None if again is None else {**found, **again}
        verdicts = []
        for order in orders:
            if found is None:
                verdict = "unsure"
            elif order.cl_ord_id in found:
                verdict = "found"
                self.adopt(order, found[order.cl_ord_id])
            else:
                verdict = "absent"
            log.info("order_reconciled", cl_ord_id=order.cl_ord_id, verdict=verdict)
            verdicts.append(verdict)
        return verdicts

    def adopt(self, order: TrackedOrder, found: VenueOrder) -> None:
        """The exchange has the order: take its id; fills and final state come by polling."""
        if order.txid is None:
            self.book.set_txid(order, found.txid)
        self.since = min(self.since, order.created - OVERLAP_S)
        self.update(order, OrderState.ACCEPTED)

    async def settle_unknown(self, order: TrackedOrder) -> None:
        """A poll's look at an order still UNKNOWN with no send running for it: adopt it if
        the exchange has it; close it if it is absent past its deadline."""
        found = await self.venue.find(order.cl_ord_id)
        if found is not None:
            self.adopt(order, found)
            return
        wait = self.past_deadline(order, order.sent_at or order.created)
        if wait is not None and wait <= 0:
            log.info("order_reconciled", cl_ord_id=order.cl_ord_id, verdict="absent")
            self.update(order, OrderState.REJECTED, "not placed: absent past its deadline")

    async def settle_closed(self, order: TrackedOrder) -> None:
        """The exchange says the order is not open: find out how it ended, now, with its
        fills first, so it leaves ``open_orders()`` at once."""
        try:
            found = await self.venue.find(order.cl_ord_id)
            if found is not None and found.status == "closed":
                await self.poll_fills()
        except OrderlyError as exc:  # polling will settle it later
            log.info("order_lookup_failed", cl_ord_id=order.cl_ord_id, error=str(exc))
            return
        if found is not None:
            if order.txid is None:
                self.book.set_txid(order, found.txid)
            self.finish(found)

    # --- after a restart ------------------------------------------------------------------

    def restore(self) -> tuple[list[OrderUpdate], list[Fill]]:
        """Take back the journal's open orders (an order that was being sent when the bot
        died becomes UNKNOWN) and the fills ``on_fill`` never had. Returns both, for
        ``Started`` and for delivery; :meth:`resume` then reconciles with the exchange."""
        journal = self.book.journal
        if journal is None:
            return [], []
        orders = journal.open_orders()
        self.book.restore(orders)
        for order in orders:
            if order.state is OrderState.SUBMITTED:  # told through Started, not on_order
                self.book.move(order, OrderState.UNKNOWN, "the bot stopped before the answer")
            self.since = min(self.since, order.created - OVERLAP_S)
        if orders:
            log.info("orders_restored", count=len(orders), journal=str(journal.path))
        return [o.snapshot() for o in orders], journal.undelivered()

    async def resume(self, busy: Collection[str] = ()) -> None:
        """Reconcile restored orders with the exchange: each order with no exchange id is
        looked up by client id (adopted, or closed if absent past its deadline); then one
        poll delivers the fills that happened meanwhile (once each: trade ids already
        applied are in the journal) and the final states of orders that left the book."""
        for order in self.book.open():
            if order.txid is None:
                await self.settle_unknown(order)
        await self.poll(busy)

    # --- polling --------------------------------------------------------------------------

    async def poll(self, busy: Collection[str] = ()) -> None:
        """Fetch new fills and final states; emit what changed, oldest first. Orders in
        ``busy`` (a send or reconciliation of theirs is running) are left to it."""
        await self.poll_fills()
        await self._poll_states(busy)

    async def poll_fills(self) -> None:
        """TradesHistory from ``since`` (less an overlap): every fill of ours there is taken
        (once per trade id), and ``since`` moves to the newest of them. Only this complete
        view moves it: a streamed fill does not, or a trade the stream missed, older than
        one it brought, would fall behind the point the next poll reads from."""
        found = await self.venue.fills_since(self.since - OVERLAP_S)
        for txid, fill in sorted(found, key=lambda item: item[1].time):
            if self.take_fill(txid, fill):
                self.since = max(self.since, fill.time)

    def take_fill(self, txid: str, fill: Fill) -> bool:
        """One trade, from a poll or a stream: counted and emitted once per trade id.
        Returns False when no order of this strategy has that exchange id (yet: a stream
        can report a trade before the order's own answer arrived)."""
        order = self.book.by_txid(txid)
        if order is None:
            return False
        fill = dataclasses.replace(fill, cl_ord_id=order.cl_ord_id, pair=order.request.pair)
        if not self.book.apply_fill(order, fill):
            return True
        self.emit(fill)
        full = order.filled >= order.request.volume
        self.update(order, OrderState.FILLED if full else OrderState.PARTIALLY_FILLED)
        return True

    async def _poll_states(self, busy: Collection[str]) -> None:
        tracked = [
            o
            for o in self.book.open()
            if (o.txid or o.state is OrderState.UNKNOWN) and o.cl_ord_id not in busy
        ]
        if not tracked:
            return
        for order in tracked:  # still unsure after their send: look again, never resend
            if order.state is OrderState.UNKNOWN and order.txid is None:
                await self.settle_unknown(order)
        terms = {o.cl_ord_id: o.request for o in tracked}  # as they were before the await
        still_open = {v.txid: v for v in await self.venue.open_orders()}
        for order in tracked:  # unchanged here meanwhile, and no amend of ours running
            reported = still_open.get(order.txid or "")
            if reported and order.request is terms[order.cl_ord_id] and order.cl_ord_id not in busy:
                self.take_terms(order, reported)
        gone = [o.txid for o in tracked if o.txid and o.txid not in still_open]
        if gone:
            late = [r for r in await self.venue.query_orders(gone) if not self.finish(r)]
            if late:  # filled after the trades were read: read them again, then finish
                await self.poll_fills()
                for reported in late:
                    self.finish(reported)

    def take_terms(self, order: TrackedOrder, reported: VenueOrder) -> None:
        """The exchange shows another price or volume for an open order (an amend of ours
        that landed after its answer was given up for lost, or one made elsewhere): the
        exchange is right, the book takes them."""
        request = order.request
        if not isinstance(request, LimitOrder) or reported.price is None or not reported.volume:
            return
        if (reported.price, reported.volume) != (request.price, request.volume):
            log.warning(
                "order_terms_adopted",
                cl_ord_id=order.cl_ord_id,
                price=str(reported.price),
                volume=str(reported.volume),
                was=f"{request.volume} @ {request.price}",
            )
            new = dataclasses.replace(request, price=reported.price, volume=reported.volume)
            self.amended(order, new)

    def finish(self, reported: VenueOrder) -> bool:
        """A final state the exchange reports. Returns False when it cannot be applied yet:
        no order of this strategy has that id (yet), or its last fills are not in."""
        order = self.book.by_txid(reported.txid)
        state = _FINAL.get(reported.status)
        if order is None or state is None:
            return state is None
        if state is OrderState.FILLED and order.filled < reported.filled:
            return False  # its last fills are not in yet; the next poll delivers them first
        self.update(order, state, reported.reason)
        return True

    def open_orders(self) -> list[OrderUpdate]:
        return [o.snapshot() for o in self.book.open()]
