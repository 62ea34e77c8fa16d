"""``[runner] metrics_port``: Prometheus /metrics with the summary's numbers, read by
prometheus-client's own parser; no secret in it; a port in use never stops the bot."""

from __future__ import annotations

import asyncio
import io
import re
import socket
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from framework.runner import EXIT_OK, Runner
from framework.sandbox import Sandbox
from framework.secret import key_id
from tests.helpers import strategies
from tests.test_runner import write_config
from tests.test_storage_failures import trading


def said(runner: Runner) -> str:
    out = runner.out
    assert isinstance(out, io.StringIO)
    return out.getvalue()


async def test_metrics_show_the_summarys_numbers_and_no_secret(
    tmp_path: Path, creds: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, "tests.helpers.strategies:Recorder", runner="metrics_port = 0")
    async with Sandbox(dict([creds])) as sandbox:
        runner, task = await trading(config, sandbox, creds, monkeypatch)
        async with asyncio.timeout(20):  # the market order's fill has reached the strategy
            while not any(type(e).__name__ == "Fill" for e in strategies.SEEN):
                strategies.SEEN.changed.clear()
                await strategies.SEEN.changed.wait()
        found = re.search(r"metrics on (http://127\.0\.0\.1:\d+/metrics)", said(runner))
        assert found, said(runner)
        async with aiohttp.ClientSession() as session, session.get(found[1]) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            text = await response.text()
        runner.request_stop("test finished")
        assert await task == EXIT_OK
    assert creds[0] not in text and creds[1] not in text
    samples = {
        (s.name, s.labels.get("outcome")): s
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    fills = samples["orderly_fills_total", None]
    assert fills.value >= 1 and fills.labels["key_id"] == key_id(creds[0])
    assert fills.labels["exchange"] == "kraken" and fills.labels["strategy"] == "Recorder"
    sent = samples["orderly_nonces_sent_total", None].value
    accepted = samples["orderly_calls_total", "accepted"].value
    assert sent >= accepted >= 3  # Balance, GetApiKeyInfo, the orders...
    assert samples["orderly_orders_rejected_total", None].value == 1  # the over-sized order
    assert samples["orderly_open_orders", None].value >= 0
    assert samples["orderly_strategy_running", None].value == 1


async def test_a_metrics_port_in_use_is_told_and_the_bot_trades_on(
    tmp_path: Path, creds: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(
            tmp_path, "tests.helpers.strategies:Recorder", runner=f"metrics_port = {port}"
        )
        async with Sandbox(dict([creds])) as sandbox:
            runner, task = await trading(config, sandbox, creds, monkeypatch)  # an order rests
            runner.request_stop("test finished")
            assert await task == EXIT_OK
    assert f"metrics: cannot listen on 127.0.0.1:{port}" in said(runner)
