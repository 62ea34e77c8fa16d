"""Shared fixtures: a private state directory per test, quiet logs, sandbox credentials."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from framework import log
from framework.sandbox import generate_credentials
from tests.helpers.redis_server import RedisServer


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own ORDERLY_STATE_DIR, never the user's."""
    state = tmp_path / "state"
    monkeypatch.setenv("ORDERLY_STATE_DIR", str(state))
    log.configure("warning", json=True)
    yield state


@pytest.fixture
def creds() -> tuple[str, str]:
    """A sandbox API key and secret."""
    return generate_credentials()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server of this test's own (unix socket, append-only), in a short path
    (a unix socket's path is limited to 107 bytes)."""
    directory = Path(tempfile.mkdtemp(prefix="orderly-redis-", dir="/tmp"))
    server = RedisServer(directory).start()
    yield server
    server.stop()
    shutil.rmtree(directory, ignore_errors=True)
