"""Run a conformance server in its own process (for bench/dispatch.py).

    python -m tests.conformance.serve bitunix|synthetix

Credentials: bitunix takes ORDERLY_BENCH_KEY / ORDERLY_BENCH_SECRET; synthetix takes
ORDERLY_BENCH_SUBACCOUNTS (comma list) / ORDERLY_BENCH_ADDRESS. Prints the base URL and
serves until SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from contextlib import AbstractAsyncContextManager
from typing import Any


async def main(kind: str) -> None:
    server: AbstractAsyncContextManager[Any]
    if kind == "bitunix":
        from tests.conformance.bitunix_server import BitunixServer

        server = BitunixServer(
            {os.environ["ORDERLY_BENCH_KEY"]: os.environ["ORDERLY_BENCH_SECRET"]}
        )
    else:
        from tests.conformance.synthetix_server import SynthetixServer

        address = os.environ["ORDERLY_BENCH_ADDRESS"]
        subs = os.environ["ORDERLY_BENCH_SUBACCOUNTS"].split(",")
        server = SynthetixServer({int(sub): address for sub in subs})
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    async with server as running:
        print(running.base_url, flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
