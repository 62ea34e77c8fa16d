"""What every conformance server shares: an aiohttp app on a free 127.0.0.1 port."""

from __future__ import annotations

from typing import Self

from aiohttp import web


class LoopbackServer:
    """An async context manager serving ``routes(app)`` on 127.0.0.1 (a free port);
    ``base_url`` is set once it listens."""

    base_url = ""
    _runner: web.AppRunner | None = None

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
