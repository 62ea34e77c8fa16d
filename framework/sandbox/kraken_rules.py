"""Kraken's documented rules as the sandbox enforces them: API-Sign, the tiers' rate-limit
counters and their costs, the order errors Kraken leaves open (:class:`OrderRules`).
Written here, from shared/protocols.md, and never imported from the client's package: a
mistake the client makes cannot hide behind the same mistake in the exchange it is tested
against.

The signature is checked against Kraken's documented vector in the tests
(tests/test_sandbox_auth.py sends the documented request byte for byte).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from framework.sandbox.engine import EngineRules

#: Kraken does not document the error for a reused open cl_ord_id; ours.
DUPLICATE_CL_ORD_ID = "EOrder:Duplicate cl_ord_id"


@dataclass(frozen=True, slots=True)
class OrderRules(EngineRules):
    """The engine's rules and the Kraken front's answers where Kraken does not pin them
    down; each default is our choice."""

    #: Kraken enforces unique ``cl_ord_id`` among open orders but does not document the error.
    duplicate_cl_ord_id_error: str = DUPLICATE_CL_ORD_ID
    #: Cancelling an unknown or closed order: Kraken's SDK reports ``EOrder:Invalid order``
    #: for both; the error table lists ``EOrder:Unknown order``.
    unknown_order_error: str = "EOrder:Unknown order"


def api_sign(path: str, nonce_text: str, body: bytes, secret_b64: str) -> str:
    """``base64(HMAC-SHA512(base64decode(secret), path + SHA256(nonce + body)))``, with the
    nonce as the text the request carried."""
    digest = hashlib.sha256(nonce_text.encode() + body).digest()
    key = base64.b64decode(secret_b64)
    return base64.b64encode(hmac.new(key, path.encode() + digest, hashlib.sha512).digest()).decode()


@dataclass(frozen=True, slots=True)
class Tier:
    """One verification tier's counters: maximum and decay per second."""

    rest_max: float
    rest_decay: float
    engine_max: float
    engine_decay: float


#: protocols.md 1.6 (``test`` decays fast, for tests of pacing).
TIERS: dict[str, Tier] = {
    "starter": Tier(rest_max=15, rest_decay=0.33, engine_max=60, engine_decay=1.0),
    "intermediate": Tier(rest_max=20, rest_decay=0.5, engine_max=125, engine_decay=2.34),
    "pro": Tier(rest_max=20, rest_decay=1.0, engine_max=180, engine_decay=3.75),
    "test": Tier(rest_max=20, rest_decay=200.0, engine_max=60, engine_decay=600.0),
}

_REST_TWO = frozenset({"Ledgers", "QueryLedgers", "TradesHistory", "QueryTrades"})
_ENGINE_ONLY = frozenset(
    {"AddOrder", "AddOrderBatch", "CancelOrder", "CancelOrderBatch", "EditOrder", "AmendOrder"}
)
#: (younger than seconds, engine points) for cancelling, amending (+1 besides) and editing
#: (+1 besides) a resting order, by the seconds since it was placed or last amended.
_CANCEL_COST = ((5, 8), (10, 6), (15, 5), (45, 4), (90, 2), (300, 1))
_AMEND_COST = ((5, 3), (10, 2), (15, 1))
_EDIT_COST = ((5, 6), (10, 5), (15, 4), (45, 2), (90, 1))
#: Calls that change a resting order: (fixed points, points by its age).
_ORDER_CHANGES = {
    "CancelOrder": (0, _CANCEL_COST),
    "AmendOrder": (1, _AMEND_COST),
    "EditOrder": (1, _EDIT_COST),
}

#: ``age(ref)``: (pair, seconds resting) of the key's order by txid or client id, or None.
Age = Callable[[str], tuple[str, float] | None]


def rest_points(endpoint: str) -> int:
    """Points on the key's REST counter (order calls go to the engine counter instead)."""
    if endpoint in _ENGINE_ONLY:
        return 0
    return 2 if endpoint in _REST_TWO else 1


def engine_points(endpoint: str, body: Mapping[str, Any], age: Age) -> dict[str, int]:
    """Points per pair on the engine counter: +1 per order added; a cancel, amend or edit by
    its order's age (an order of unknown age costs the most)."""
    if endpoint == "AddOrder":
        return {str(body.get("pair", "")): 1}
    if endpoint == "AddOrderBatch":
        return {str(body.get("pair", "")): len(body.get("orders", ()))}
    if endpoint in _ORDER_CHANGES:
        fixed, table = _ORDER_CHANGES[endpoint]
        found = age(str(body.get("cl_ord_id") or body.get("txid") or ""))
        if found is None:
            return {str(body.get("pair", "")): fixed + table[0][1]}
        pair, seconds = found
        return {pair: fixed + next((cost for limit, cost in table if seconds < limit), 0)}
    return {}
