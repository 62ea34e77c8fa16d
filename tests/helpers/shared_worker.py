"""One bot process on a key shared through Redis (tests/test_shared_key.py).

    python -m tests.helpers.shared_worker SANDBOX_URL REDIS_URL STATE_DIR NAME ROUNDS

16 coroutines each make ROUNDS rounds of one Balance call and one limit order placed
through the order manager. Prints ``sender
<monotonic time>`` when this process becomes the key's sender, ``placed <id> <state>``
for each order, and ``done`` at the end. Credentials: ORDERLY_TEST_API_KEY / _SECRET; the
lease TTL is 1 s unless ORDERLY_TEST_TTL says otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from decimal import Decimal
from pathlib import Path

from framework.config import Config
from framework.errors import OrderlyError
from framework.exchanges.kraken.venue import kraken_venue
from framework.execution import Execution
from framework.orders import LimitOrder


async def main(url: str, redis_url: str, state: Path, name: str, rounds: int) -> None:
    config = Config.model_validate(
        {
            "exchange": {"tier": "none", "timeout_s": 2},
            "state": {
                "store": str(state / "nonces.sqlite"),
                "history": str(state / "history.jsonl"),
                "journal": str(state / "orders.sqlite"),
                "backend": "redis",
                "redis_url": redis_url,
                "lease_ttl_s": float(os.environ.get("ORDERLY_TEST_TTL", "1.0")),
            },
        }
    )
    key, secret = os.environ["ORDERLY_TEST_API_KEY"], os.environ["ORDERLY_TEST_API_SECRET"]
    async with kraken_venue(config, key, secret, url) as venue:
        lane = venue.client.lane

        async def watch() -> None:
            was = False
            while True:
                now = bool(getattr(lane, "is_sender", False))
                if now and not was:
                    print(f"sender {time.monotonic()}", flush=True)
                was = now
                await asyncio.sleep(0.01)

        watcher = asyncio.create_task(watch())
        execution = Execution(venue, lambda event: None)

        async def worker(n: int) -> None:
            for _ in range(rounds):
                with contextlib.suppress(OrderlyError):
                    await venue.balances()
                order = LimitOrder(
                    pair="XBTUSD", side="buy", volume=Decimal("0.001"), price=Decimal(1000 + n)
                )
                update = await execution.place(order)
                print(f"placed {update.cl_ord_id} {update.state.value}", flush=True)

        await asyncio.gather(*(worker(n) for n in range(16)))
        print("done", flush=True)
        watcher.cancel()
        await execution.close()


if __name__ == "__main__":
    import faulthandler
    import signal

    faulthandler.register(signal.SIGUSR1, all_threads=True)
    url, redis_url, state, name, rounds = sys.argv[1:6]
    asyncio.run(main(url, redis_url, Path(state), name, int(rounds)))
