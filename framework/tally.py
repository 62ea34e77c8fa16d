"""The live summary's numbers, kept from events (no extra exchange calls): fills, the
position and cash they made (so a mark-to-mid PnL), refusals, and the tick lag."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from decimal import Decimal

from framework.call import LaneStats
from framework.clock import SYSTEM_CLOCK, Clock
from framework.events import Fill, OrderState, OrderUpdate, Ticker


class Tally:
    """What the terminal summary shows, kept from events (no extra exchange calls)."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self.started = clock.monotonic()
        self.fills = 0
        self.tick_lag = 0.0  # age (s) of the last ticker when it reached on_tick
        self.cash = Decimal(0)  # quote currency gained (sells) minus spent (buys) and fees
        self.position: dict[str, Decimal] = {}
        self.rejected = 0
        self._told: set[str] = set()  # refusal reasons the terminal has shown

    def add(self, event: object) -> str | None:
        """Count ``event``; the line the terminal shows for it: every fill, and the first
        refusal of each reason (the rest are counted in ``rejected``), or None."""
        if isinstance(event, Fill):
            self.fills += 1
            signed = event.volume if event.side == "buy" else -event.volume
            self.position[event.pair] = self.position.get(event.pair, Decimal(0)) + signed
            self.cash += -signed * event.price - event.fee
            return (
                f"fill  {event.side} {event.volume.normalize():f} {event.pair} @ {event.price}"
                f"  fee {event.fee}{'  maker' if event.maker else ''}"
            )
        if isinstance(event, OrderUpdate) and event.state is OrderState.REJECTED:
            self.rejected += 1
            reason = event.reason or "no reason given"
            if reason in self._told or len(self._told) >= 100:
                return None
            self._told.add(reason)
            price = "market" if event.price is None else event.price
            return (
                f"rejected  {event.side} {event.volume.normalize():f} {event.pair} @ {price}: "
                f"{reason} (repeats are counted in 'rejected')"
            )
        return None

    def pnl(self, marks: dict[str, Ticker]) -> Decimal | None:
        """Cash plus positions at the mid; None until every traded pair has a mark."""
        value = self.cash
        for pair, volume in self.position.items():
            if pair not in marks:
                return None
            value += volume * marks[pair].mid
        return value

    def summary(
        self,
        marks: dict[str, Ticker],
        lane: LaneStats,
        *,
        open_orders: int,
        hook_errors: int,
        state: str,
        now: float,
    ) -> Summary:
        """The numbers now (``now``: the clock's monotonic time)."""
        return Summary(
            marks=dict(marks),
            lane=dataclasses.replace(lane),  # a copy: the lane goes on counting
            fills=self.fills,
            rejected=self.rejected,
            pnl=self.pnl(marks),
            tick_lag=self.tick_lag,
            open_orders=open_orders,
            hook_errors=hook_errors,
            state=state,
            uptime_s=now - self.started,
        )


@dataclass(frozen=True, slots=True)
class Summary:
    """The bot's numbers at one moment: what the terminal line and ``/metrics`` show."""

    marks: dict[str, Ticker]
    lane: LaneStats
    fills: int
    rejected: int
    pnl: Decimal | None  # None until every traded pair has a price
    tick_lag: float
    open_orders: int
    hook_errors: int
    state: str
    uptime_s: float

    def line(self, *, final: bool = False) -> str:
        """The terminal summary line."""
        lane, pnl = self.lane, self.pnl
        prices = "  ".join(f"{p} {t.mid:.2f}" for p, t in self.marks.items())
        return (
            f"{'final' if final else f'[{self.uptime_s:6.0f}s]'}  {prices}  fills "
            f"{self.fills}  pnl {'n/a' if pnl is None else f'{pnl:+.2f}'}  open "
            f"{self.open_orders}  rejected {self.rejected}  tick lag {self.tick_lag:.2f}s"
            f"  nonces sent {lane.sent} refused {lane.refused}"
            f"{f'  rate limited {lane.rate_limited}' if lane.rate_limited else ''}"
            f"  paused {lane.paused}  hook errors {self.hook_errors}  {self.state}"
        )


def counted(n: int, noun: str) -> str:
    """``1 order``, ``2 orders``: a count for a person to read."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
