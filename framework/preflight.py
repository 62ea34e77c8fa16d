"""What the runner checks before it trades, and the clock again every ``clock_check_s``."""

from __future__ import annotations

from framework.clock import Clock
from framework.errors import AuthError, ConfigError, OrderlyError
from framework.log import get_logger
from framework.venue import Venue

log = get_logger("framework.runner")


async def check_key(venue: Venue, clock: Clock, tries: int = 5) -> list[str]:
    """Is the key accepted? A refusal stops the bot (ConfigError); an exchange that fails
    otherwise is asked again, backing off, before the bot gives up. Then what the exchange
    says about the key (:meth:`Venue.key_report`): the warnings, for the terminal."""
    for attempt in range(tries):
        try:
            await venue.balances()
            break
        except AuthError as exc:
            raise ConfigError(f"the exchange refused the key: {exc.code or exc}") from None
        except OrderlyError as exc:
            if attempt == tries - 1:
                raise
            log.warning("key_check_failed", attempt=attempt, error=str(exc))
            await clock.sleep(min(0.5 * 2**attempt, 5.0))
    return await venue.key_report()


async def check_clock(venue: Venue, warn_s: float) -> str | None:
    """Compare the local clock with the exchange's; past ``warn_s`` returns a warning for
    the terminal (and logs it). Nonces never go backwards whatever the clock does; order
    deadlines use the offset."""
    offset = await venue.clock_offset()
    if abs(offset) > warn_s:
        log.warning("clock_skew", offset_s=round(offset, 3), warn_s=warn_s)
        return f"warning: the local clock is {offset:+.1f} s off the exchange's"
    log.info("clock_checked", offset_s=round(offset, 3))
    return None
