"""The sandbox's AmendOrder (in place) and EditOrder (a new order replaces the old), in
Kraken's shapes over the engine."""

from __future__ import annotations

from typing import Any

from framework.sandbox.auth import KrakenFailure
from framework.sandbox.kraken_shapes import description
from framework.sandbox.market import ALIASES, PAIRS
from framework.sandbox.order_checks import amount, check_deadline, parse_order, place
from framework.sandbox.reads import KrakenReads

#: Kraken documents that a post-only amend through the spread is refused, not its string.
POST_ONLY_AMEND_ERROR = "EOrder:Post only order"


class KrakenChanges(KrakenReads):
    """Kraken's change endpoints over the engine."""

    _amends = 0

    def amend_order(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        """Change an open order in place (same txid, same place in time), all or nothing:
        ``order_qty`` (above what has filled) and/or ``limit_price``; by ``txid`` or
        ``cl_ord_id``. ``deadline`` as on AddOrder (an amend reaching the engine after it is
        refused); ``post_only``: a new price that would take liquidity is refused (the error
        string is the sandbox's guess, :data:`POST_ONLY_AMEND_ERROR`). The funds a larger order
        needs are not checked again (a sandbox simplification)."""
        self.sync()
        check_deadline(body, self.market.now())
        ref: dict[str, Any] = {k: body[k] for k in ("txid", "cl_ord_id") if k in body}
        if len(ref) != 1:
            raise KrakenFailure("EGeneral:Invalid arguments:txid")
        hits = self._select(key, ref, open_only=True)
        if not hits:
            raise KrakenFailure(self.rules.unknown_order_error)
        order = hits[0]
        qty, price, touch = order.volume, order.price, None
        if "order_qty" in body:
            qty = amount(body["order_qty"], "order_qty")
            if qty <= order.filled:
                raise KrakenFailure("EGeneral:Invalid arguments:order_qty")
        if "limit_price" in body:
            price = amount(body["limit_price"], "limit_price")
            if order.price is None or price <= 0:
                raise KrakenFailure("EGeneral:Invalid arguments:limit_price")
            if price % PAIRS[order.pair].tick != 0:
                raise KrakenFailure("EOrder:Tick size check failed")
            price = price.quantize(PAIRS[order.pair].tick)
            bid, ask = self.market.quote(order.pair)
            if price >= ask if order.side == "buy" else price <= bid:  # through the spread
                if str(body.get("post_only", "")).lower() in ("true", "1"):
                    raise KrakenFailure(POST_ONLY_AMEND_ERROR)
                touch = ask if order.side == "buy" else bid
        order.volume, order.price = qty, price
        self._amends += 1
        order.amendtm = self.market.now()
        self._emit("amended", order, None)
        if touch is not None:  # it trades at once, as a new order through the spread would
            self._fill(order, order.remaining, touch, maker=False)
        return {"amend_id": f"TAM{self._amends:05d}-SBX"}

    def edit_order(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        """Replace an open order by a new one (a new txid): ``volume`` and/or ``price``
        change, the rest is the old order's; checked in full before the old one goes."""
        self.sync()
        pair = ALIASES.get(str(body.get("pair", "")), "")
        if "txid" not in body or not pair:
            raise KrakenFailure("EGeneral:Invalid arguments:txid")
        hits = [o for o in self._select(key, {"txid": body["txid"]}, True) if o.pair == pair]
        if not hits:
            raise KrakenFailure(self.rules.unknown_order_error)
        old = hits[0]
        new = {
            "type": old.side,
            "ordertype": old.ordertype,
            "volume": str(body.get("volume", old.volume - old.filled)),
            **({"price": str(body.get("price", old.price))} if old.price is not None else {}),
            **({"userref": body.get("userref", old.userref)} if old.userref is not None else {}),
        }
        parse_order(new, pair)
        self.cancel([old])
        sim = place(self, key, new, pair)
        return {
            "status": "ok",
            "txid": sim.txid,
            "originaltxid": old.txid,
            "volume": str(sim.volume),
            "price": str(sim.price),
            "orders_cancelled": 1,
            "descr": {"order": description(sim)},
        }
