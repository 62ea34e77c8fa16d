"""What every exchange client shares: one aiohttp session and one lane per key.

A client subclasses :class:`LaneClient`, sets ``exchange`` and ``key_id``, implements
``_send(call, nonce)`` (sign, send, parse: the lane's wire), and calls :meth:`_start` and
:meth:`_stop` from its own open/close.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import aiohttp

from framework.dispatch import Lane, PrivateCall
from framework.errors import ConfigError
from framework.nonce.source import Nonce


class LaneClient:
    exchange: ClassVar[str] = ""
    key_id: str
    _session: aiohttp.ClientSession | None = None
    _lane: Lane | None = None
    #: Longest wait, when closing, for calls still queued or in flight (None: no limit).
    close_grace: float | None = None

    def _start(
        self,
        *,
        timeout: aiohttp.ClientTimeout,
        headers: Mapping[str, str] | None = None,
        **lane: Any,
    ) -> None:
        """Open the HTTP session and start the key's lane (``lane`` = Lane's options)."""
        self._session = aiohttp.ClientSession(timeout=timeout, headers=headers)
        self._lane = Lane(key_id=self.key_id, wire=self._send, exchange=self.exchange, **lane)
        self._lane.start()

    async def _stop(self) -> None:
        """Drain the lane (at most ``close_grace`` s; it persists the nonce floor), close
        HTTP."""
        if self._lane is not None:
            await self._lane.close(self.close_grace)
        if self._session is not None:
            await self._session.close()

    def _not_open(self) -> ConfigError:
        return ConfigError(
            f"{type(self).__name__} is not open: use `async with` on it", exchange=self.exchange
        )

    @property
    def lane(self) -> Lane:
        if self._lane is None:
            raise self._not_open()
        return self._lane

    @property
    def http(self) -> aiohttp.ClientSession:
        """The client's HTTP session (public calls use it directly, without the lane)."""
        if self._session is None:
            raise self._not_open()
        return self._session

    async def _send(self, call: PrivateCall, nonce: Nonce) -> Any:
        raise NotImplementedError
