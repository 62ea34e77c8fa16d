"""Secrets never appear in log output, history files, reprs or exception messages."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import pytest
import structlog

from framework import log
from framework.errors import AuthError, OrderlyError
from framework.nonce import NonceHistory, SqliteStore
from framework.sandbox import Sandbox
from framework.secret import Secret
from tests.helpers.kraken import client


async def test_a_whole_session_leaks_nothing(tmp_path: Path, creds: tuple[str, str]) -> None:
    key, secret = creds
    stream = io.StringIO()
    log.configure("debug", stream=stream, json=True)
    texts: list[str] = []
    history = NonceHistory(tmp_path / "history.jsonl")
    store = SqliteStore(tmp_path / "n.sqlite")
    async with Sandbox({key: secret}) as sandbox:
        async with client(key, secret, sandbox.base_url, history=history, store=store) as k:
            await k.balance()
            await k.add_order(pair="XBTUSD", side="buy", ordertype="market", volume="1")
            for bad in (
                k.add_order(pair="XBTUSD", side="buy", ordertype="limit", volume="1"),
                k.cancel_order(txid="NOPE"),
            ):
                with pytest.raises(OrderlyError) as caught:
                    await bad
                texts += [str(caught.value), repr(caught.value)]
            texts += [repr(k), repr(k.lane), str(k.__dict__)]
        async with client(key, "A" * 88, sandbox.base_url, history=history, store=store) as wrong:
            with pytest.raises(AuthError) as auth:
                await wrong.balance()
            texts += [str(auth.value), repr(auth.value), repr(wrong)]
    history.close()
    store.close()
    texts.append(stream.getvalue())
    texts.append((tmp_path / "history.jsonl").read_text())
    texts.append((tmp_path / "n.sqlite").read_bytes().decode("latin-1"))
    assert "nonce_assigned" in stream.getvalue()  # the log really had content
    for text in texts:
        assert key not in text
        assert secret not in text


def test_the_redactor_catches_a_careless_log_line() -> None:
    stream = io.StringIO()
    log.configure("info", stream=stream, json=True)
    secret = Secret("s3cr3t-value-123")
    logger = structlog.get_logger()
    logger.info("oops", data=f"prefix {secret.reveal()} suffix", nested={"x": [secret.reveal()]})
    logger.info("fields", api_key="raw-key-in-field", api_secret="x", sign="y")
    out = stream.getvalue()
    assert "s3cr3t-value-123" not in out and "raw-key-in-field" not in out
    assert out.count("***") >= 4


def test_secret_repr_and_pickle() -> None:
    secret = Secret("hunter2-hunter2")
    assert "hunter2" not in repr(secret) and "hunter2" not in str(secret)
    assert "hunter2" not in f"{secret}" and "hunter2" not in repr({"k": secret})
    with pytest.raises(TypeError):
        pickle.dumps(secret)


def test_console_renderer_redacts_too() -> None:
    stream = io.StringIO()
    log.configure("info", stream=stream, json=False)
    Secret("console-secret-999")
    structlog.get_logger().info("oops", value="console-secret-999")
    assert "console-secret-999" not in stream.getvalue()
