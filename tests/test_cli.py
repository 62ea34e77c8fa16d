"""The ``orderly`` command: nonces tail/show/check/floors, check CONFIG, clear errors."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from framework.cli import main
from framework.events import Fill, OrderState
from framework.journal import OrderJournal
from framework.nonce.history import NonceHistory
from framework.nonce.source import IncreasingNonces
from framework.nonce.store import SqliteStore
from framework.orders import LimitOrder, TrackedOrder
from framework.strategy_state import dump


def write_history(path: Path, nonces: list[int], key: str = "abc123abc123") -> None:
    history = NonceHistory(path)
    for seq, nonce in enumerate(nonces, 1):
        history.assigned(key_id=key, nonce=nonce, seq=seq, endpoint="Balance", queued_s=0.001)
        history.outcome(
            key_id=key, nonce=nonce, seq=seq, endpoint="Balance", outcome="accepted", rtt_s=0.002
        )
    history.close()


def test_nonces_check_clean_and_dirty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = tmp_path / "good.jsonl", tmp_path / "bad.jsonl"
    write_history(good, [1, 2, 3])
    write_history(bad, [1, 5, 3, 3])
    assert main(["nonces", "check", "--file", str(good)]) == 0
    assert "checked 3 nonces" in capsys.readouterr().out
    assert main(["nonces", "check", "--file", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "regression: key abc123abc123: nonce 3 after 5" in out
    assert "duplicate: key abc123abc123: nonce 3 reused" in out
    assert "2 problems" in out


def test_nonces_check_reports_unreadable_lines(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    write_history(path, [1, 2])
    with open(path, "a") as handle:
        handle.write("{not json\n")
    assert main(["nonces", "check", "--file", str(path)]) == 1


def test_nonces_show_and_tail(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "h.jsonl"
    write_history(path, [10, 20, 30])
    assert (
        main(["nonces", "show", "--key", "abc123abc123", "--last", "2", "--file", str(path)]) == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and "30" in lines[-1] and "accepted" in lines[-1]
    assert main(["nonces", "tail", "-n", "1", "--file", str(path)]) == 0
    assert "#3" in capsys.readouterr().out


def test_history_defaults_to_the_state_dir(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_history(state_dir / "history" / "nonces.jsonl", [1, 2])
    assert main(["nonces", "check"]) == 0


async def test_nonces_floors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = SqliteStore(tmp_path / "n.sqlite")
    source = IncreasingNonces(store, "abc123abc123", unit="counter")
    await source.next()
    await source.close()
    store.close()
    assert main(["nonces", "floors", "--store", str(tmp_path / "n.sqlite")]) == 0
    assert "abc123abc123  unit=counter  floor=1" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[state]\nwhatever = 1\n", "state.whatever: Extra inputs are not permitted"),
        ("[nonce]\nunit = 'minutes'\n", "nonce.unit: Input should be"),
        ("[sandbox]\nport = 'eighty'\n", "sandbox.port: Input should be a valid integer"),
        ("[nonce\n", "is not valid TOML"),
    ],
)
def test_bad_config_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_missing_files_are_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(tmp_path / "nope.toml")]) == 2
    assert "cannot read config" in capsys.readouterr().err
    assert main(["nonces", "check", "--file", str(tmp_path / "none.jsonl")]) == 2
    assert "no nonce history" in capsys.readouterr().err


def test_shipped_configs_are_valid(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDERLY_KRAKEN_API_KEY", "not-a-real-key")
    monkeypatch.setenv("ORDERLY_KRAKEN_API_SECRET", "bm90LWEtcmVhbC1zZWNyZXQ=")
    monkeypatch.setenv("ORDERLY_BITUNIX_API_KEY", "not-a-real-key")
    monkeypatch.setenv("ORDERLY_BITUNIX_API_SECRET", "not-a-real-secret")
    monkeypatch.setenv("ORDERLY_SYNTHETIX_PRIVATE_KEY", "0x" + "11" * 32)
    configs = sorted(Path(__file__).parent.parent.glob("config/*.toml"))
    assert configs
    for path in configs:
        assert main(["check", str(path)]) == 0, capsys.readouterr().err


def test_console_script_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "framework.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0 and "nonces" in done.stdout


def test_sandbox_command_serves_until_signalled(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "framework.cli", "sandbox", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("sandbox listening on http://127.0.0.1:")
        assert process.stdout.readline().startswith("export ORDERLY_SANDBOX_API_KEY=")
    finally:
        process.terminate()
        process.communicate(timeout=10)
    assert process.returncode == 0


def test_sandbox_command_on_a_busy_or_impossible_port_says_so_in_one_line() -> None:
    """A port in use printed a JSON traceback and "unexpected OSError" (exit 1); a port past
    65535 silently served on another one (99999 became 34463)."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "framework.cli", "sandbox", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "framework.cli", "sandbox", "--port", "99999"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2 and "0 to 65535" in done.stderr


def test_orders_shows_each_keys_open_orders_and_newest_fills(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "orders.sqlite"
    journal = OrderJournal(path, exchange="kraken", key_id="abc123abc123")
    resting = TrackedOrder(LimitOrder("XBTUSD", "buy", "0.002", "59940.1", post_only=True), "c1")
    resting.state, resting.txid = OrderState.ACCEPTED, "OABC-1"
    done = TrackedOrder(LimitOrder("XBTUSD", "sell", "0.001", "60024"), "c2")
    done.state = OrderState.FILLED
    journal.save(resting, done)
    for n in range(3):
        trade = Fill(f"T{n}", "c2", "OABC-2", "XBTUSD", "sell", Decimal("60024.0"),
                     Decimal("0.001"), Decimal("0.096"), True, 1_795_000_000.0 + n)  # fmt: skip
        journal.fill(done, trade)
    # the bot still has it open: the command reads beside it
    assert main(["orders", "--journal", str(path), "--fills", "2"]) == 0
    journal.close()
    assert capsys.readouterr().out.splitlines() == [
        "kraken key abc123abc123: 1 open",
        "  accepted         buy  0.002 XBTUSD @ 59940.1  filled 0  post-only  txid OABC-1  c1",
        "kraken key abc123abc123: 2 newest fills",
        "  2026-11-18 11:06:41  sell 0.001 XBTUSD @ 60024.0  fee 0.096  maker  trade T1  c2",
        "  2026-11-18 11:06:42  sell 0.001 XBTUSD @ 60024.0  fee 0.096  maker  trade T2  c2",
    ]


def test_orders_shows_what_each_strategy_keeps_and_reads_a_journal_from_before_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "orders.sqlite"
    journal = OrderJournal(path, exchange="kraken", key_id="abc123abc123")
    journal.save(TrackedOrder(LimitOrder("XBTUSD", "buy", "0.002", "59940.1"), "c1"))
    journal.delivered(None, ("Twap", dump({"done": Decimal("0.0020"), "sent": 2})))
    journal.close()
    assert main(["orders", "--journal", str(path)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        'kraken key abc123abc123: Twap keeps {"done": "0.0020", "sent": 2}'
    )
    with sqlite3.connect(path) as db:  # as an Orderly before ctx.state wrote it
        db.execute("DROP TABLE strategy_state")
    db.close()
    assert main(["orders", "--journal", str(path)]) == 0
    assert "keeps" not in capsys.readouterr().out


def test_orders_without_a_journal_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["orders", "--journal", str(tmp_path / "none.sqlite")]) == 2
    assert (
        capsys.readouterr().err == f"orderly: order journal {tmp_path}/none.sqlite: no such file\n"
    )
    assert not (tmp_path / "none.sqlite").exists()
