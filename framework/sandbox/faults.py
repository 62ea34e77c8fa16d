"""Fault injection for the sandbox: what a real exchange and network do to a private call.

Each fault has a probability, optionally limited to some endpoints, drawn from a seeded
generator (one draw per fault per call, after the nonce check, so the nonce is used up as
it would be at Kraken). The kinds, and whether the call is executed:

==================  ========  ==============================================================
kind                executed  what the client sees
==================  ========  ==============================================================
``unavailable``     no        ``EService:Unavailable``
``busy``            no        ``EService:Busy``
``internal_error``  no        ``EGeneral:Internal error``
``http_502``        no        HTTP 502 with an HTML body
``drop``            no        the connection closes before any answer
``lost``            yes       the connection closes after the call ran: accepted, answer lost
``slow``            yes       the answer comes ``slow_s`` later, past the client's timeout
``garbled``         yes       HTTP 200 with the answer cut short (not JSON): the call ran
``late``            maybe     the call reaches the matching engine ``late_s`` later; an order
                              whose ``deadline`` has passed by then is refused (not placed)
==================  ========  ==============================================================
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import get_args

from framework.config import FaultKind

KINDS: tuple[str, ...] = get_args(FaultKind)
ERRORS = {
    "unavailable": "EService:Unavailable",
    "busy": "EService:Busy",
    "internal_error": "EGeneral:Internal error",
}


@dataclass(frozen=True, slots=True)
class Fault:
    kind: str
    probability: float
    endpoints: tuple[str, ...] = ()  # empty: every private endpoint

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault {self.kind!r}; one of {', '.join(KINDS)}")
        if not 0 <= self.probability <= 1:
            raise ValueError(f"fault probability must be within [0, 1]; got {self.probability}")


@dataclass(frozen=True, slots=True)
class FaultRules:
    faults: tuple[Fault, ...] = ()
    seed: int = 0
    slow_s: float = 15.0
    late_s: float = 3.0


class FaultInjector:
    """Decides, per call, which fault (if any) hits it; counts what it did."""

    def __init__(self, rules: FaultRules) -> None:
        self.rules = rules
        self._random = random.Random(rules.seed)
        self.injected: dict[str, int] = {}

    def pick(self, endpoint: str) -> str | None:
        chosen = None
        for fault in self.rules.faults:
            hit = self._random.random() < fault.probability  # drawn for every fault: seeded
            if hit and chosen is None and (not fault.endpoints or endpoint in fault.endpoints):
                chosen = fault.kind
        if chosen is not None:
            self.injected[chosen] = self.injected.get(chosen, 0) + 1
        return chosen
