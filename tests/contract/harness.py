"""One harness per exchange: its conformance server and its client, behind one interface,
so the contract suite (test_contract.py) runs the same checks on every exchange. To add an
exchange, write its client and server, then a harness here, and list it in HARNESSES."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from framework.config import Config
from framework.errors import OrderlyError
from framework.exchanges.bitunix import BitunixClient
from framework.exchanges.kraken.venue import kraken_venue
from framework.exchanges.synthetix import SynthetixClient
from framework.orders import LimitOrder, batches
from framework.registry import open_venue
from framework.sandbox import Sandbox, generate_credentials
from tests.conformance.bitunix_server import BitunixServer
from tests.conformance.synthetix_server import SynthetixServer

Jitter = tuple[float, float]


class Session(Protocol):
    client: Any

    async def read(self) -> Any:
        """One signed private call that changes nothing."""
        ...

    async def place(self, client_ids: Sequence[str]) -> list[Any]:
        """Place one order per client id, splitting into the exchange's batches; one result
        (or OrderlyError) per order, in order."""
        ...

    def nonces(self) -> list[int | str]:
        """Nonces the server accepted, in the order it accepted them."""
        ...

    def nonce_refusals(self) -> int: ...

    def calls(self) -> int:
        """Private requests the server received."""
        ...


@dataclass
class Harness:
    name: str
    ordered: bool  # strictly increasing nonces (else: random, single use)
    max_batch: int | None  # None: the whole list is one signed action
    secrets: tuple[str, ...]

    def session(
        self, tmp: Path, *, jitter: Jitter = (0, 0), wrong_secret: bool = False
    ) -> contextlib.AbstractAsyncContextManager[Session]:
        raise NotImplementedError


# --- Kraken, against the sandbox ------------------------------------------------------------

KRAKEN_KEY, KRAKEN_SECRET = generate_credentials()


class KrakenSession:
    def __init__(self, sandbox: Sandbox, venue: Any) -> None:
        self.sandbox, self.venue, self.client = sandbox, venue, venue.client

    async def read(self) -> Any:
        return await self.client.balance()

    async def place(self, client_ids: Sequence[str]) -> list[Any]:
        orders = [
            LimitOrder(pair="XBTUSD", side="buy", volume=Decimal("0.001"), price=Decimal(1000 + i))
            for i in range(len(client_ids))
        ]
        results: list[Any] = [None] * len(orders)
        for chunk in batches(orders, self.venue.max_batch):  # the framework's own split
            pairs = [(orders[i], client_ids[i]) for i in chunk]
            try:
                answers = (
                    await self.venue.place_batch(pairs)
                    if len(chunk) > 1
                    else [await self.venue.place(*pairs[0])]
                )
            except OrderlyError as exc:
                answers = [exc]
            for i, answer in zip(chunk, answers, strict=True):
                results[i] = answer
        return results

    def nonces(self) -> list[int | str]:
        return list(self.sandbox.accepted_nonces(KRAKEN_KEY))

    def nonce_refusals(self) -> int:
        return int(self._stats().get("invalid_nonce", 0))

    def _stats(self) -> dict[str, int]:
        stats: dict[str, int] = self.sandbox.stats().get(self.client.key_id, {})
        return stats

    def calls(self) -> int:
        stats = self._stats()
        return sum(stats.get(k, 0) for k in ("accepted", "invalid_nonce", "invalid_signature"))


class KrakenHarness(Harness):
    @contextlib.asynccontextmanager
    async def session(
        self, tmp: Path, *, jitter: Jitter = (0, 0), wrong_secret: bool = False
    ) -> AsyncIterator[Session]:
        config = Config.model_validate(
            {
                "exchange": {"tier": "none"},
                "state": {
                    "store": str(tmp / "kraken.sqlite"),
                    "history": str(tmp / "kraken.jsonl"),
                },
            }
        )
        secret = "A" * 88 if wrong_secret else KRAKEN_SECRET
        async with (
            Sandbox({KRAKEN_KEY: KRAKEN_SECRET}, delay_ms=jitter, seed=1) as sandbox,
            kraken_venue(config, KRAKEN_KEY, secret, sandbox.base_url) as venue,
        ):
            yield KrakenSession(sandbox, venue)


# --- fakex: a test exchange package registered from tests/, opened through the registry --------


def fakex_secrets(tmp: Path, secret: str) -> Path:
    """fakex reads its key from a secrets file, under its own secret names."""
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "fakex.env"
    path.write_text(f"ORDERLY_FAKEX_KEY={KRAKEN_KEY}\nORDERLY_FAKEX_SECRET={secret}\n")
    return path


class FakexHarness(Harness):
    """The same sandbox, reached only through ``[exchange] module``: the registry imports
    tests.fakex.spec, which registers the exchange, its keys and its secret names."""

    @contextlib.asynccontextmanager
    async def session(
        self, tmp: Path, *, jitter: Jitter = (0, 0), wrong_secret: bool = False
    ) -> AsyncIterator[Session]:
        secret = "A" * 88 if wrong_secret else KRAKEN_SECRET
        secrets_file = fakex_secrets(tmp, secret)
        async with Sandbox({KRAKEN_KEY: KRAKEN_SECRET}, delay_ms=jitter, seed=1) as sandbox:
            config = Config.model_validate(
                {
                    "exchange": {
                        "name": "fakex",
                        "module": "tests.fakex.spec",
                        "base_url": sandbox.base_url,
                        "secrets_file": str(secrets_file),
                        "desk": "contract",
                    },
                    "state": {"store": str(tmp / "fx.sqlite"), "history": str(tmp / "fx.jsonl")},
                }
            )
            async with open_venue(config) as venue:
                yield KrakenSession(sandbox, venue)


# --- Bitunix, against its conformance server ------------------------------------------------

BITUNIX_KEY, BITUNIX_SECRET = "contract-bitunix-key", "contract-bitunix-secret"


class BitunixSession:
    def __init__(self, server: BitunixServer, client: BitunixClient) -> None:
        self.server, self.client = server, client

    async def read(self) -> Any:
        return await self.client.account()

    async def place(self, client_ids: Sequence[str]) -> list[Any]:
        orders = [
            {
                "side": "BUY",
                "qty": "0.01",
                "orderType": "LIMIT",
                "price": str(40000 + i),
                "clientId": cid,
            }
            for i, cid in enumerate(client_ids)
        ]
        if len(orders) == 1:
            try:
                return [
                    await self.client.place_order(
                        symbol="BTCUSDT",
                        side="BUY",
                        qty="0.01",
                        order_type="LIMIT",
                        price="40000",
                        client_id=client_ids[0],
                    )
                ]
            except OrderlyError as exc:
                return [exc]
        return list(await self.client.batch_order("BTCUSDT", orders))

    def nonces(self) -> list[int | str]:
        return [n for seen in self.server.seen_nonces.values() for n in seen]

    def nonce_refusals(self) -> int:
        return self.server.refused.get(10002, 0)

    def calls(self) -> int:
        return self.server.requests


class BitunixHarness(Harness):
    @contextlib.asynccontextmanager
    async def session(
        self, tmp: Path, *, jitter: Jitter = (0, 0), wrong_secret: bool = False
    ) -> AsyncIterator[Session]:
        secret = "not-the-secret" if wrong_secret else BITUNIX_SECRET
        async with (
            BitunixServer({BITUNIX_KEY: BITUNIX_SECRET}, delay_ms=jitter, seed=1) as server,
            BitunixClient(BITUNIX_KEY, secret, server.base_url) as client,
        ):
            yield BitunixSession(server, client)


# --- Synthetix, against its conformance server ----------------------------------------------

SNX_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
SNX_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
SNX_SUB = 1867542890123456789


class SynthetixSession:
    def __init__(self, server: SynthetixServer, client: SynthetixClient) -> None:
        self.server, self.client = server, client

    async def read(self) -> Any:
        return await self.client.cancel_orders([1])  # signed, nonce-bearing, changes nothing

    async def place(self, client_ids: Sequence[str]) -> list[Any]:
        orders = [
            {
                "symbol": "BTC-USDT",
                "side": "buy",
                "orderType": "limitGtc",
                "price": f"{40000 + i}.00",
                "quantity": "0.01",
                "clientOrderId": cid,
            }
            for i, cid in enumerate(client_ids)
        ]
        try:
            return list(await self.client.place_orders(orders))
        except OrderlyError as exc:
            return [exc] * len(orders)

    def nonces(self) -> list[int | str]:
        return list(self.server.accepted)

    def nonce_refusals(self) -> int:
        return self.server.refused.get("Nonce already used", 0)

    def calls(self) -> int:
        return len(self.server.accepted) + sum(self.server.refused.values())


class SynthetixHarness(Harness):
    @contextlib.asynccontextmanager
    async def session(
        self, tmp: Path, *, jitter: Jitter = (0, 0), wrong_secret: bool = False
    ) -> AsyncIterator[Session]:
        key = "0x" + "11" * 32 if wrong_secret else SNX_KEY
        async with (
            SynthetixServer({SNX_SUB: SNX_ADDRESS}, delay_ms=jitter, seed=1) as server,
            SynthetixClient(key, SNX_SUB, server.base_url) as client,
        ):
            yield SynthetixSession(server, client)


HARNESSES: list[Harness] = [
    KrakenHarness("kraken", ordered=True, max_batch=15, secrets=(KRAKEN_KEY, KRAKEN_SECRET)),
    FakexHarness("fakex", ordered=True, max_batch=15, secrets=(KRAKEN_KEY, KRAKEN_SECRET)),
    BitunixHarness("bitunix", ordered=False, max_batch=20, secrets=(BITUNIX_KEY, BITUNIX_SECRET)),
    SynthetixHarness("synthetix", ordered=True, max_batch=None, secrets=(SNX_KEY,)),
]
