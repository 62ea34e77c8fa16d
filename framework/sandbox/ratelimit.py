"""The sandbox's rate limits: Kraken's REST and matching-engine counters per key, with the
numbers in :mod:`framework.sandbox.kraken_rules` (the sandbox's own copy of Kraken's rules).

A call that would take a counter over its tier's maximum is refused and not executed:
``EAPI:Rate limit exceeded`` (REST) or ``EOrder:Rate limit exceeded`` (engine, per pair).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from framework.clock import Clock
from framework.sandbox.auth import KrakenFailure
from framework.sandbox.kraken_rules import Age, Tier, engine_points, rest_points


@dataclass(slots=True)
class Counter:
    level: float = 0.0
    at: float = 0.0

    def charge(self, points: float, maximum: float, decay: float, now: float) -> bool:
        self.level = max(0.0, self.level - (now - self.at) * decay)
        self.at = now
        if self.level + points > maximum:
            return False
        self.level += points
        return True


class RateLimits:
    """Counters of every key of one sandbox."""

    def __init__(self, tier: Tier, clock: Clock) -> None:
        self.tier = tier
        self.clock = clock
        self._rest: dict[str, Counter] = {}
        self._engine: dict[tuple[str, str], Counter] = {}
        self.refused: dict[str, int] = {}

    def charge(
        self,
        key: str,
        endpoint: str,
        body: dict[str, Any],
        order_age: Age,
        account: str | None = None,
    ) -> None:
        """Count one call or raise the error Kraken would send. The REST counter is the
        key's; the matching engine's is the account's, per pair (several keys of one
        account share it)."""
        now = self.clock.monotonic()
        tier = self.tier
        points = rest_points(endpoint)
        if points and not self._rest.setdefault(key, Counter(at=now)).charge(
            points, tier.rest_max, tier.rest_decay, now
        ):
            self.refused[key] = self.refused.get(key, 0) + 1
            raise KrakenFailure("EAPI:Rate limit exceeded")
        for pair, cost in engine_points(endpoint, body, order_age).items():
            counter = self._engine.setdefault((account or key, pair), Counter(at=now))
            if cost and not counter.charge(cost, tier.engine_max, tier.engine_decay, now):
                self.refused[key] = self.refused.get(key, 0) + 1
                raise KrakenFailure("EOrder:Rate limit exceeded")
