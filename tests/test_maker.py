"""The example market maker (strategies/maker.py): two post-only quotes on the pair's price
step, moved by amends (no cancel) when the mid moves, shifted against the inventory, and no
quote on a side whose fill would pass ``max_position``."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path

from framework.events import Fill, OrderState, Started, Ticker
from framework.execution import Execution
from framework.orders import LimitOrder
from framework.strategy import Context
from strategies.maker import Maker, quote_price
from tests.test_order_manager import exchange, sent

PARAMS = Maker.Params(half_spread_bps=Decimal(5), skew_bps=Decimal(3), requote_bps=Decimal(2))


def test_quotes_sit_around_the_mid_and_lean_against_the_inventory() -> None:
    mid, most = Decimal(60000), PARAMS.max_position
    assert quote_price(mid, "buy", PARAMS, Decimal(0)) == Decimal(59970)
    assert quote_price(mid, "sell", PARAMS, Decimal(0)) == Decimal(60030)
    assert quote_price(mid, "buy", PARAMS, most) == Decimal(59952)  # long: lower, by 3 bps
    assert quote_price(mid, "sell", PARAMS, 5 * most) == Decimal(60012)  # never past 3 bps
    assert quote_price(mid, "sell", PARAMS, -most) == Decimal(60048)  # short: higher


def moved(ticker: Ticker, bps: int) -> Ticker:
    shift = ticker.mid * bps / 10_000
    return dataclasses.replace(ticker, bid=ticker.bid + shift, ask=ticker.ask + shift)


async def test_the_maker_quotes_on_the_step_and_moves_its_quotes_by_amends(
    tmp_path: Path, creds: tuple[str, str]
) -> None:
    async with exchange(tmp_path, creds) as (sandbox, venue):
        execution = Execution(venue, [].append, clock=venue.client.clock)
        maker = Maker()
        maker.ctx = Context(execution, name="Maker", pairs=["XBTUSD"], clock=venue.client.clock)
        maker.params = PARAMS.model_copy(update={"half_spread_bps": Decimal(20)})
        await maker.on_start(Started(0.0, inherited=()))
        first = await venue.ticker("XBTUSD")
        await maker.on_tick(first)
        resting = sorted(sandbox.engine.open.values(), key=lambda o: o.price)
        assert [o.side for o in resting] == ["buy", "sell"]  # both on the 0.1 step: accepted
        before = [o.price for o in resting]
        assert sent(venue, "AddOrder") == 2
        await maker.on_tick(moved(first, 1))  # under requote_bps: left where they are
        assert sent(venue, "AmendOrder") == 0
        await maker.on_tick(moved(first, 10))
        assert sent(venue, "AmendOrder") == 2 and sent(venue, "CancelOrder") == 0
        prices = sorted(o.price for o in sandbox.engine.open.values())
        assert prices == sorted(o.price for o in execution.open_orders())  # bot == exchange
        assert prices[0] > before[0] and prices[1] > before[1]
        zero = Decimal(0)  # bought up to the limit: the bid goes, the ask stays
        at_limit = Fill("t1", "x", None, "XBTUSD", "buy", first.mid, PARAMS.max_position,
                        zero, True, 0.0)  # fmt: skip
        await maker.on_fill(at_limit)
        await maker.on_tick(moved(first, 10))
        assert [o.side for o in execution.open_orders()] == ["sell"]
        assert [o.side for o in sandbox.engine.open.values()] == ["sell"]
        assert all(o.state is OrderState.ACCEPTED for o in execution.open_orders())


async def test_after_a_restart_the_maker_keeps_one_quote_a_side_and_cancels_the_rest(
    tmp_path: Path, creds: tuple[str, str]
) -> None:
    async with exchange(tmp_path, creds) as (sandbox, venue):
        execution = Execution(venue, [].append, clock=venue.client.clock)
        bid, ask = sandbox.engine.market.quote("XBTUSD")
        volume = Decimal("0.001")
        for side, price in [("buy", bid - 10), ("buy", bid - 20), ("sell", ask + 10)]:
            await execution.place(LimitOrder("XBTUSD", side, volume, price))  # type: ignore[arg-type]
        inherited = tuple(execution.open_orders())  # what Started brings after a restart
        maker = Maker()
        maker.ctx = Context(execution, name="Maker", pairs=["XBTUSD"], clock=venue.client.clock)
        maker.params = PARAMS
        await maker.on_start(Started(0.0, inherited=inherited))
        assert sorted(maker.quotes) == ["buy", "sell"]
        assert sorted(o.price for o in sandbox.engine.open.values()) == [bid - 10, ask + 10]
