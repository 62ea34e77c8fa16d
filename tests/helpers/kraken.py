"""Helpers for tests that talk to the sandbox over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

import aiohttp

from framework.exchanges.kraken import KrakenClient, sign
from framework.nonce import MemoryStore, NonceHistory
from framework.nonce.source import IncreasingNonces


def client(key: str, secret: str, base_url: str, **options: Any) -> KrakenClient:
    """A KrakenClient with an in-memory store and history unless told otherwise."""
    options.setdefault("store", MemoryStore())
    options.setdefault("history", NonceHistory(None))
    options.setdefault("tier", None)  # these sandboxes enforce no rate limits
    return KrakenClient(key, secret, base_url, **options)


async def producers(kraken: KrakenClient, count: int, calls_each: int) -> list[Any]:
    """``count`` coroutines each making ``calls_each`` Balance calls at once."""

    async def one() -> list[Any]:
        return [await kraken.private("Balance") for _ in range(calls_each)]

    return await asyncio.gather(*(one() for _ in range(count)))


async def plain_client_burst(
    key: str, secret: str, base_url: str, coroutines: int, calls_each: int
) -> list[list[str]]:
    """The naive way: every coroutine takes a nonce, signs and posts on its own, with no lane.
    Nonces are unique and increasing when taken; the network decides the arrival order."""
    source = IncreasingNonces(MemoryStore(), "plain", unit="ms")
    async with aiohttp.ClientSession() as session:

        async def one() -> list[str]:
            errors: list[str] = []
            for _ in range(calls_each):
                nonce = await source.next()
                body = urlencode({"nonce": nonce}).encode()
                headers = {
                    "API-Key": key,
                    "API-Sign": sign("/0/private/Balance", nonce, body, secret),
                    "Content-Type": "application/x-www-form-urlencoded",
                }
                async with session.post(
                    f"{base_url}/0/private/Balance", data=body, headers=headers
                ) as response:
                    errors += (await response.json())["error"]
            return errors

        return await asyncio.gather(*(one() for _ in range(coroutines)))
