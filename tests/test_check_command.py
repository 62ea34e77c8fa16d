"""`orderly check` catches what `orderly run` would hit, each in one line naming the key,
exit 2; the README's strategy example passes the project's own lint."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import cast

import pytest

from framework.cli import main as orderly
from framework.errors import InvalidArguments
from framework.execution import Execution
from framework.strategy import Context
from tests.test_runner import ROOT

CONFIG = """
[exchange]
name = "{exchange}"
[strategy]
class = "{strategy}"
pairs = ["{pair}"]
[strategy.params]
{params}
"""


def check(
    tmp: Path,
    capsys: pytest.CaptureFixture[str],
    *,
    exchange: str = "sandbox",
    strategy: str = "strategies/grid.py:Grid",
    pair: str = "XBTUSD",
    params: str = "levels = 2",
    command: str = "check",
) -> tuple[int, str]:
    path = tmp / "bot.toml"
    path.write_text(
        CONFIG.format(exchange=exchange, strategy=strategy, pair=pair, params=params).replace(
            "strategies/", f"{ROOT}/strategies/"
        )
    )
    code = orderly([command, str(path)])
    return code, capsys.readouterr().err.strip()


def test_a_strategy_whose_init_raises(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "broken.py").write_text(
        "from framework import Strategy\n\n\nclass Broken(Strategy):\n"
        "    def __init__(self) -> None:\n        raise RuntimeError('no config for me')\n"
    )
    code, err = check(tmp_path, capsys, strategy=f"{tmp_path / 'broken.py'}:Broken", params="")
    assert code == 2 and len(err.splitlines()) == 1
    assert "strategy.class: Broken() raised RuntimeError: no config for me" in err


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (  # forgot async: every tick was a hook error, and check said ok
            "    def on_tick(self, ticker):\n        pass\n",
            "strategy.class: Forgetful.on_tick must be 'async def' (hooks are awaited)",
        ),
        (  # the context in __init__: an AttributeError about 'ctx'
            "    def __init__(self):\n        super().__init__()\n"
            "        self.pairs = self.ctx.pairs\n",
            "Forgetful.ctx is given after __init__: use it from on_start on",
        ),
        (  # a timer that is not a coroutine, or a period of 0: a raw ValueError in a hook
            "    def __init__(self):\n        super().__init__()\n        self.every(0, print)\n",
            "Forgetful.ctx is given after __init__: use it from on_start on",
        ),
    ],
    ids=["sync hook", "ctx in __init__", "timer in __init__"],
)
def test_a_strategy_written_the_wrong_way_is_named_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, expected: str
) -> None:
    (tmp_path / "forgetful.py").write_text(
        f"from framework import Strategy\n\n\nclass Forgetful(Strategy):\n{body}"
    )
    code, err = check(
        tmp_path, capsys, strategy=f"{tmp_path / 'forgetful.py'}:Forgetful", params=""
    )
    assert code == 2 and len(err.splitlines()) == 1 and expected in err, err


def test_an_unknown_pair(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = check(tmp_path, capsys, pair="BTCUSDX")
    assert code == 2 and err == "orderly: strategy.pairs: 'BTCUSDX' not listed by sandbox"


@pytest.mark.parametrize("written", ["BTC/USD", "btc-usd", "XBT/USD"])
def test_a_pair_written_as_ccxt_or_another_venue_writes_it_gets_the_exchanges_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], written: str
) -> None:
    """A ccxt user writes BTC/USD; Kraken (and the sandbox) list it as XBTUSD."""
    code, err = check(tmp_path, capsys, pair=written)
    assert code == 2 and err == (
        f"orderly: strategy.pairs: {written!r} not listed by sandbox (its name there: 'XBTUSD')"
    )


def test_a_kraken_secret_that_is_not_base64(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDERLY_KRAKEN_API_KEY", "a-key-that-is-long-enough-to-look-real")
    monkeypatch.setenv("ORDERLY_KRAKEN_API_SECRET", "not base64 at all!")
    code, err = check(tmp_path, capsys, exchange="kraken")
    assert code == 2 and len(err.splitlines()) == 1
    assert "secret ORDERLY_KRAKEN_API_SECRET: is not base64" in err
    assert "not base64 at all" not in err  # the value is never shown


def test_a_typo_in_a_param_is_refused_by_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Params model that says nothing of extra keys refuses them (the README example's)."""
    (tmp_path / "dip.py").write_text(readme_example())
    code, err = check(
        tmp_path, capsys, strategy=f"{tmp_path / 'dip.py'}:DipBuyer", params="drop_bsp = 30"
    )
    assert code == 2 and len(err.splitlines()) == 1
    assert "strategy.params.drop_bsp: not a parameter of DipBuyer" in err
    assert "drop_bps" in err  # what it does take


def test_the_unreachable_exchange_is_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDERLY_BITUNIX_API_KEY", "a-key-that-is-long-enough-to-look-real")
    monkeypatch.setenv("ORDERLY_BITUNIX_API_SECRET", "a-secret-that-is-long-enough-to-look")
    path = tmp_path / "bot.toml"
    path.write_text(
        CONFIG.format(
            exchange="bitunix",
            strategy=f"{ROOT}/strategies/grid.py:Grid",
            pair="BTCUSDT",
            params="levels = 2",
        ).replace('name = "bitunix"', 'name = "bitunix"\nbase_url = "http://127.0.0.1:9"')
    )
    assert orderly(["check", str(path)]) == 0
    assert "pairs not checked: bitunix could not be reached" in capsys.readouterr().err


def readme_examples() -> list[str]:
    """The README's strategies (python blocks that subclass Strategy), the first: DipBuyer."""
    text = (ROOT / "README.md").read_text()
    return [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "(Strategy)" in b]


def readme_example() -> str:
    (block,) = [b for b in readme_examples() if "class DipBuyer(" in b]
    return block


def test_the_readme_strategy_example_passes_the_projects_lint() -> None:
    assert len(readme_examples()) == 2  # DipBuyer, TakeProfit
    for example in readme_examples():
        for command in (["check"], ["format", "--check"]):
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "ruff",
                    *command,
                    "--stdin-filename",
                    "strategies/x.py",
                    "-",
                ],
                input=example,
                capture_output=True,
                text=True,
                cwd=ROOT,
            )
            assert done.returncode == 0, done.stdout + done.stderr


def test_a_timer_must_be_a_coroutine_with_a_positive_period() -> None:
    """A period of 0 raised a bare ValueError into the hook; a plain function was accepted
    and failed at its first tick."""
    ctx = Context(cast(Execution, None), name="t")

    async def tick() -> None:
        pass

    for period, callback in ((0, tick), (float("nan"), tick), (1, print)):
        with pytest.raises(InvalidArguments):
            ctx.every(period, callback)  # type: ignore[arg-type]
    ctx.every(1, tick)


def test_synthetix_pairs_are_checked_against_its_books(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`orderly check` said ok for any Synthetix pair, even unreachable, without saying
    it had not looked: each configured symbol is now asked for its book (the conformance
    server in its own process refuses an unknown symbol as Synthetix does, HTTP 400)."""
    address = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    env = {"ORDERLY_BENCH_ADDRESS": address, "ORDERLY_BENCH_SUBACCOUNTS": "1867542890123456789"}
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.conformance.serve", "synthetix"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, **env},
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        monkeypatch.setenv(
            "ORDERLY_SYNTHETIX_PRIVATE_KEY",
            "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
        )
        synthetix = 'synthetix"\nsub_account_id = 1867542890123456789\nbase_url = '
        code, err = check(tmp_path, capsys, exchange=f'{synthetix}"{url}', pair="DOGE-USDT")
        assert code == 2 and err == "orderly: strategy.pairs: 'DOGE-USDT' not listed by synthetix"
        code, err = check(tmp_path, capsys, exchange=f'{synthetix}"{url}', pair="BTC-USDT")
        assert (code, err) == (0, "")
    finally:
        server.terminate()
        server.communicate(timeout=10)
    code, err = check(tmp_path, capsys, exchange=f'{synthetix}"http://127.0.0.1:1', pair="X")
    assert code == 0 and "pairs not checked: synthetix could not be reached" in err


def test_run_refuses_an_unknown_pair_before_trading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`orderly check` named an unknown pair, but `orderly run` went on with blank prices,
    polling the ticker into the exchange's refusals for as long as it ran."""
    monkeypatch.setenv("ORDERLY_STATE_DIR", str(tmp_path / "state"))
    code, err = check(tmp_path, capsys, pair="BTCUSDX", params="", command="run")
    assert code == 2
    assert err.splitlines()[-1] == "orderly: strategy.pairs: 'BTCUSDX' not listed by sandbox"


def test_several_pairs_written_another_way_each_get_their_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = check(tmp_path, capsys, pair='BTC/USD", "XBTUSD", "ETH/USD", "DOGE/USD')
    assert code == 2 and err == (
        "orderly: strategy.pairs: 'BTC/USD', 'ETH/USD', 'DOGE/USD' not listed by sandbox "
        "('BTC/USD' is 'XBTUSD'; 'ETH/USD' is 'ETHUSD')"
    )
