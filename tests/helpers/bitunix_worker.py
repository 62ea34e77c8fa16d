"""One Bitunix bot process placing orders as fast as it may (tests/test_shared_key.py).

    python -m tests.helpers.bitunix_worker URL REDIS_URL NAME COUNT

Credentials: ORDERLY_TEST_API_KEY / _SECRET. Prints ``done`` at the end.
"""

from __future__ import annotations

import asyncio
import os
import sys

from framework.exchanges.bitunix import BitunixClient


async def main(url: str, redis_url: str, name: str, count: int) -> None:
    key, secret = os.environ["ORDERLY_TEST_API_KEY"], os.environ["ORDERLY_TEST_API_SECRET"]
    async with BitunixClient(key, secret, url, shared_limits=redis_url) as client:
        for i in range(count):
            await client.place_order(
                symbol="BTCUSDT",
                side="BUY",
                qty="0.001",
                order_type="LIMIT",
                price="1000",
                client_id=f"{name}-{i}",
            )
    print("done", flush=True)


if __name__ == "__main__":
    url, redis_url, name, count = sys.argv[1:5]
    asyncio.run(main(url, redis_url, name, int(count)))
