"""Synthetix and Bitunix as their official SDKs and current docs define them (protocols.md,
"2.x" and "3.x Corrections"): one test per rule the clients once broke, each against the
conformance server that enforces it over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from framework.clock import ManualClock
from framework.config import Config
from framework.errors import AuthError, ConfigError, OrderlyError, OrderRejected
from framework.exchanges.bitunix import BitunixClient
from framework.exchanges.bitunix.spec import BitunixSettings
from framework.exchanges.bitunix.venue import BitunixVenue
from framework.exchanges.synthetix import SynthetixClient, sign_action
from framework.exchanges.synthetix.spec import SynthetixSettings
from framework.exchanges.synthetix.venue import SynthetixVenue
from framework.orders import LimitOrder
from framework.registry import open_venue
from tests.conformance.bitunix_server import BitunixServer
from tests.conformance.synthetix_server import SynthetixServer
from tests.contract.harness import SNX_ADDRESS, SNX_KEY, SNX_SUB
from tests.test_runner import ROOT

BITUNIX_KEY, BITUNIX_SECRET = "rules-bitunix-api-key-7f3a9c", "rules-bitunix-api-secret-2b8e6d"

# --- the official SDK's own signatures (synthetix-sdk 0.7.0, pip), recorded -------------------
# synthetix-sdk 0.4.0 (the version issue 12 names) gives the same five: its Signer's
# sign_place_orders, sign_cancel_orders, sign_cancel_orders_by_cloid, sign_schedule_cancel
# and sign_action, with these nonces and expiresAfter = nonce + 60000 (checked 2026-11-24).

CLOID = "0x5f1a0c3e9b7d4a2c8e6f0b1d3a5c7e9f"
SDK_VECTORS: list[tuple[str, dict[str, Any], tuple[int, str, str]]] = [
    (
        "PlaceOrders",
        {
            "subAccountId": SNX_SUB,
            "orders": [
                {
                    "symbol": "BTC-USDT",
                    "side": "buy",
                    "orderType": "limitGtc",
                    "price": "50000.00",
                    "triggerPrice": "",
                    "quantity": "0.1",
                    "reduceOnly": False,
                    "isTriggerMarket": False,
                    "clientOrderId": CLOID,
                    "closePosition": False,
                }
            ],
            "grouping": "na",
            "nonce": 1767225600000,
            "expiresAfter": 1767225660000,
        },
        (
            27,
            "0xae81edc96f04fbadc2483be64197a355740c694a04fd7bc302a975ef0d1a65a5",
            "0x244ced1886324ff9c65e54626e3c3d2524319f302175472fc33f80376d7fe305",
        ),
    ),
    (
        "CancelOrders",
        {
            "subAccountId": SNX_SUB,
            "orderIds": [1948058938469519360, 1948058938469519361],
            "nonce": 1767225600001,
            "expiresAfter": 1767225660001,
        },
        (
            27,
            "0xff67c42aa12206c9d7d1caee81fb319fb8360a4c76b437e56036dcf2567864ee",
            "0x5bbfe04e2bbc4998361e04414e51f50d4d22698c40e9be9c0da6843e474bc4f6",
        ),
    ),
    (
        "CancelOrdersByCloid",
        {
            "subAccountId": SNX_SUB,
            "clientOrderIds": [CLOID],
            "nonce": 1767225600002,
            "expiresAfter": 1767225660002,
        },
        (
            28,
            "0xe1c4722fe820e6ba53b6c081aed8695191047ca5dca648b32dc0b67ab54ef923",
            "0x0c327a270b0560fa1f8ca0851d3b9314aac00cf3090f4b123cd256bc26b4095a",
        ),
    ),
    (
        "ScheduleCancel",
        {
            "subAccountId": SNX_SUB,
            "timeoutSeconds": 60,
            "nonce": 1767225600003,
            "expiresAfter": 1767225660003,
        },
        (
            27,
            "0x0e38182dd44531ebfb2847b2f43df6bce20f11fb6ad155093ae7ca5547338121",
            "0x01f45d81ec0b174ae9317a9e952ed091f82c74b4ac669af78dfb2521ae97a72a",
        ),
    ),
    (
        "SubAccountAction",  # a read signed with a nonce, as the SDK signs every read
        {
            "subAccountId": SNX_SUB,
            "action": "getOpenOrders",
            "nonce": 1767225600004,
            "expiresAfter": 1767225660004,
        },
        (
            27,
            "0x54329f5a0f955d9d3dd8d85bda1385bd79b104fa0716b7bbbb27b1035d383ed2",
            "0x33008f1e16d0bcd89a8cb1fc36797a5ae5d71a2bef877367d82939f80cfdcfee",
        ),
    ),
]


@pytest.mark.parametrize(
    ("primary", "message", "vrs"), SDK_VECTORS, ids=[v[0] for v in SDK_VECTORS]
)
def test_signatures_match_the_official_sdk(
    primary: str, message: dict[str, Any], vrs: tuple[int, str, str]
) -> None:
    assert sign_action(primary, message, SNX_KEY) == dict(zip("vrs", vrs, strict=True))


# --- Synthetix ------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def synthetix(
    server: SynthetixServer | None = None, **options: Any
) -> AsyncIterator[tuple[SynthetixServer, SynthetixVenue]]:
    async with (
        server or SynthetixServer({SNX_SUB: SNX_ADDRESS}, seed=3) as running,
        SynthetixClient(SNX_KEY, SNX_SUB, running.base_url, expires_after_s=30, **options) as c,
    ):
        yield running, SynthetixVenue(c, 30)


def resting(pair: str, count: int, price: str = "1000") -> list[LimitOrder]:
    return [
        LimitOrder(pair=pair, side="buy", volume=Decimal("0.001"), price=Decimal(price) - i)
        for i in range(count)
    ]


async def test_1_synthetix_prices_use_the_params_wrapper_and_an_allowed_book_limit() -> None:
    async with synthetix() as (server, venue):
        ticker = await venue.ticker("BTC-USDT")
    assert 0 < ticker.bid < ticker.ask
    assert server.refused == {}


async def test_2_synthetix_expires_after_is_in_milliseconds_by_default() -> None:
    assert SynthetixSettings(sub_account_id=1).expires_unit == "ms"
    async with synthetix() as (server, venue):  # the client's default unit, the REST API's
        await venue.place(resting("BTC-USDT", 1)[0], "ms-1")
        assert await venue.open_orders() != []
    assert server.refused == {}
    assert {agent.split("/")[0] for agent in server.user_agents} == {"orderly"}


async def test_5_an_idempotent_resend_is_known_by_its_error_code() -> None:
    async with synthetix() as (_, venue):
        order = resting("BTC-USDT", 1)[0]
        await venue.place(order, "twice")
        with pytest.raises(OrderRejected) as again:
            await venue.place(order, "twice")
        assert again.value.code == "IDEMPOTENCY_CONFLICT"
        assert venue.is_duplicate(again.value)
        huge = LimitOrder(pair="BTC-USDT", side="buy", volume=Decimal(10**6), price=order.price)
        (refused,) = await venue.place_batch([(huge, "x")])
        assert isinstance(refused, OrderRejected) and refused.code == "INSUFFICIENT_MARGIN"
        assert not venue.is_duplicate(refused)


async def test_6_synthetix_pages_120_open_orders_and_cancels_them_all() -> None:
    async with synthetix() as (server, venue):
        orders = resting("BTC-USDT", 120)
        for start in range(0, 120, venue.max_batch):
            chunk = orders[start : start + venue.max_batch]
            ids = await venue.place_batch([(o, f"o-{start + i}") for i, o in enumerate(chunk)])
            assert all(isinstance(i, str) for i in ids)
        assert len(await venue.open_orders()) == 120
        last = await venue.find("o-119")  # past the first page of 50
        assert last is not None and last.status == "open"
        assert await venue.cancel_all() == 120
        assert await venue.open_orders() == []
        gone = await venue.find("o-119")  # from the history now
        assert gone is not None and gone.status == "canceled"
    assert server.refused == {}


@pytest.mark.parametrize(
    ("server_mode", "read_nonce"),
    [("required", True), ("optional", True), ("optional", False), ("forbidden", False)],
)
async def test_7_reads_are_signed_with_a_nonce_or_without_as_configured(
    server_mode: Any, read_nonce: bool
) -> None:
    assert SynthetixSettings(sub_account_id=1).read_nonce is True  # the official SDK's way
    server = SynthetixServer({SNX_SUB: SNX_ADDRESS}, read_nonce=server_mode, seed=3)
    async with synthetix(server, read_nonce=read_nonce) as (_, venue):
        await venue.place(resting("BTC-USDT", 1)[0], "r-1")
        assert [o.cl_ord_id for o in await venue.open_orders()] == ["r-1"]
    assert server.refused == {}
    nonces = server.accepted
    assert nonces == sorted(set(nonces))  # reads and trades share one strictly rising series


async def test_7_a_read_shape_the_server_refuses_says_which_setting_to_change() -> None:
    server = SynthetixServer({SNX_SUB: SNX_ADDRESS}, read_nonce="forbidden", seed=3)
    async with synthetix(server) as (_, venue):
        with pytest.raises(AuthError, match="read_nonce = false"):
            await venue.open_orders()
    server = SynthetixServer({SNX_SUB: SNX_ADDRESS}, read_nonce="required", seed=3)
    async with synthetix(server, read_nonce=False) as (_, venue):
        with pytest.raises(OrderlyError, match="read_nonce = true"):
            await venue.open_orders()


async def test_8_synthetix_calls_are_paced_to_the_token_bucket() -> None:
    """A bucket of 100 tokens per second: 40 single orders (200 tokens) at once are paced,
    none refused (today's main sends them all and gets 429s)."""
    server = SynthetixServer({SNX_SUB: SNX_ADDRESS}, bucket=(100, 1.0), seed=3)
    async with synthetix(server, bucket=(100, 1.0)) as (_, venue):
        orders = resting("BTC-USDT", 40)
        await asyncio.gather(*(venue.place(o, f"p-{i}") for i, o in enumerate(orders)))
    assert server.refused == {}
    assert len(server.orders) == 40


async def test_8_synthetix_statuses_and_the_30_day_trade_window() -> None:
    from framework.exchanges.synthetix.venue import order_status

    assert order_status({"status": "partially filled"}, "") == "open"
    assert order_status({"status": "placed"}, "") == "open"
    async with synthetix() as (server, venue):
        await venue.place(resting("BTC-USDT", 1)[0], "placed")
        found = await venue.find("placed")
        assert found is not None and found.status == "open"  # "placed"
        assert [o.status for o in await venue.open_orders()] == ["open"]
        assert await venue.fills_since(0) is not None  # start clamped to 30 days back
    assert "startTime is more than 30 days ago" not in server.refused


async def test_9_synthetix_dead_man_switch_and_cancel_by_client_id() -> None:
    clock = ManualClock(wall_ns=int(1.9e18))
    server = SynthetixServer({SNX_SUB: SNX_ADDRESS}, seed=3, clock=clock, bucket=None)
    async with (
        server,
        SynthetixClient(SNX_KEY, SNX_SUB, server.base_url, expires_after_s=None) as client,
    ):
        venue = SynthetixVenue(client, None)
        await venue.place_batch([(o, f"d-{i}") for i, o in enumerate(resting("BTC-USDT", 3))])
        await venue.cancel("d-0", pair="BTC-USDT", txid=None)  # by client order id
        assert (await venue.find("d-0")).status == "canceled"  # type: ignore[union-attr]
        await venue.arm_dead_man(60)
        assert server.scheduled[SNX_SUB] == clock.wall_ns() / 1e9 + 60
        await venue.arm_dead_man(0)  # disarmed
        assert SNX_SUB not in server.scheduled
        await venue.arm_dead_man(5)
        clock.advance(6)
        server.sweep()
        assert await venue.open_orders() == []
    assert server.swept == {SNX_SUB: 2} and server.refused == {}


# --- Bitunix --------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def bitunix(
    server: BitunixServer | None = None, position_mode: Any = "one_way"
) -> AsyncIterator[tuple[BitunixServer, BitunixVenue]]:
    async with (
        server or BitunixServer({BITUNIX_KEY: BITUNIX_SECRET}, seed=3) as running,
        BitunixClient(BITUNIX_KEY, BITUNIX_SECRET, running.base_url) as client,
    ):
        venue = BitunixVenue(client, position_mode=position_mode)
        await venue.check_position_mode()
        yield running, venue


async def test_3_bitunix_pages_35_pending_orders_and_cancels_them_all() -> None:
    async with bitunix() as (server, venue):
        placed = await venue.place_batch(
            [(o, f"b-{i}") for i, o in enumerate(resting("BTCUSDT", 35))]
        )
        assert all(isinstance(p, str) for p in placed)
        assert len(await venue.open_orders()) == 35
        assert await venue.cancel_all() == 35
        assert await venue.open_orders() == []
    assert server.refused == {}


async def test_4_bitunix_limit_orders_carry_effect_and_one_way_mode_is_checked() -> None:
    async with bitunix() as (server, venue):
        await venue.place(resting("BTCUSDT", 1)[0], "gtc")
        (sent,) = server.orders.values()
        assert sent["effect"] == "GTC" and "tradeSide" not in sent
    assert server.refused == {}


async def test_4_a_hedge_mode_account_is_refused_unless_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDERLY_BITUNIX_API_KEY", BITUNIX_KEY)
    monkeypatch.setenv("ORDERLY_BITUNIX_API_SECRET", BITUNIX_SECRET)
    assert BitunixSettings().position_mode == "one_way"
    server = BitunixServer({BITUNIX_KEY: BITUNIX_SECRET}, seed=3, position_mode="HEDGE")
    async with server:

        def config(mode: str) -> Config:
            return Config.model_validate(
                {
                    "exchange": {
                        "name": "bitunix",
                        "base_url": server.base_url,
                        "position_mode": mode,
                    },
                    "state": {
                        "store": str(tmp_path / "n.sqlite"),
                        "history": str(tmp_path / "h.jsonl"),
                    },
                }
            )

        with pytest.raises(ConfigError, match="hedge position mode") as refused:
            async with open_venue(config("one_way")):
                pass
        assert "position_mode" in str(refused.value)
        async with open_venue(config("hedge")) as venue:
            await venue.place(resting("BTCUSDT", 1)[0], "hedged")
        (sent,) = server.orders.values()
        assert sent["tradeSide"] == "OPEN"
    assert server.refused == {}


async def test_8_bitunix_cancels_are_paced_and_expired_is_final() -> None:
    async with bitunix() as (server, venue):
        ids = await venue.place_batch([(o, f"c-{i}") for i, o in enumerate(resting("BTCUSDT", 9))])
        await asyncio.gather(*(venue.cancel(f"c-{i}", pair="BTCUSDT", txid=None) for i in range(8)))
        server.expire(str(ids[8]))
        expired = await venue.find("c-8")
        assert expired is not None and expired.status == "canceled"
    assert server.refused == {}


async def until(done: Callable[[], bool], limit_s: float) -> None:
    """Wait (bounded) for a subprocess to bring the in-process server to a state."""
    async with asyncio.timeout(limit_s):
        while not done():  # noqa: ASYNC110 - the state is set by another process's calls
            await asyncio.sleep(0.05)


async def test_9_a_killed_bot_leaves_its_orders_to_schedule_cancel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``orderly run`` on Synthetix arms scheduleCancel (2 s) and refreshes it; SIGKILL stops
    the refresh, and the server cancels the bot's resting orders once the timeout passes."""
    out = tmp_path / "keeper"
    config = tmp_path / "snx.toml"
    server = SynthetixServer({SNX_SUB: SNX_ADDRESS}, seed=3)

    def resting_orders() -> int:
        return len(server._mine(SNX_SUB, open_only=True))

    async with server:
        config.write_text(f"""
[exchange]
name = "synthetix"
base_url = "{server.base_url}"
sub_account_id = {SNX_SUB}
[strategy]
class = "tests.helpers.strategies:Keeper"
pairs = ["BTC-USDT"]
[strategy.params]
out = "{out}"
[runner]
tick_interval_s = 0.2
order_poll_s = 0.2
log_file = "{tmp_path / "log.jsonl"}"
dead_man_timeout_s = 2
dead_man_refresh_s = 0.5
[state]
store = "{tmp_path / "nonces.sqlite"}"
history = "{tmp_path / "history.jsonl"}"
journal = "{tmp_path / "orders.sqlite"}"
""")
        bot = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "framework.cli",
            "run",
            str(config),
            cwd=ROOT,
            env={**os.environ, "ORDERLY_SYNTHETIX_PRIVATE_KEY": SNX_KEY},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            await until(lambda: resting_orders() >= 4 and SNX_SUB in server.scheduled, 30)
        finally:
            bot.send_signal(signal.SIGKILL)
            await bot.wait()
        left = resting_orders()
        assert left >= 4 and server.swept == {}
        await until(lambda: resting_orders() == 0, 10)  # 2 s after the last refresh
    assert server.swept == {SNX_SUB: left}
