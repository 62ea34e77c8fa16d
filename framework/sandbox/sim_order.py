"""One order as the sandbox's matching engine keeps it, its Kraken-shaped view, and what
makes a valid client order id."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

_UUID = re.compile(
    r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
)


def valid_cl_ord_id(value: str) -> bool:
    """A UUID (with or without dashes) or at most 18 printable ASCII characters."""
    return bool(_UUID.match(value)) or (
        0 < len(value) <= 18 and value.isascii() and value.isprintable()
    )


@dataclass(slots=True)
class SimOrder:
    txid: str
    key: str
    pair: str
    side: str
    ordertype: str
    price: Decimal | None
    volume: Decimal
    opentm: float
    cl_ord_id: str | None = None
    userref: int | None = None
    oflags: str = ""
    filled: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)
    fee: Decimal = Decimal(0)
    status: str = "open"
    closetm: float | None = None
    reason: str | None = None
    trades: list[str] = field(default_factory=list)

    @property
    def remaining(self) -> Decimal:
        return self.volume - self.filled

    def description(self) -> str:
        price = f" {self.price}" if self.price is not None else ""
        return f"{self.side} {self.volume} {self.pair} @ {self.ordertype}{price}"

    def kraken(self, with_trades: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "refid": None,
            "userref": self.userref,
            "status": self.status,
            "opentm": self.opentm,
            "starttm": 0,
            "expiretm": 0,
            "descr": {
                "pair": self.pair,
                "type": self.side,
                "ordertype": self.ordertype,
                "price": str(self.price or 0),
                "price2": "0",
                "leverage": "none",
                "order": self.description(),
                "close": "",
            },
            "vol": str(self.volume),
            "vol_exec": str(self.filled),
            "cost": str(self.cost),
            "fee": str(self.fee),
            "price": str(self.cost / self.filled) if self.filled else "0",
            "stopprice": "0",
            "limitprice": "0",
            "misc": "",
            "oflags": self.oflags,
        }
        if self.cl_ord_id is not None:
            out["cl_ord_id"] = self.cl_ord_id
        if self.closetm is not None:
            out["closetm"] = self.closetm
        if self.reason is not None:
            out["reason"] = self.reason
        if with_trades and self.trades:
            out["trades"] = list(self.trades)
        return out
