"""``orderly orders``: what the order journal holds, per key: the open orders (as the bot
last knew them), the newest fills and what each strategy keeps in ``ctx.state``. Only
reads (no row written, no file created), so it can look at a running bot's journal.
Imported by :mod:`framework.cli` when this command runs."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

from framework.events import Fill
from framework.orders import LimitOrder, TrackedOrder


def _order_line(order: TrackedOrder) -> str:
    request = order.request
    price = request.price if isinstance(request, LimitOrder) else "market"
    flags = [
        *(["post-only"] if isinstance(request, LimitOrder) and request.post_only else []),
        *(
            [request.time_in_force]
            if isinstance(request, LimitOrder) and request.time_in_force != "gtc"
            else []
        ),
        *(["reduce-only"] if request.reduce_only else []),
    ]
    return (
        f"  {order.state.value:<16} {request.side:<4} {request.volume.normalize():f} "
        f"{request.pair} @ {price}  filled {order.filled.normalize():f}"
        f"{'  ' + ','.join(flags) if flags else ''}  txid {order.txid or '-'}  {order.cl_ord_id}"
    )


def _fill_line(fill: Fill) -> str:
    when = dt.datetime.fromtimestamp(fill.time, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    return (
        f"  {when}  {fill.side:<4} {fill.volume.normalize():f} {fill.pair} @ {fill.price}  "
        f"fee {fill.fee}{'  maker' if fill.maker else ''}  trade {fill.trade_id}  "
        f"{fill.cl_ord_id}"
    )


def orders(args: argparse.Namespace) -> int:
    from framework.cli_nonces import config_at
    from framework.journal import read_journal
    from framework.strategy_state import load

    path: Path = args.journal or config_at(args.config).state.journal
    keys = read_journal(path, args.fills)
    if not keys:
        print(f"{path}: no orders")
    for exchange, key_id, open_orders, fills, states in keys:
        print(f"{exchange} key {key_id}: {len(open_orders)} open")
        print(*map(_order_line, open_orders), sep="\n", end="\n" if open_orders else "")
        print(f"{exchange} key {key_id}: {len(fills)} newest fills")
        print(*map(_fill_line, fills), sep="\n", end="\n" if fills else "")
        for strategy, text in states:  # ctx.state, Decimals shown as their digits
            state = json.dumps(load(text, str(path)), default=str, sort_keys=True)
            print(f"{exchange} key {key_id}: {strategy} keeps {state}")
    return 0
