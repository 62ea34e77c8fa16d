"""``ctx.market(pair)``: a pair's price step, volume step and smallest volume, as the
exchange states them, and rounding to them. A new user's quotes at mid +- 3 bps were all
refused (``EOrder:Tick size check failed``); rounded with the pair's market, they rest."""

from __future__ import annotations

from decimal import Decimal, localcontext
from pathlib import Path

import pytest

from framework import Market
from framework.errors import InvalidArguments
from framework.events import OrderState
from framework.execution import Execution
from framework.market import step_of
from framework.orders import LimitOrder
from framework.strategy import Context
from strategies.grid import Grid
from strategies.twap import Twap
from tests.test_order_manager import exchange

XBT = Market("XBTUSD", Decimal("0.1"), Decimal("1E-8"), Decimal("0.0001"))


@pytest.mark.parametrize(
    ("price", "side", "expected"),
    [
        ("59977.23456", "buy", "59977.2"),  # a buy never pays more
        ("59977.23456", "sell", "59977.3"),  # a sell never takes less
        ("59977.2", "buy", "59977.2"),  # on the step already: unchanged
        ("59977.2", "sell", "59977.2"),
        (60000, "sell", "60000.0"),
    ],
)
def test_a_price_goes_on_the_step_toward_its_own_side(
    price: str | int, side: str, expected: str
) -> None:
    rounded = XBT.round_price(price, side)  # type: ignore[arg-type]
    assert rounded == Decimal(expected) and str(rounded) == expected


def test_odd_steps_and_unknown_rules() -> None:
    half = Market("X", price_step=Decimal("0.5"), volume_step=Decimal("5"))
    assert str(half.round_price("100.74", "buy")) == "100.5"
    assert str(half.round_price("100.26", "sell")) == "100.5"
    assert str(half.round_volume("14.9")) == "10"  # whole multiples of 5, rounded down
    assert str(Market("X", price_step=Decimal("10")).round_price("60004", "buy")) == "60000"
    unknown = Market("X")  # an exchange whose rules are not read: amounts as given
    assert unknown.round_price("1.23456789", "buy") == Decimal("1.23456789")
    assert unknown.round_volume("0.123456789") == Decimal("0.123456789")


def test_volume_rounds_down_and_may_fall_below_the_minimum() -> None:
    assert XBT.round_volume("0.0012345678912") == Decimal("0.00123456")
    assert XBT.round_volume("0.000000001") == 0  # checking min_volume is the strategy's


@pytest.mark.parametrize("bad", [1.5, "lots", True, -1, Decimal("NaN")])
def test_bad_amounts_and_sides_are_refused_as_orders_refuse_them(bad: object) -> None:
    with pytest.raises(InvalidArguments):
        XBT.round_price(bad, "buy")  # type: ignore[arg-type]
    with pytest.raises(InvalidArguments):
        XBT.round_volume(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidArguments):
        XBT.round_price("1", "hold")  # type: ignore[arg-type]


async def test_rounded_quotes_rest_where_raw_ones_are_refused(
    tmp_path: Path, creds: tuple[str, str]
) -> None:
    async with exchange(tmp_path, creds) as (_, venue):
        ctx = Context(Execution(venue, [].append, clock=venue.client.clock), name="mm")
        market = await ctx.market("XBTUSD")
        assert market == XBT  # from AssetPairs: tick_size, lot_decimals, ordermin
        assert await ctx.market("XBTUSD") is market  # asked once, then kept
        assert (await ctx.market("ETHUSD")).price_step == Decimal("0.01")
        mid = (await venue.ticker("XBTUSD")).mid
        raw = mid * Decimal("0.999733")
        assert raw != raw.quantize(Decimal("0.1"))  # off the tick, as a new user computes it
        refused = await ctx.place(LimitOrder("XBTUSD", "buy", Decimal("0.001"), raw))
        assert refused.state is OrderState.REJECTED
        assert refused.reason == "EOrder:Tick size check failed"
        rests = await ctx.place(
            LimitOrder("XBTUSD", "buy", Decimal("0.001"), market.round_price(raw, "buy"))
        )
        assert rests.state is OrderState.ACCEPTED


async def test_the_examples_take_their_steps_from_the_exchange(
    tmp_path: Path, creds: tuple[str, str]
) -> None:
    async with exchange(tmp_path, creds) as (_, venue):
        ctx = Context(Execution(venue, [].append, clock=venue.client.clock), name="Grid")
        for pair, params, step in [
            ("XBTUSD", Grid.Params(), Decimal("0.1")),
            ("ETHUSD", Grid.Params(), Decimal("0.01")),
            ("ETHUSD", Grid.Params(tick=Decimal("0.5")), Decimal("0.5")),  # params win
        ]:
            grid = Grid()
            grid.ctx, grid.params, grid.pair, grid.tick = ctx, params, pair, params.tick
            assert await grid.price_step() == step
        twap = Twap()
        twap.ctx = Context(
            Execution(venue, [].append, clock=venue.client.clock), name="Twap", pairs=["XBTUSD"]
        )
        twap.ctx._remember(await venue.ticker("XBTUSD"))
        twap.params = Twap.Params(total=Decimal("0.0100000001"), slices=3)
        twap.ctx.state.update(done=Decimal(0), sent=0)
        twap.working, twap.lot = None, None
        await twap.next_slice()
        assert twap.working is not None and twap.working.state is OrderState.ACCEPTED
        assert twap.working.volume == Decimal("0.00333333")  # lot_decimals 8: rounded down


@pytest.mark.parametrize("odd", ["1e-30", "0.000000000000000001", "1e17", "7"])
def test_rounding_to_any_step_an_answer_can_give_is_exact_or_unknown(odd: str) -> None:
    """A tiny step from a hostile AssetPairs answer crashed rounding with a bare
    ``decimal.InvalidOperation`` (more digits than Decimal's default 28)."""
    step = step_of(odd)
    market = Market("X", step, step)
    for price in ["60000.123", "99999999999999999", "0.000000001"]:
        buy, sell = market.round_price(price, "buy"), market.round_price(price, "sell")
        assert buy <= Decimal(price) <= sell
        if step is not None:
            with localcontext() as exact:
                exact.prec = 100
                assert buy % step == 0 and sell % step == 0
    assert market.round_volume("12345.678") <= Decimal("12345.678")


@pytest.mark.parametrize(
    ("raw", "step"),
    [("0.1", "0.1"), (0.0001, "0.0001"), (5, "5"), (" 0.5 ", "0.5"), ("0", None), (-1, None),
     (True, None), (None, None), ("NaN", None), (float("inf"), None), ([0.1], None)],
)  # fmt: skip
def test_a_step_is_read_from_a_string_or_a_json_number(raw: object, step: str | None) -> None:
    assert step_of(raw) == (None if step is None else Decimal(step))
