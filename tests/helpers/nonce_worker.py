"""A client process for the crash test: Balance calls in a loop through a nonce store.

    python -m tests.helpers.nonce_worker BASE_URL STORE HISTORY UNIT BLOCK [CALLS]

STORE is a SQLite path, or ``memory`` (the negative control: no floor survives).
Credentials come from ORDERLY_TEST_API_KEY / ORDERLY_TEST_API_SECRET. Prints one line per
accepted call; runs CALLS calls (forever if absent) and then closes cleanly.
"""

from __future__ import annotations

import asyncio
import os
import sys

from framework.errors import OrderlyError
from framework.exchanges.kraken import KrakenClient
from framework.nonce import MemoryStore, NonceHistory, NonceStore, SqliteStore


async def main(
    base_url: str, store_path: str, history_path: str, unit: str, block: int, calls: int | None
) -> None:
    store: NonceStore = MemoryStore() if store_path == "memory" else SqliteStore(store_path)
    client = KrakenClient(
        os.environ["ORDERLY_TEST_API_KEY"],
        os.environ["ORDERLY_TEST_API_SECRET"],
        base_url,
        store=store,
        history=NonceHistory(history_path),
        nonce_unit=unit,
        nonce_block=block,
        breaker_threshold=1_000,
        tier=None,
    )
    async with client:
        done = 0
        while calls is None or done < calls:
            try:
                await client.balance()
            except OrderlyError as exc:
                print(f"error {exc.code}", flush=True)
                continue
            done += 1
            print(done, flush=True)


if __name__ == "__main__":
    url, store_path, history_path, unit, block = sys.argv[1:6]
    count = int(sys.argv[6]) if len(sys.argv) > 6 else None
    asyncio.run(main(url, store_path, history_path, unit, int(block), count))
