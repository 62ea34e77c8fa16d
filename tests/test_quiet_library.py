"""Orderly as a library is quiet below warning until configured and redacts secrets even when
never configured; ``orderly run`` routes aiohttp and asyncio logs into its JSON log."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import subprocess
import sys
from decimal import Decimal

import pytest

from framework import log
from framework.call import LaneStats
from framework.errors import LanePaused, NonceError, TransientError
from framework.exchanges.kraken.limits import TIERS, Pacer

SCRIPT = """
import framework
from framework.log import get_logger
from framework.secret import Secret
secret = Secret("s3cr3t-value-that-must-not-show")
logger = get_logger("user.code")
logger.info("chatty_info")
logger.warning("careless", detail="key is s3cr3t-value-that-must-not-show")
"""


def test_a_library_import_is_quiet_below_warning_and_redacts() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=30, check=True
    )
    assert done.stdout == ""
    assert "chatty_info" not in done.stderr
    assert "careless" in done.stderr
    assert "s3cr3t-value" not in done.stderr and "***" in done.stderr


def test_stdlib_logs_land_in_the_same_json_log() -> None:
    stream = io.StringIO()
    log.configure("info", stream=stream, json=True, capture_stdlib=True)
    try:
        logging.getLogger("aiohttp.client").warning("connection %s reset", "pool-1")
        logging.getLogger("asyncio").debug("below the level")
    finally:
        log.configure("warning", json=True)
    (record,) = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert record["event"] == "connection pool-1 reset"
    assert record["component"] == "aiohttp.client" and record["level"] == "warning"


def test_a_paused_lane_is_a_wait_and_rate_limits_are_not_nonce_refusals() -> None:
    paused = LanePaused("paused", resume_in=3.0)
    assert isinstance(paused, TransientError) and not isinstance(paused, NonceError)
    assert "rate_limited" in LaneStats.__dataclass_fields__


async def test_the_first_rate_limit_wait_is_said_once() -> None:
    stream = io.StringIO()
    log.configure("info", stream=stream, json=True)
    tier = dataclasses.replace(TIERS["starter"], rest_decay=200.0)  # a fast-decaying counter
    pacer = Pacer(tier, name="starter")
    try:
        for _ in range(int(tier.rest_max) + 1):  # one past the counter: the pacer waits
            await pacer.pace("Balance", {})
        await pacer.pace("Balance", {})  # waits again, says nothing
    finally:
        log.configure("warning", json=True)
    said = [json.loads(line) for line in stream.getvalue().splitlines()]
    waits = [r for r in said if r["event"] == "rate_limit_wait"]
    assert len(waits) == 1 and waits[0]["tier"] == "starter"
    assert waits[0]["waited_s"] > 0 and Decimal(str(waits[0]["waited_s"])) < 10


def test_a_context_call_without_await_is_said_and_logged(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The classic slip: ``self.ctx.place(order)`` without ``await`` does nothing. Python's
    own warning went to stderr only, not to the JSON log, and did not say that nothing was
    sent. Under ``orderly run`` (stdlib captured) it is now both, in Orderly's words."""
    import gc
    import io
    import json
    import warnings
    from decimal import Decimal
    from typing import cast

    from framework.execution import Execution
    from framework.orders import MarketOrder
    from framework.strategy import Context

    stream = io.StringIO()
    log.configure("info", stream=stream, json=True, capture_stdlib=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            ctx = Context(cast(Execution, None), name="t")
            ctx.place(MarketOrder("XBTUSD", "buy", Decimal(1)))  # type: ignore[unused-coroutine]
            gc.collect()
    finally:
        log.configure("warning")
    err = capsys.readouterr().err
    assert "ctx.place(...) was called without await: it did nothing (nothing was sent)" in err
    (record,) = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert record["event"] == "python_warning" and "Context.place" in record["message"]
