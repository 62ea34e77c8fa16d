"""A lane's breaker: ``breaker_threshold`` auth refusals in a row (invalid nonce, key or
signature), or one lockout answer, pause the lane for ``breaker_cooldown`` seconds, so the
exchange's own lockout (Kraken: after repeated failures, about 15 minutes) is never
reached. The count and the pause are kept in the key's store (``NonceSource.breaker``), so a
restart does not forget them. The lane decides when to trip and what to say (nonce
refusals on a strict lane mean someone else uses the key); this keeps the count and clock."""

from __future__ import annotations

from framework.clock import Clock, wall
from framework.errors import StateError
from framework.log import get_logger
from framework.nonce.history import NonceHistory
from framework.nonce.source import NonceSource

log = get_logger("framework.dispatch")

#: Said when a strict lane's nonces are refused: its own nonces only go up.
ELSEWHERE = (
    "another process or program may be using this key (this lane sends strictly increasing"
    " nonces): check for a second bot or host on it, a second nonce store ([state].store),"
    " scripts or tools using the key; the exchange's nonce window must be 0"
)


class Breaker:
    def __init__(
        self,
        source: NonceSource,
        *,
        threshold: int,
        cooldown: float,
        clock: Clock,
        key_id: str,
        exchange: str | None,
    ) -> None:
        self._source = source
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self.key_id = key_id
        self.exchange = exchange
        self.refusals_in_a_row = 0
        #: Monotonic time until which the lane sends nothing.
        self.paused_until = 0.0

    def load(self) -> None:
        """Take back the count and any pause an earlier process left."""
        refusals, until = self._source.breaker()
        self.refusals_in_a_row = refusals
        left = until - wall(self._clock)
        if left > 0:
            self.paused_until = self._clock.monotonic() + left
            log.warning(
                "lane_paused_at_start",
                key_id=self.key_id,
                exchange=self.exchange,
                resume_in_s=round(left, 1),
                detail="an earlier process paused this key after repeated refusals",
            )

    def paused_for(self) -> float:
        """Seconds the pause still lasts (<= 0: not paused)."""
        return self.paused_until - self._clock.monotonic()

    def refused(self) -> bool:
        """Count one refusal; returns whether the threshold is reached."""
        self.refusals_in_a_row += 1
        self._save()
        return self.refusals_in_a_row >= self.threshold

    def accepted(self) -> None:
        if self.refusals_in_a_row:
            self.refusals_in_a_row = 0
            self._save()

    def trip(self, code: str | None, reason: str, history: NonceHistory) -> None:
        """Pause for the cool-down, say so in the log and the nonce history (StateError if
        that cannot be written); the count restarts."""
        self.paused_until = self._clock.monotonic() + self.cooldown
        refusals, self.refusals_in_a_row = self.refusals_in_a_row, 0
        self._save(wall(self._clock) + self.cooldown)
        log.error(
            "lane_paused",
            key_id=self.key_id,
            exchange=self.exchange,
            refusals_in_a_row=refusals,
            cooldown_s=self.cooldown,
            code=code,
            reason=reason,
        )
        history.paused(key_id=self.key_id, code=code, refusals=refusals, cooldown_s=self.cooldown)

    def _save(self, paused_until: float = 0.0) -> None:
        try:
            self._source.save_breaker(self.refusals_in_a_row, paused_until)
        except StateError as exc:  # the breaker still holds in this process
            log.warning("breaker_not_saved", key_id=self.key_id, error=exc.message)
