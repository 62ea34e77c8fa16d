"""Many coroutines, one API key, zero nonce errors: the lane at work against the sandbox.

    make run                      (or: .venv/bin/python strategies/nonce_demo.py)

Starts the embedded sandbox exchange on 127.0.0.1 with a random 0-5 ms delay before its
nonce check (so requests overtake each other, as on a real network), then lets 16 "quoting"
coroutines place and cancel limit orders through one KrakenClient for a few seconds. Every
call goes through the key's lane, so the sandbox sees strictly increasing nonces. State goes
to ./.orderly-demo/, so afterwards you can run

    .venv/bin/orderly nonces tail --file .orderly-demo/history/nonces.jsonl
    .venv/bin/orderly nonces check --file .orderly-demo/history/nonces.jsonl

Copy this file to start your own script; the Strategy base class comes next.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from decimal import Decimal
from pathlib import Path

import uvloop

from framework import OrderlyError, log
from framework.exchanges.kraken import KrakenClient
from framework.nonce import NonceHistory, SqliteStore
from framework.sandbox import Sandbox, generate_credentials

STATE = Path(".orderly-demo")
QUOTERS = 16
SECONDS = 5


async def quoter(
    kraken: KrakenClient, mid: Decimal, stop: asyncio.Event, tally: dict[str, int]
) -> None:
    """Place a bid a little under the mid, look it up by its client order id, cancel it."""
    while not stop.is_set():
        cl_ord_id = uuid.uuid4().hex  # our own id, known before the order is sent
        price = (mid * Decimal(1 - random.uniform(0.001, 0.01))).quantize(Decimal("0.1"))
        try:
            await kraken.add_order(
                pair="XBTUSD",
                side="buy",
                ordertype="limit",
                volume=Decimal("0.01"),
                price=price,
                cl_ord_id=cl_ord_id,
            )
            assert await kraken.open_orders(cl_ord_id=cl_ord_id)
            await kraken.cancel_order(cl_ord_id=cl_ord_id)
            tally["orders"] += 1
        except OrderlyError as exc:  # typed, says what and where; the loop keeps going
            tally["errors"] += 1
            print(f"  error: {exc}")


async def main() -> None:
    log.configure("warning")
    key, secret = generate_credentials()  # throwaway credentials for this sandbox run
    async with Sandbox({key: secret}, delay_ms=(0, 5)) as sandbox:
        store = SqliteStore(STATE / "nonces.sqlite")
        history = NonceHistory(STATE / "history" / "nonces.jsonl")
        async with KrakenClient(
            key, secret, sandbox.base_url, store=store, history=history
        ) as kraken:
            mid = (await kraken.ticker("XBTUSD")).last
            print(f"sandbox at {sandbox.base_url}; key {kraken.key_id}; XBTUSD mid {mid}")
            print(f"{QUOTERS} coroutines quoting through one strict lane for {SECONDS} s ...")
            stop, tally = asyncio.Event(), {"orders": 0, "errors": 0}
            async with asyncio.TaskGroup() as group:
                for _ in range(QUOTERS):
                    group.create_task(quoter(kraken, mid, stop, tally))
                for second in range(1, SECONDS + 1):
                    await asyncio.sleep(1)
                    stats = sandbox.stats()[kraken.key_id]
                    print(
                        f"  t={second}s  orders placed+cancelled {tally['orders']:>5}  "
                        f"nonces accepted {stats['accepted']:>5}  "
                        f"refused {stats['invalid_nonce']}"
                    )
                stop.set()
        store.close()
        history.close()
        stats = sandbox.stats()[kraken.key_id]
    print(
        f"done: {stats['accepted']} private calls, {stats['invalid_nonce']} nonce refusals, "
        f"{tally['errors']} errors; last nonce {stats['last_nonce']}"
    )
    print(
        f"nonce history: {STATE / 'history' / 'nonces.jsonl'} "
        "(try: .venv/bin/orderly nonces check --file .orderly-demo/history/nonces.jsonl)"
    )


if __name__ == "__main__":
    uvloop.run(main())
