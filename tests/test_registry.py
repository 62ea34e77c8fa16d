"""Exchanges register themselves: a package outside framework/ (tests/fakex) brings its own
config keys, secret names and venue, and the core needs no change to run it."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from framework.cli import main as orderly
from framework.config import load
from framework.errors import ConfigError
from framework.events import Fill, OrderState, OrderUpdate
from framework.registry import spec_for
from framework.runner import EXIT_OK, Runner
from framework.sandbox import Sandbox
from tests.contract.harness import KRAKEN_KEY, KRAKEN_SECRET, fakex_secrets
from tests.helpers import strategies
from tests.test_runner import write_config

FRAMEWORK = Path(__file__).parent.parent / "framework"


def fakex_config(tmp: Path, url: str, extra: str = 'desk = "alpha"') -> Path:
    config = write_config(tmp, "tests.helpers.strategies:Recorder")
    config.write_text(
        config.read_text().replace(
            'name = "sandbox"',
            f'name = "fakex"\nmodule = "tests.fakex.spec"\nbase_url = "{url}"\n'
            f'secrets_file = "{fakex_secrets(tmp, KRAKEN_SECRET)}"\n{extra}',
        )
    )
    return config


def test_no_core_file_knows_the_test_exchange() -> None:
    assert not [p for p in FRAMEWORK.rglob("*.py") if "fakex" in p.read_text()]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("", "exchange.desk: Field required"),
        ('desk = "alpha"\ncolour = "red"', "exchange.colour: Extra inputs are not permitted"),
        ('desk = "alpha"\norder_deadline_s = 99', "exchange.order_deadline_s: Input should be"),
    ],
)
def test_the_exchange_checks_its_own_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: str, expected: str
) -> None:
    config = fakex_config(tmp_path, "http://127.0.0.1:1", extra)
    assert orderly(["check", str(config)]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1


def test_an_unknown_exchange_names_the_known_ones(tmp_path: Path) -> None:
    config = write_config(tmp_path, "tests.helpers.strategies:Recorder")
    config.write_text(config.read_text().replace('name = "sandbox"', 'name = "binance"'))
    with pytest.raises(ConfigError, match=r"exchange.name: Input should be one of") as error:
        load(config)
    assert all(f"'{name}'" in str(error.value) for name in ("bitunix", "kraken", "synthetix"))


async def test_the_runner_trades_on_a_registered_test_exchange(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with Sandbox({KRAKEN_KEY: KRAKEN_SECRET}) as sandbox:
        config = fakex_config(tmp_path, sandbox.base_url)
        assert orderly(["check", str(config)]) == 0
        assert spec_for(load(config)).secrets == ("ORDERLY_FAKEX_KEY", "ORDERLY_FAKEX_SECRET")
        seen = strategies.SEEN
        seen.clear()
        runner = Runner(load(config), out=io.StringIO())
        task = asyncio.create_task(runner.main(install_signals=False))
        while not any(isinstance(e, Fill) for e in seen):
            seen.changed.clear()
            await seen.changed.wait()
        runner.request_stop("test finished")
        assert await task == EXIT_OK
    states = [e.state for e in seen if isinstance(e, OrderUpdate)]
    assert OrderState.ACCEPTED in states and OrderState.FILLED in states
    assert KRAKEN_SECRET not in capsys.readouterr().out
