"""Execution: the order manager. It owns every order's life, from the moment a strategy asks
to a final state, and turns what the exchange reports into events (order updates and
fills), in order, without duplicates.

    place(order)          check -> record (client order id) -> send -> ACCEPTED / REJECTED /
                          UNKNOWN
    place_batch(orders)   check all -> record all -> one venue batch call per pair and chunk
                          of ``venue.max_batch`` (one nonce each) -> per-order results
    cancel(order)         at most one cancel of an order in flight; "no such order" from the
                          exchange looks the order up at once and settles it
    amend(order, ...)     a new price and/or volume in place; a lost answer is sent again
                          (harmless), then the order is looked up to see which one stands
    poll()                what the exchange reports: fills and final states, and a new look
                          at every order still UNKNOWN (framework/tracking.py)

**Work that must finish is owned here, not by whoever asked.** Each send, reconciliation
and cancel runs as an owned task (framework/owned.py); the caller only awaits its result.
Cancelling the caller (a hook over its time limit, strategy code) never cancels a send or
its reconciliation: the order still reaches a known state and its events are still emitted.
:meth:`drain` waits for the owned work when the bot stops.

**The strategy's view moves with its events** (``held``, as the runner runs it): an order
that finishes on its own (a fill, a poll) stays in :meth:`open_orders`, in its final state,
until the runner has given the strategy its final update, which comes after its fills; an
order the strategy's own call finished (the answer of place, cancel, amend) leaves at once.
So no hook sees an order gone whose fills it has not been given.

Exchange refusals do not raise: the order comes back REJECTED with the exchange's reason, and
the same update is delivered to ``on_order``. Arguments that are not orders raise
:class:`InvalidArguments` before anything is recorded.

An order is never sent twice blindly. A send whose answer is lost, or arrives but cannot be
understood (``AmbiguousOutcome``, ``ExchangeError``, or anything unexpected: the call was
sent, so it may have run), makes the order UNKNOWN, and it is reconciled by its client order
id: looked up at once (open, then closed orders); if it is not there, looked up again once
the venue's order deadline has passed, after which it can no longer reach the book; only
then, if it is still absent, it is sent again with the *same* client order id (at most
``max_resends`` times). If the lookups keep failing the order stays UNKNOWN and each
``poll`` looks for it again: found, it is adopted; proven absent past its deadline, it is
closed REJECTED (it never reached the book). It is never resent on a guess.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from framework.clock import SYSTEM_CLOCK, Clock, wall
from framework.errors import (
    AmbiguousOutcome,
    ExchangeError,
    InvalidArguments,
    OrderlyError,
    OrderRejected,
    TransientError,
    UsageError,
    may_have_run,
    reason_of,
)
from framework.events import Fill, OrderState, OrderUpdate
from framework.journal import OrderJournal
from framework.log import get_logger
from framework.orders import (
    LimitOrder,
    Order,
    OrderBook,
    TrackedOrder,
    amended,
    batches,
    check_orders,
)
from framework.owned import OwnedWork
from framework.tracking import Emit, Tracker
from framework.venue import Amend, Venue

log = get_logger("framework.execution")
_STOPPED = "the bot is stopping: place a closing order before calling ctx.stop, not in on_stop"

T = TypeVar("T")

#: A cancel that failed with one of these may be sent again (cancelling twice is harmless).
_RETRY_CANCEL = (AmbiguousOutcome, TransientError, ExchangeError)


class Execution:
    """Orders of one strategy on one venue."""

    def __init__(
        self,
        venue: Venue,
        emit: Emit,
        *,
        since: float | None = None,
        clock: Clock = SYSTEM_CLOCK,
        journal: OrderJournal | None = None,
        held: bool = False,
    ) -> None:
        self.venue = venue
        self.clock = clock
        self.book = OrderBook(clock, journal)
        since = since if since is not None else wall(clock)
        self.tracker = Tracker(venue, self.book, emit, since=since, clock=clock, held=held)
        self.accepting = True
        self.resent = 0
        self.max_resends = 3
        self.work = OwnedWork(clock)
        self._busy: set[str] = set()  # client ids whose send or reconciliation is running
        self._cancels: dict[str, asyncio.Task[bool]] = {}

    # --- owned work (framework/owned.py) ------------------------------------------------

    async def drain(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """Wait (at most ``timeout`` s) for every owned send, reconciliation and cancel."""
        return await self.work.drain(timeout)

    async def close(self) -> None:
        """Cancel what :meth:`drain` left running; the journal keeps its orders for the next."""
        await self.work.close()

    @property
    def pending(self) -> int:
        """Owned sends, reconciliations and cancels still running."""
        return len(self.work)

    # --- state ----------------------------------------------------------------------------

    def _refused(self, order: TrackedOrder, exc: BaseException) -> None:
        if may_have_run(exc):
            log.warning("order_outcome_unknown", cl_ord_id=order.cl_ord_id, error=str(exc))
            self.tracker.update(order, OrderState.UNKNOWN, str(exc))
        else:
            code = getattr(exc, "code", None)
            log.info("order_rejected", cl_ord_id=order.cl_ord_id, code=code, error=str(exc))
            self.tracker.update(order, OrderState.REJECTED, reason_of(exc))

    def _accepted(self, order: TrackedOrder, txid: str) -> None:
        self.book.set_txid(order, txid)
        self.tracker.update(order, OrderState.ACCEPTED)

    def _record(self, requests: Sequence[Order]) -> list[TrackedOrder]:
        orders = self.book.record_all(requests)
        if not self.accepting:
            for order in orders:
                self.tracker.update(order, OrderState.REJECTED, _STOPPED)
        return orders

    # --- what the exchange reports (framework/tracking.py) -------------------------------

    def restore(self) -> tuple[list[OrderUpdate], list[Fill]]:
        """The journal's open orders and undelivered fills, after a restart."""
        return self.tracker.restore()

    async def resume(self) -> None:
        """How the restored orders fared while the bot was down."""
        await self.tracker.resume(self._busy)

    @property
    def broken(self) -> OrderlyError | None:
        """Why orders can no longer be sent or written down safely (the lane's state
        files, the order journal), or None: the runner then stops."""
        return self.venue.broken or self.book.broken

    async def poll(self) -> None:
        """Fetch new fills and final states; emit what changed, oldest first."""
        await self.tracker.poll(self._busy)

    async def poll_orders(self) -> None:
        """The orders loop without streams: raises :attr:`broken` (the runner stops), or polls."""
        if self.broken is not None:
            raise self.broken
        await self.poll()

    def open_orders(self) -> list[OrderUpdate]:
        """The strategy's view: with ``held``, an order that finished on its own is listed
        (in its final state) until the runner has given its final update (``tracker.given``),
        which comes after its fills."""
        held = self.tracker.untold or {}
        return [o.snapshot() for o in self.book if o.state.is_open or o.cl_ord_id in held]

    # --- placing --------------------------------------------------------------------------

    async def place(self, request: Order) -> OrderUpdate:
        (checked,) = check_orders([request])
        (order,) = self._record([checked])
        if order.state is OrderState.SUBMITTED:
            await self.work.run(self._send_chunk([order]))
        self.tracker.told(order.cl_ord_id)
        return order.snapshot()

    async def place_batch(self, requests: Sequence[Order]) -> list[OrderUpdate]:
        checked = check_orders(requests, what="orders")
        orders = self._record(checked)
        if self.accepting and orders:
            await self.work.run(self._send_chunks(checked, orders))
        for order in orders:
            self.tracker.told(order.cl_ord_id)
        return [o.snapshot() for o in orders]

    async def _send_chunks(self, requests: list[Order], orders: list[TrackedOrder]) -> None:
        for chunk in batches(requests, self.venue.max_batch):
            await self._send_chunk([orders[i] for i in chunk])

    async def _send_until_known(self, order: TrackedOrder) -> None:
        for attempt in range(self.max_resends + 1):
            if attempt:
                log.warning("order_resent", cl_ord_id=order.cl_ord_id, attempt=attempt)
                self.resent += 1
            self.book.sending([order])
            try:
                txid = await self.venue.place(order.request, order.cl_ord_id)
            except Exception as exc:
                if isinstance(exc, OrderlyError) and self.venue.is_duplicate(exc):
                    await self.tracker.reconcile([order], sent_by=None)  # an earlier send did land
                    return
                self._refused(order, exc)
                if not may_have_run(exc):
                    return
                if await self.tracker.reconcile([order], sent_by=wall(self.clock)) != ["absent"]:
                    return
            else:
                self._accepted(order, txid)
                return
        # every send's answer was lost and each time the order proved absent: not placed
        self.tracker.update(
            order,
            OrderState.REJECTED,
            f"not placed: {self.max_resends + 1} sends, every answer lost",
        )

    async def _send_chunk(self, chunk: list[TrackedOrder]) -> None:
        ids = [o.cl_ord_id for o in chunk]
        self._busy.update(ids)
        try:
            if len(chunk) == 1:
                await self._send_until_known(chunk[0])
            else:
                await self._send_batch(chunk)
        finally:
            self._busy.difference_update(ids)

    async def _send_batch(self, chunk: list[TrackedOrder]) -> None:
        sent_by = self.book.sending(chunk)
        try:
            results = await self.venue.place_batch([(o.request, o.cl_ord_id) for o in chunk])
        except InvalidArguments:  # an order the venue cannot send; nothing went: each alone
            for order in chunk:
                await self._send_until_known(order)
            return
        except Exception as exc:
            for order in chunk:
                self._refused(order, exc)
            if not may_have_run(exc):
                return
            # reconcile each order; resend the absent ones singly
            verdicts = await self.tracker.reconcile(chunk, sent_by)
            for order, verdict in zip(chunk, verdicts, strict=True):
                if verdict == "absent":
                    await self._send_until_known(order)
            return
        for order, result in zip(chunk, results, strict=True):
            if isinstance(result, OrderlyError):
                self._refused(order, result)
            else:
                self._accepted(order, result)

    # --- cancelling -----------------------------------------------------------------------

    def _order(self, target: OrderUpdate | str, what: str) -> TrackedOrder:
        """The order ``target`` names (an update or a client order id), or InvalidArguments."""
        if isinstance(target, OrderUpdate | str):
            order = self.book.get(target if isinstance(target, str) else target.cl_ord_id)
            if order is not None:
                return order
            raise InvalidArguments(f"no order with client order id {target!r}", endpoint=what)
        raise InvalidArguments(
            f"{what} takes an OrderUpdate or a client order id, not {type(target).__name__}",
            endpoint=what,
        )

    async def cancel(self, target: OrderUpdate | str) -> bool:
        """Cancel one order; False if it was no longer open. Concurrent cancels of one
        order share one exchange call."""
        order = self._order(target, "cancel")
        cl_ord_id = order.cl_ord_id
        try:
            if not order.state.is_open:
                return False
            if cl_ord_id not in self._cancels:
                self._cancels[cl_ord_id] = task = self.work.start(self._cancel(order))
                task.add_done_callback(lambda _: self._cancels.pop(cl_ord_id, None))
            return await asyncio.shield(self._cancels[cl_ord_id])
        finally:
            self.tracker.told(cl_ord_id)

    async def _again(
        self, what: str, send: Callable[[], Awaitable[T]], tried: list[Exception], **where: str
    ) -> T:
        """``send`` a change that is harmless twice (a cancel, an amend to given values) until
        it is answered: after a failure that may have run it or did not, again, at most
        ``max_resends`` more times, backing off. Each failure goes to ``tried``; the last one
        is raised, and a refusal (OrderRejected) at once."""
        for attempt in range(self.max_resends + 1):
            try:
                return await send()
            except _RETRY_CANCEL as exc:
                tried.append(exc)
                if attempt == self.max_resends:
                    raise
                log.warning(f"{what}_retried", attempt=attempt, error=str(exc), **where)
                await self.clock.sleep(min(0.1 * 2**attempt, 2.0))
        raise AssertionError("unreachable: the last try returns or raises")

    async def _cancel(self, order: TrackedOrder) -> bool:
        cl_ord_id, tried = order.cl_ord_id, list[Exception]()
        try:  # each try with the txid known then (a lookup may have found it meanwhile)
            send = lambda: self.venue.cancel(  # noqa: E731
                cl_ord_id, pair=order.request.pair, txid=order.txid
            )
            await self._again("cancel", send, tried, cl_ord_id=cl_ord_id)
        except OrderRejected as exc:  # gone: filled, or cancelled by a lost attempt
            log.info("cancel_refused", cl_ord_id=cl_ord_id, code=exc.code)
            await self.tracker.settle_closed(order)
            return any(isinstance(failed, AmbiguousOutcome) for failed in tried)
        except _RETRY_CANCEL as exc:
            raise TransientError(
                f"could not cancel order {cl_ord_id} in {self.max_resends + 1} tries: {exc}"
            ) from None
        self.tracker.update(order, OrderState.CANCELLED, "cancelled by the strategy")
        return True

    async def amend(
        self, target: OrderUpdate | str, *, price: object = None, volume: object = None
    ) -> bool:
        """Change an open limit order's price and/or whole volume in place (same ids). True
        once the exchange has the change; False if the order was no longer open (settled at
        once) or the exchange refused the change. Bad arguments raise before anything goes."""
        order = self._order(target, "amend")
        new = amended(order.request, price=price, volume=volume, filled=order.filled)
        if not self.venue.can_amend:
            raise UsageError(
                f"{self.venue.name} cannot amend an order in place: cancel it and place another",
                endpoint="amend",
            )
        try:
            return order.state.is_open and await self.work.run(self._amend(order, new))
        finally:
            self.tracker.told(order.cl_ord_id)

    async def _amend(self, order: TrackedOrder, new: LimitOrder) -> bool:
        old, cl_ord_id = order.request, order.cl_ord_id
        assert isinstance(old, LimitOrder)  # amended() let only limit orders through
        change = Amend.between(old, new)
        if change is None:
            return True  # nothing to change
        self._busy.add(cl_ord_id)  # polls leave its terms alone meanwhile
        try:
            send = lambda: self.venue.amend(cl_ord_id, change)  # noqa: E731
            await self._again("amend", send, [], cl_ord_id=cl_ord_id)
        except OrderRejected as exc:  # gone (filled, cancelled), or a change refused
            log.info("amend_refused", cl_ord_id=cl_ord_id, code=exc.code)
            await self.tracker.settle_closed(order)
            return False
        except _RETRY_CANCEL:  # no answer came back: what is there?
            found = await self.tracker.lookup([order])
            shown = None if found is None else found.get(cl_ord_id)
            if shown is not None:  # its terms now (one of ours landing later: next poll)
                self.tracker.take_terms(order, shown)
            log.info("amend_unanswered", cl_ord_id=cl_ord_id, shown=str(shown))
            return order.request == new
        else:
            self.tracker.amended(order, new)
            return True
        finally:
            self._busy.discard(cl_ord_id)

    async def cancel_own(self) -> int:
        """Cancel this bot's own open orders by id (others' stay); the first failure raised."""
        ids = [o.cl_ord_id for o in self.book.open()]
        done = await asyncio.gather(*map(self.cancel, ids), return_exceptions=True)
        if failed := next((d for d in done if isinstance(d, BaseException)), None):
            raise failed
        return done.count(True)

    async def cancel_all(self) -> int:
        """Cancel every open order of the key (CancelAll), then mark ours cancelled."""
        count = await self._again("cancel_all", self.venue.cancel_all, [])
        for order in self.book.open():
            self.tracker.update(order, OrderState.CANCELLED, "cancel all")
            self.tracker.told(order.cl_ord_id)
        return count
