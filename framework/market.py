"""A pair's trading rules as its exchange states them, and rounding to them.

``await ctx.market("XBTUSD")`` gives a :class:`Market`: the price step (Kraken's
``tick_size``), the volume step (``lot_decimals``) and the smallest order volume
(``ordermin``). A price computed from the mid (``t.mid * Decimal("0.9997")``) has more
decimals than the exchange takes and is refused (Kraken: ``EOrder:Tick size check failed``);
``market.round_price(price, "buy")`` puts it on the step. Orderly never rounds an order by
itself: what is sent is what the strategy asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation, localcontext

from framework.orders import Side, check_amount, check_side


@dataclass(frozen=True, slots=True)
class Market:
    """The rules of one pair; a rule the exchange does not state (or stated unreadably) is
    None, and rounding to it leaves an amount as given."""

    pair: str
    price_step: Decimal | None = None  # prices are whole multiples of it
    volume_step: Decimal | None = None  # volumes are whole multiples of it
    min_volume: Decimal | None = None  # the smallest volume an order may have

    def round_price(self, price: Decimal | str | int, side: Side) -> Decimal:
        """``price`` on the price step, never worse for ``side``: a buy's price rounds down,
        a sell's up (a quote stays on its side of the book; a limit never pays more)."""
        check_side(side)
        rounding = ROUND_FLOOR if side == "buy" else ROUND_CEILING
        return _on_step(check_amount(price, "price"), self.price_step, rounding)

    def round_volume(self, volume: Decimal | str | int) -> Decimal:
        """``volume`` down to the volume step (never more than asked). It may then be below
        :attr:`min_volume`, or 0: check before placing."""
        return _on_step(check_amount(volume, "volume"), self.volume_step, ROUND_FLOOR)


def _on_step(value: Decimal, step: Decimal | None, rounding: str) -> Decimal:
    if step is None:
        return value
    places = Decimal(1).scaleb(min(0, int(step.as_tuple().exponent)))  # 60000, not 6.0E+4
    with localcontext() as exact:  # an amount under 1e18 on a step of 1e-30: 48+ digits
        exact.prec = 100
        return ((value / step).to_integral_value(rounding) * step).quantize(places)


def step_of(text: object) -> Decimal | None:
    """A positive finite step or minimum from an exchange's answer (a string, or a JSON
    number: 0.0001 reads as its shortest form); None for anything else (an odd answer makes
    a rule unknown, never an error that blocks trading)."""
    if isinstance(text, bool) or not isinstance(text, str | int | float | Decimal):
        return None
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() and Decimal("1e-30") <= value < 10**18 else None


def decimals_step(decimals: object) -> Decimal | None:
    """The step of an amount with ``decimals`` places (Kraken's ``pair_decimals``, Bitunix's
    ``quotePrecision``); None unless a whole number from 0 to 18."""
    if isinstance(decimals, bool) or not isinstance(decimals, int | str):
        return None
    try:
        places = int(decimals)
    except ValueError:
        return None
    return Decimal(1).scaleb(-places) if 0 <= places <= 18 else None
