"""Bad input never ends in a traceback: one line naming the key, exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from framework.cli import main as orderly

ROOT = Path(__file__).parent.parent
GOOD = """
[exchange]
name = "sandbox"
[strategy]
class = "strategies/grid.py:Grid"
[strategy.params]
levels = 2
"""


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = orderly(list(args))
    err = capsys.readouterr().err
    return code, err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD + "colour = 'red'\n", "strategy.params.colour: Extra inputs are not permitted"),
        (
            GOOD.replace("levels = 2", "levels = 'many'"),
            "strategy.params.levels: Input should be a valid integer",
        ),
        (
            GOOD.replace("levels = 2", "levels = 99"),
            "strategy.params.levels: Input should be less than or equal to 15",
        ),
        (
            GOOD + "[runner]\norder_poll_s = -1\n",
            "runner.order_poll_s: Input should be greater than 0",
        ),
        (GOOD + "[runner]\non_hook_error = 'ignore'\n", "runner.on_hook_error: Input should be"),
        (GOOD + "[runer]\n", "runer: Extra inputs are not permitted"),
        (GOOD.replace('name = "sandbox"', 'name = "binance"'), "exchange.name: Input should be"),
        (
            GOOD.replace('name = "sandbox"', 'name = "synthetix"'),
            "exchange: Value error, sub_account_id is required for synthetix",
        ),
        (
            GOOD.replace("strategies/grid.py:Grid", "strategies/nope.py:Grid"),
            "strategy.class: no file strategies/nope.py",
        ),
        (
            GOOD.replace("strategies/grid.py:Grid", "strategies/grid.py:Nope"),
            "strategy.class: strategies/grid.py has no Nope",
        ),
        (
            GOOD.replace("strategies/grid.py:Grid", "framework.errors:OrderlyError"),
            "strategy.class: framework.errors:OrderlyError is not a framework.Strategy subclass",
        ),
        (GOOD.replace('class = "strategies/grid.py:Grid"', ""), "strategy.class: Field required"),
        ("[exchange]\nname = 'sandbox'\n", "strategy: missing [strategy] section"),
        ("[exchange\n", "is not valid TOML"),
    ],
)
@pytest.mark.parametrize("command", ["check", "run"])
def test_bad_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str, command: str
) -> None:
    path = tmp_path / "bot.toml"
    path.write_text(text)
    code, err = run_cli(capsys, command, str(path))
    assert code == 2
    assert expected in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_broken_strategy_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "broken.py").write_text("from framework import Strategy\nclass X(Strategy:\n")
    path = tmp_path / "bot.toml"
    path.write_text(GOOD.replace("strategies/grid.py:Grid", "broken.py:X"))
    code, err = run_cli(capsys, "check", str(path))
    assert code == 2 and "cannot import broken.py: SyntaxError" in err and "(line 2)" in err


def test_missing_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ORDERLY_KRAKEN_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env here
    path = tmp_path / "bot.toml"
    path.write_text(
        GOOD.replace('name = "sandbox"', 'name = "kraken"').replace(
            "strategies/grid.py", str(ROOT / "strategies/grid.py")
        )
    )
    for command in ("check", "run"):
        code, err = run_cli(capsys, command, str(path))
        assert code == 2
        assert "missing secret ORDERLY_KRAKEN_API_KEY" in err and err.count("\n") == 1


def test_secrets_from_dotenv_and_secrets_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ORDERLY_KRAKEN_API_KEY", raising=False)
    monkeypatch.delenv("ORDERLY_KRAKEN_API_SECRET", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("ORDERLY_KRAKEN_API_KEY=from-dotenv\n")
    (tmp_path / "kraken.env").write_text("ORDERLY_KRAKEN_API_SECRET=ZnJvbS1maWxl\n")  # base64
    path = tmp_path / "bot.toml"
    path.write_text(
        GOOD.replace(
            'name = "sandbox"',
            'name = "kraken"\nsecrets_file = "' + str(tmp_path / "kraken.env") + '"',
        ).replace("strategies/grid.py", str(ROOT / "strategies/grid.py"))
    )
    assert run_cli(capsys, "check", str(path))[0] == 0


def test_unreadable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("check", "run"):
        code, err = run_cli(capsys, command, str(tmp_path))  # a directory, not a file
        assert code == 2 and "cannot read config" in err
        code, err = run_cli(capsys, command, str(tmp_path / "missing.toml"))
        assert code == 2 and "cannot read config" in err


def test_refused_key_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real-Kraken config pointed at a sandbox that does not know the key."""
    sandbox = subprocess.Popen(
        [sys.executable, "-m", "framework.cli", "sandbox", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sandbox.stdout is not None
        url = sandbox.stdout.readline().split()[-1]
        monkeypatch.setenv("ORDERLY_KRAKEN_API_KEY", "unknown-key")
        monkeypatch.setenv("ORDERLY_KRAKEN_API_SECRET", "c2VjcmV0LXRoYXQtaXMtd3Jvbmc=")
        path = tmp_path / "bot.toml"
        path.write_text(
            GOOD.replace('name = "sandbox"', f'name = "kraken"\nbase_url = "{url}"').replace(
                "strategies/grid.py", str(ROOT / "strategies/grid.py")
            )
            + f'[state]\nstore = "{tmp_path / "n.sqlite"}"\n'
            + f'history = "{tmp_path / "h.jsonl"}"\n'
            + f'[runner]\nlog_file = "{tmp_path / "log.jsonl"}"\n'
        )
        code, err = run_cli(capsys, "run", str(path))
        assert code == 2 and "the exchange refused the key: EAPI:Invalid key" in err
        assert "unknown-key" not in err
    finally:
        sandbox.terminate()
        sandbox.communicate(timeout=10)
