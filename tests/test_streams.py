"""The runner on Kraken WebSocket v2 streams (framework/streaming.py,
framework/exchanges/kraken/stream.py) against the sandbox's /v2: fills arrive once each
through dropped connections, books stay checksum-verified, REST fills the gaps."""

from __future__ import annotations

import asyncio
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from framework import log
from framework.config import load
from framework.events import BookTop, Fill, Stopping
from framework.runner import EXIT_OK, Runner
from framework.sandbox import Sandbox
from framework.sandbox.market import MarketRules
from tests.helpers import strategies
from tests.test_runner import write_config


def kraken_at(config: Path, sandbox: Sandbox, runner: str = "") -> None:
    text = config.read_text().replace(
        'name = "sandbox"',
        f'name = "kraken"\nbase_url = "{sandbox.base_url}"\ntier = "none"\n'
        f'ws_url = "{sandbox.ws_url}"\nws_auth_url = "{sandbox.ws_url}"',
    )
    config.write_text(text.replace("[runner]\n", f"[runner]\n{runner}\n"))


async def test_every_fill_arrives_once_through_twenty_dropped_connections(
    tmp_path: Path, creds: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDERLY_KRAKEN_API_KEY", creds[0])
    monkeypatch.setenv("ORDERLY_KRAKEN_API_SECRET", creds[1])
    logs = io.StringIO()
    log.configure("info", stream=logs, json=True)
    seen = strategies.SEEN
    seen.clear()
    rules = MarketRules(seed=11, step_s=0.05, volatility=0.0004)
    async with Sandbox(dict([creds]), market=rules, ws_drop_every_s=(0.05, 0.2), seed=4) as sandbox:
        config = write_config(tmp_path, "tests.helpers.strategies:StreamGrid")
        # polling slowed right down: what arrives comes by the streams or their gap repairs
        kraken_at(config, sandbox, "stream_poll_s = 60")
        config.write_text(config.read_text().replace("order_poll_s = 0.05", "order_poll_s = 0.2"))
        runner = Runner(load(config), out=io.StringIO())
        task = asyncio.create_task(runner.main(install_signals=False))
        async with asyncio.timeout(40):
            while not task.done() and (  # ticks wake it often
                sandbox.ws.drops < 20
                or len(sandbox.engine.trades_of(creds[0])) < 10
                or logs.getvalue().count('"stream_gap"') < 2  # a loaded machine drops fewer
            ):
                seen.changed.clear()
                await seen.changed.wait()
        runner.request_stop("test finished")
        assert await task == EXIT_OK
        trades = sandbox.engine.trades_of(creds[0])
        tokens = list(sandbox.engine.ws_tokens)
    written = logs.getvalue() + (tmp_path / "history.jsonl").read_text()
    assert tokens and not any(token in written for token in tokens)  # secret
    # seconds of connections dropped every 0.05-0.2 s: one token per 5 s, never one a drop
    assert len(tokens) <= 3
    fills = [e for e in seen if isinstance(e, Fill)]
    delivered = Counter(f.trade_id for f in fills)
    assert isinstance(seen[-1], Stopping)
    assert len(trades) >= 10 and max(delivered.values()) == 1  # none twice
    assert sorted(delivered) == sorted(tid for tid, _ in trades)  # none lost
    events = [json.loads(line) for line in logs.getvalue().splitlines()]
    names = Counter(e["event"] for e in events)
    assert names["stream_gap"] >= 2  # each resubscription of executions reconciled by REST
    assert names["book_out_of_sync"] == 0  # every book message verified, none failed
    books = [e for e in seen if isinstance(e, BookTop)]
    assert books and all(b.bids[0][0] < b.asks[0][0] for b in books)


async def test_order_entry_over_the_websocket(
    tmp_path: Path, creds: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``order_entry = "ws"``: orders and cancels go by add_order / batch_add /
    cancel_order on the sandbox's /v2 (no AddOrder by REST); with the connections cut ten
    times (orders whose answer is lost are reconciled by client id), fills arrive once and
    no order is left behind."""
    monkeypatch.setenv("ORDERLY_KRAKEN_API_KEY", creds[0])
    monkeypatch.setenv("ORDERLY_KRAKEN_API_SECRET", creds[1])
    seen = strategies.SEEN
    seen.clear()
    rules = MarketRules(seed=11, step_s=0.05, volatility=0.0004)
    async with Sandbox(dict([creds]), market=rules, ws_drop_every_s=(0.1, 0.4), seed=4) as sandbox:
        rest_orders: list[str] = []
        handler = sandbox._private["AddOrderBatch"]

        def counted(key: str, body: dict[str, Any]) -> dict[str, Any]:
            rest_orders.append("AddOrderBatch")
            return handler(key, body)

        sandbox._private["AddOrderBatch"] = counted
        sandbox._private["AddOrder"] = counted
        config = write_config(tmp_path, "tests.helpers.strategies:StreamGrid")
        kraken_at(config, sandbox)
        config.write_text(
            config.read_text().replace('tier = "none"', 'tier = "none"\norder_entry = "ws"', 1)
        )
        runner = Runner(load(config), out=io.StringIO())
        task = asyncio.create_task(runner.main(install_signals=False))
        async with asyncio.timeout(30):
            while (
                sandbox.ws.drops < 10 or len(sandbox.engine.trades_of(creds[0])) < 6
            ) and not task.done():
                seen.changed.clear()
                await seen.changed.wait()
        runner.request_stop("test finished")
        assert await task == EXIT_OK
        trades = sandbox.engine.trades_of(creds[0])
        left_open = [o for o in sandbox.engine.open.values() if o.key == creds[0]]
    assert rest_orders == []  # every order went by WebSocket
    fills = Counter(e.trade_id for e in seen if isinstance(e, Fill))
    assert sorted(fills) == sorted(tid for tid, _ in trades) and max(fills.values()) == 1
    assert left_open == []  # cancel_on_stop: cancelled (cancel_all stays on REST)
