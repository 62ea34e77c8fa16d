"""What Kraken says about the key at start (``GetApiKeyInfo``, docs.kraken.com "Get API Key
Info", 2026), checked against how the bot will use it:

- a **windowed** lane (``[nonce].max_in_flight`` > 1) on a key whose ``nonceWindow`` is 0
  cannot work (calls sent together arrive out of order and are refused): the bot does not
  start (ConfigError); a strict lane works with any window and only logs it;
- a key that may **withdraw** funds (``withdraw-funds``) is a warning: a bot needs no such
  permission; a key without ``modify-trades`` (Create & Modify Orders) is a warning: every
  order would be refused;
- a key that **expires** (``validUntil``) within :data:`EXPIRY_WARN_S` is a warning.

The call costs one nonce and one rate-limit point. An exchange that does not know the call,
or refuses it, is not checked (logged at info); only the documented permission names are
read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from framework.clock import wall
from framework.errors import ConfigError, OrderlyError
from framework.log import get_logger

if TYPE_CHECKING:
    from framework.exchanges.kraken.client import KrakenClient

log = get_logger("framework.exchanges.kraken")

#: A key expiring sooner than this (seconds) is warned about at start.
EXPIRY_WARN_S = 30 * 86_400


async def key_report(client: KrakenClient) -> list[str]:
    """Ask Kraken about ``client``'s key; the warnings a person should read at start."""
    try:
        info = await client.private("GetApiKeyInfo")
    except OrderlyError as exc:
        log.info("key_info_unavailable", error=str(exc))
        return []
    if not isinstance(info, Mapping):
        log.info("key_info_unavailable", error=f"result is a {type(info).__name__}")
        return []
    return key_warnings(info, ordering=client.lane.ordering, now=wall(client.clock))


def key_warnings(info: Mapping[str, Any], *, ordering: str, now: float) -> list[str]:
    """The warnings for ``info`` (GetApiKeyInfo's result); ConfigError for a key that
    cannot work with a lane of ``ordering``."""
    window = _integer(info.get("nonceWindow"))
    if ordering == "windowed" and window == 0:
        raise ConfigError(
            "[nonce].max_in_flight > 1 needs a key with a nonce window, and Kraken says this "
            "key's nonceWindow is 0: calls sent together would be refused as out of order. "
            "Give the key a nonce window (Kraken: Settings, API) or set max_in_flight = 1"
        )
    log.info("key_info", nonce_window=window, ordering=ordering, nonce=info.get("nonce"))
    warnings = []
    permissions = info.get("permissions")
    if isinstance(permissions, list):
        if "withdraw-funds" in permissions:
            warnings.append(
                "warning: this key may withdraw funds; a trading bot needs no such permission "
                "(Kraken: Settings, API)"
            )
        if "modify-trades" not in permissions:
            warnings.append(
                "warning: this key lacks 'Create & Modify Orders' (modify-trades): Kraken "
                "will refuse every order"
            )
    until = _integer(info.get("validUntil"))  # 0: never; past: Kraken refuses the key itself
    if until and 0 < until - now < EXPIRY_WARN_S:
        when = dt.datetime.fromtimestamp(until, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        warnings.append(f"warning: this key expires at {when}; the bot stops working then")
    return warnings


def _integer(value: Any) -> int | None:
    """Kraken's numbers come as text or numbers; None for anything else."""
    try:
        return int(str(value))
    except ValueError:
        return None
