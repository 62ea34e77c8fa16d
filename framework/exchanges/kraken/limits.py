"""Kraken's private rate limits, as data, and the pacer that keeps a key under them.

Two counters per key (protocols.md 1.6):

- the **REST counter**: +1 per call, +2 for ledger and trade-history calls; the order calls
  (AddOrder, CancelOrder and their batch/edit relatives) are exempt. It decays at the tier's
  rate; above the tier's maximum Kraken answers ``EAPI:Rate limit exceeded``.
- the **matching-engine counter**, per pair: +1 per order added; a cancel costs more the
  younger the order (+8 under 5 s ... +1 under 300 s). Above the maximum:
  ``EOrder:Rate limit exceeded``.

Choices where Kraken is silent (kept in one place, here): AddOrderBatch costs +1 per order
on the engine counter and nothing on the REST counter; CancelAll costs +1 on the REST
counter; a cancel of an order whose age is unknown costs the most (+8). The ``test`` tier
decays fast so that tests of the pacing run in seconds.

:class:`Pacer` waits (aiolimiter: loop timers, never polling) until a call fits both
counters, keeping headroom for the jitter between pacing a call and its arrival: ``margin``
points, or what the counter decays in :data:`JITTER_S` if that is more (the real tiers
decay a point in 0.3-3 s: 1 point; the fast ``test`` tier needs 10 and 30 of its 20 and 60,
else a machine stalled for a few ms lets the exchange's counter run ahead of ours).

**After a restart** the exchange's counters still hold what the last process spent. A pacer
told how long the key was idle (``idle_s``, from the nonce store: when the key's floor was
last written) starts each counter at what it may still hold: full, less the decay over the
idle time. A key never seen before (``idle_s=None``) starts empty.
"""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiolimiter import AsyncLimiter

from framework.call import PrivateCall
from framework.log import get_logger

log = get_logger("framework.exchanges.kraken.limits")


#: The pacing-to-arrival jitter a counter's headroom absorbs (seconds).
JITTER_S = 0.05


@dataclass(frozen=True, slots=True)
class Tier:
    """One verification tier's limits."""

    rest_max: float
    rest_decay: float  # points per second
    engine_max: float
    engine_decay: float


TIERS: dict[str, Tier] = {
    "starter": Tier(rest_max=15, rest_decay=0.33, engine_max=60, engine_decay=1.0),
    "intermediate": Tier(rest_max=20, rest_decay=0.5, engine_max=125, engine_decay=2.34),
    "pro": Tier(rest_max=20, rest_decay=1.0, engine_max=180, engine_decay=3.75),
    "test": Tier(rest_max=20, rest_decay=200.0, engine_max=60, engine_decay=600.0),
}

#: Calls that weigh 2 on the REST counter.
REST_DOUBLE = frozenset({"Ledgers", "QueryLedgers", "TradesHistory", "QueryTrades"})
#: Calls left out of the REST counter: the matching-engine counter governs them.
ENGINE_CALLS = frozenset(
    {"AddOrder", "AddOrderBatch", "CancelOrder", "CancelOrderBatch", "EditOrder", "AmendOrder"}
)
#: Extra engine cost of cancelling an order younger than each age (seconds).
CANCEL_PENALTY: tuple[tuple[float, int], ...] = (
    (5, 8),
    (10, 6),
    (15, 5),
    (45, 4),
    (90, 2),
    (300, 1),
)


def rest_cost(endpoint: str) -> int:
    if endpoint in ENGINE_CALLS:
        return 0
    return 2 if endpoint in REST_DOUBLE else 1


#: Extra engine cost of amending (fixed +1 besides) and of editing (+1 besides) an order
#: younger than each age, counted from its placement or its last amend.
AMEND_PENALTY: tuple[tuple[float, int], ...] = ((5, 3), (10, 2), (15, 1))
EDIT_PENALTY: tuple[tuple[float, int], ...] = ((5, 6), (10, 5), (15, 4), (45, 2), (90, 1))


def penalty(table: tuple[tuple[float, int], ...], age_s: float | None) -> int:
    """The decaying part of a change to an order that has rested ``age_s`` seconds (an
    order of unknown age costs the most)."""
    if age_s is None:
        return table[0][1]
    return next((cost for limit, cost in table if age_s < limit), 0)


def cancel_cost(age_s: float | None) -> int:
    """Engine cost of cancelling an order that has rested ``age_s`` seconds."""
    return penalty(CANCEL_PENALTY, age_s)


#: (pair, seconds resting) of an order by txid or client order id, or None if unknown.
Age = Callable[[str], tuple[str, float] | None]


def engine_costs(
    endpoint: str, params: Mapping[str, Any], age: Age = lambda ref: None
) -> dict[str, int]:
    """Engine points per pair for one call; ``age`` tells how long a cancelled order rested."""
    if endpoint == "AddOrder":
        return {str(params.get("pair", "")): 1}
    if endpoint == "AddOrderBatch":
        return {str(params.get("pair", "")): len(params.get("orders", ()))}
    if endpoint in _CHANGES:
        fixed, table = _CHANGES[endpoint]
        pair, seconds = age(str(params.get("cl_ord_id") or params.get("txid") or "")) or ("", None)
        return {str(params.get("pair") or pair): fixed + penalty(table, seconds)}
    return {}


#: Calls that change a resting order: (fixed engine cost, decaying cost by the order's age).
_CHANGES = {
    "CancelOrder": (0, CANCEL_PENALTY),
    "AmendOrder": (1, AMEND_PENALTY),
    "EditOrder": (1, EDIT_PENALTY),
}


class Pacer:
    """Keeps one key under its tier's counters, in the order calls are paced."""

    def __init__(
        self,
        tier: Tier,
        margin: float = 1.0,
        *,
        name: str = "",
        idle_s: float | None = None,
        account: Pacer | None = None,
    ) -> None:
        """``account``: the pacer of another key of the same account, whose matching-engine
        counters (the account's, per pair) and order placement times this one shares."""
        self.tier = tier
        self.name = name
        #: How long the key was idle before this process (None: long enough to be empty).
        self.idle_s = idle_s
        self._born = time.monotonic()
        self._carried_rest = False
        self._waited = False
        self._margin = margin
        self._rest = self._fresh(tier.rest_max - self._headroom(tier.rest_decay), tier.rest_decay)
        self._rest_full = False  # the exchange said the key's REST counter is full
        if account is None:
            self._engine: dict[str, AsyncLimiter] = {}
            self._engine_full: set[str] = set()  # pairs the exchange said are full
            self._orders: OrderedDict[str, tuple[str, float]] = OrderedDict()
        else:
            self._engine, self._engine_full = account._engine, account._engine_full
            self._orders = account._orders

    def refused(self, call: PrivateCall) -> None:
        """The exchange refused ``call`` for a full counter: it holds more than this pacer
        counted (another program on the key or the account, a lost nonce store). The
        counter is taken as full: the next call on it waits for the decay."""
        pairs = engine_costs(call.endpoint, call.params, self._age)
        if pairs:
            self._engine_full.update(pairs)
        else:
            self._rest_full = True

    def restart_note(self) -> str | None:
        """For the terminal at start: the key made calls so recently that its first calls
        will wait on the counters the last run may have filled; None when they are empty."""
        if self.idle_s is None:
            return None
        drained_in = self.tier.rest_max / self.tier.rest_decay - self.idle_s
        if drained_in <= 1:
            return None
        return (
            f"this key made calls {self.idle_s:.0f} s ago (the last run): Kraken's counters "
            f"may still hold them, so the first calls wait on the {self.name} tier's decay "
            f"(up to {drained_in:.0f} s)"
        )

    def _headroom(self, decay: float) -> float:
        return max(self._margin, decay * JITTER_S)

    def _fresh(self, size: float, decay: float) -> AsyncLimiter:
        return AsyncLimiter(size, size / decay)

    def _carried(self, limiter: AsyncLimiter, decay: float) -> float:
        """What a counter may still hold from the process before this one."""
        if self.idle_s is None:
            return 0.0
        idle = self.idle_s + time.monotonic() - self._born
        return max(0.0, limiter.max_rate - decay * idle)

    async def _engine_for(self, pair: str) -> AsyncLimiter:
        refused = pair in self._engine_full
        self._engine_full.discard(pair)
        if refused or pair not in self._engine:  # a fresh counter, filled to what it may hold
            size = self.tier.engine_max - self._headroom(self.tier.engine_decay)
            limiter = self._engine[pair] = self._fresh(size, self.tier.engine_decay)
            await limiter.acquire(
                size if refused else self._carried(limiter, self.tier.engine_decay)
            )
        return self._engine[pair]

    def placed(self, pair: str, *refs: str) -> None:
        """Remember when an order was placed (by txid and client order id) for cancel costs."""
        now = time.monotonic()
        for ref in refs:
            self._orders[ref] = (pair, now)
            self._orders.move_to_end(ref)
        while len(self._orders) > 10_000:
            self._orders.popitem(last=False)

    def _age(self, ref: str) -> tuple[str, float] | None:
        known = self._orders.get(ref)
        return (known[0], time.monotonic() - known[1]) if known else None

    async def pace_call(self, call: PrivateCall) -> None:
        """:meth:`pace` for a lane: wait until ``call`` fits, then count it."""
        await self.pace(call.endpoint, call.params)

    def answered(self, call: PrivateCall, result: Any) -> None:
        """Note the placement times in an order call's answer (cancel costs depend on them)."""
        if not isinstance(result, dict):
            return
        pair = str(call.params.get("pair", ""))
        if call.endpoint == "AddOrder":
            self.placed(
                pair, *result.get("txid", ()), *filter(None, [call.params.get("cl_ord_id")])
            )
        elif call.endpoint == "AmendOrder":  # its age counts again from now
            ref = str(call.params.get("cl_ord_id") or call.params.get("txid") or "")
            if ref in self._orders:
                self.placed(self._orders[ref][0], ref)
        elif call.endpoint == "AddOrderBatch":  # an answer without orders: client ids only
            answers = result.get("orders") or ()
            for sent, answer in itertools.zip_longest(call.params.get("orders", ()), answers):
                txid = answer.get("txid") if isinstance(answer, dict) else None
                cl_ord_id = sent.get("cl_ord_id") if isinstance(sent, dict) else None
                self.placed(pair, *filter(None, [txid, cl_ord_id]))

    async def pace(self, endpoint: str, params: Mapping[str, Any]) -> None:
        """Wait until the call fits both counters, then count it. The first wait is
        logged once at info (tier, endpoint, seconds): a bot slowed by its tier says so."""
        started = time.monotonic()
        if not self._carried_rest:
            self._carried_rest = True
            await self._rest.acquire(self._carried(self._rest, self.tier.rest_decay))
        if self._rest_full:  # refused: the exchange's is full
            self._rest_full = False
            self._rest = self._fresh(self._rest.max_rate, self.tier.rest_decay)
            await self._rest.acquire(self._rest.max_rate)
        cost = rest_cost(endpoint)
        if cost:
            await self._rest.acquire(cost)
        for pair, points in engine_costs(endpoint, params, self._age).items():
            if points:
                await (await self._engine_for(pair)).acquire(points)
        waited = time.monotonic() - started
        if waited > 0.001 and not self._waited:
            self._waited = True
            log.info(
                "rate_limit_wait",
                tier=self.name,
                endpoint=endpoint,
                waited_s=round(waited, 3),
                detail="calls are paced to the tier's counters; later waits are not logged",
            )
