"""What the sandbox checks in an order before the engine takes it (protocols.md's
checklist): required fields, the order type, ``price`` for limit orders, volume precision,
minimum size and tick size, ``userref`` xor ``cl_ord_id`` and the ``cl_ord_id`` format, and
Kraken's ``deadline``. Each failure is Kraken's own error string. :func:`place` hands a
checked order to the engine (framework/sandbox/engine.py)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from framework.sandbox.auth import KrakenFailure
from framework.sandbox.engine import DUPLICATE_CLIENT_ID, Refused, SimOrder
from framework.sandbox.market import PAIRS
from framework.sandbox.reads import KrakenReads

_UUID = re.compile(
    r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
)


def valid_cl_ord_id(value: str) -> bool:
    """A UUID (with or without dashes) or at most 18 printable ASCII characters."""
    return bool(_UUID.match(value)) or (
        0 < len(value) <= 18 and value.isascii() and value.isprintable()
    )


ORDER_TYPES = {
    "market",
    "limit",
    "iceberg",
    "stop-loss",
    "take-profit",
    "stop-loss-limit",
    "take-profit-limit",
    "trailing-stop",
    "trailing-stop-limit",
    "settle-position",
}
SUPPORTED = {"market", "limit"}


_TOO_LARGE = Decimal(10) ** 15


def amount(value: Any, name: str) -> Decimal:
    """A number from an order's field, or Kraken's invalid-arguments error naming it."""
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise KrakenFailure(f"EGeneral:Invalid arguments:{name}") from None
    if not number.is_finite() or abs(number) >= _TOO_LARGE:  # no book holds such amounts
        raise KrakenFailure(f"EGeneral:Invalid arguments:{name}")
    return number


def parse_order(order: Mapping[str, Any], pair: str) -> tuple[str, str, Decimal, Decimal | None]:
    for name in ("type", "ordertype", "volume"):
        if name not in order:
            raise KrakenFailure(f"EGeneral:Invalid arguments:{name}")
    if pair not in PAIRS:
        raise KrakenFailure("EQuery:Unknown asset pair")
    info = PAIRS[pair]
    side, ordertype = str(order["type"]), str(order["ordertype"])
    if side not in ("buy", "sell"):
        raise KrakenFailure("EGeneral:Invalid arguments:type")
    if ordertype not in ORDER_TYPES:
        raise KrakenFailure("EGeneral:Invalid arguments:ordertype")
    if ordertype not in SUPPORTED:
        raise KrakenFailure("EGeneral:Invalid arguments:ordertype not in sandbox")
    volume = amount(order["volume"], "volume")
    if volume <= 0 or info.too_fine(volume):
        raise KrakenFailure("EGeneral:Invalid arguments:volume")
    if volume < Decimal(info.ordermin):
        raise KrakenFailure("EOrder:Order minimum not met")
    price = None
    if ordertype == "limit":
        if "price" not in order:
            raise KrakenFailure("EGeneral:Invalid arguments:price")
        price = amount(order["price"], "price")
        if price <= 0:
            raise KrakenFailure("EOrder:Invalid price")
        if price % info.tick != 0:
            raise KrakenFailure("EOrder:Tick size check failed")
        price = price.quantize(info.tick)  # shown with the pair's decimals, as Kraken does
    cl_ord_id, userref = order.get("cl_ord_id"), order.get("userref")
    if cl_ord_id is not None and userref is not None:
        raise KrakenFailure("EGeneral:Invalid arguments:cl_ord_id and userref")
    if cl_ord_id is not None and not valid_cl_ord_id(str(cl_ord_id)):
        raise KrakenFailure("EGeneral:Invalid arguments:cl_ord_id")
    if userref is not None and userref_of(userref) is None:
        raise KrakenFailure("EGeneral:Invalid arguments:userref")
    return side, ordertype, volume, price


def userref_of(value: Any) -> int | None:
    """Kraken's ``userref`` (a 32-bit signed integer) from a field, or None if it is not one."""
    try:
        number = int(str(value))
    except ValueError:
        return None
    return number if -(2**31) <= number < 2**31 else None


def check_deadline(body: Mapping[str, Any], now: float) -> None:
    """Kraken's ``deadline`` (RFC 3339, at most 60 s ahead): an order reaching the engine
    after it is refused, never placed."""
    deadline = body.get("deadline")
    if deadline is None:
        return
    try:
        when = dt.datetime.fromisoformat(str(deadline).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise KrakenFailure("EGeneral:Invalid arguments:deadline") from None
    if when > now + 60:
        raise KrakenFailure("EGeneral:Invalid arguments:deadline")
    if when < now:
        raise KrakenFailure("EService:Deadline elapsed")


def place(engine: KrakenReads, key: str, order: Mapping[str, Any], pair: str) -> SimOrder:
    """A Kraken order (an AddOrder body, or one order of a batch) checked, then given to
    the engine; its refusal becomes Kraken's error string."""
    side, _, volume, price = parse_order(order, pair)
    oflags = str(order.get("oflags", ""))
    timeinforce = str(order.get("timeinforce", "GTC"))
    if timeinforce not in ("GTC", "IOC", "FOK"):  # GTD (with expiretm) is not in the sandbox
        raise KrakenFailure("EGeneral:Invalid arguments:timeinforce")
    if timeinforce != "GTC" and "post" in oflags.split(","):
        raise KrakenFailure("EGeneral:Invalid arguments:post only with timeinforce")
    reduce_only = str(order.get("reduce_only", "false")).lower()
    if reduce_only not in ("true", "false"):
        raise KrakenFailure("EGeneral:Invalid arguments:reduce_only")
    if reduce_only == "true":  # spot only: no margin position to reduce
        raise KrakenFailure("EOrder:Reduce only:No position exists")
    cl_ord_id, userref = order.get("cl_ord_id"), order.get("userref")
    try:
        return engine.place(
            key,
            pair,
            side,
            volume,
            price,
            post_only="post" in oflags.split(","),
            cl_ord_id=str(cl_ord_id) if cl_ord_id is not None else None,
            userref=userref_of(userref) if userref is not None else None,
            oflags=oflags,
            timeinforce=timeinforce,
        )
    except Refused as refused:
        if refused.reason == DUPLICATE_CLIENT_ID:
            raise KrakenFailure(engine.rules.duplicate_cl_ord_id_error) from None
        raise KrakenFailure("EOrder:Insufficient funds") from None
