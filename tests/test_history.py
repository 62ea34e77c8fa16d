"""Nonce history: events in the ring and the file, rotation, and the checker."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
from pathlib import Path

import pytest

from framework.call import PrivateCall
from framework.clock import ManualClock
from framework.dispatch import Lane
from framework.errors import AuthError, StateError
from framework.nonce.history import NonceHistory
from framework.nonce.reading import check, history_files, read_records
from framework.nonce.source import IncreasingNonces, Nonce
from framework.nonce.store import MemoryStore
from framework.sandbox import Sandbox
from tests.helpers.kraken import client


def assigned(key: str, nonce: int | str, seq: int = 1) -> dict[str, object]:
    return {"event": "nonce_assigned", "key_id": key, "nonce": nonce, "seq": seq}


async def test_every_call_leaves_two_records(tmp_path: Path, creds: tuple[str, str]) -> None:
    key, secret = creds
    history = NonceHistory(tmp_path / "h.jsonl")
    async with (
        Sandbox({key: secret}) as sandbox,
        client(key, secret, sandbox.base_url, history=history) as k,
    ):
        await k.balance()
        await k.private("OpenOrders")
    history.close()
    lines = [json.loads(line) for line in (tmp_path / "h.jsonl").read_text().splitlines()]
    assert [r["event"] for r in lines] == ["nonce_assigned", "nonce_outcome"] * 2
    first, outcome = lines[0], lines[1]
    assert set(first) >= {"ts", "key_id", "nonce", "seq", "endpoint", "queued_ms"}
    assert set(outcome) >= {"ts", "key_id", "nonce", "seq", "endpoint", "outcome", "rtt_ms"}
    assert outcome["outcome"] == "accepted" and outcome["nonce"] == first["nonce"]
    assert [r["endpoint"] for r in lines[::2]] == ["Balance", "OpenOrders"]
    assert [r["seq"] for r in lines[::2]] == [1, 2]
    assert first["key_id"] == k.key_id


async def test_refusals_are_recorded_with_their_code(
    tmp_path: Path, creds: tuple[str, str]
) -> None:
    key, secret = creds
    history = NonceHistory(None)
    async with (
        Sandbox({key: secret}) as sandbox,
        client(key, "A" * 88, sandbox.base_url, history=history) as k,
    ):
        with contextlib.suppress(AuthError):
            await k.balance()
    outcome = history.recent(k.key_id)[-1]
    assert (outcome["outcome"], outcome["code"]) == ("rejected", "EAPI:Invalid signature")


def test_ring_is_bounded_and_queryable() -> None:
    history = NonceHistory(None, ring_size=10)
    for n in range(25):
        history.assigned(key_id="a" if n % 2 else "b", nonce=n, seq=n, endpoint="E", queued_s=0.0)
    assert len(history.recent(last=100)) == 10
    assert [r["nonce"] for r in history.recent("a", last=3)] == [19, 21, 23]


def test_file_rotates_by_size(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    history = NonceHistory(path, max_bytes=2_000, backups=2, clock=ManualClock())
    for n in range(200):
        history.assigned(key_id="k", nonce=n, seq=n, endpoint="Balance", queued_s=0.0)
    history.close()
    files = history_files(path)
    assert [f.name for f in files] == ["h.jsonl.2", "h.jsonl.1", "h.jsonl"]
    assert all(f.stat().st_size < 2_400 for f in files)
    nonces = [r["nonce"] for r in read_records(path) if isinstance(r, dict)]
    assert nonces == sorted(nonces) and nonces[-1] == 199  # oldest first, newest kept


def test_check_finds_regressions_and_duplicates() -> None:
    records = [
        assigned("a", 1),
        assigned("a", 2),
        assigned("b", 5),
        assigned("a", 2),
        assigned("a", 1),
        assigned("b", 6),
        assigned("r", "x1"),
        assigned("r", "x1"),
        {"event": "nonce_outcome", "key_id": "a", "nonce": 0},
    ]
    count, problems = check(records)
    assert count == 8
    assert [(p.kind, p.key_id, p.nonce) for p in problems] == [
        ("duplicate", "a", 2),
        ("duplicate", "a", 1),
        ("duplicate", "r", "x1"),
    ]


def test_check_accepts_a_clean_history() -> None:
    assert check([assigned("a", n) for n in range(1, 100)]) == (99, [])


def test_check_tells_regression_from_duplicate() -> None:
    _, problems = check([assigned("a", 5), assigned("a", 3), assigned("a", 5)])
    assert [(p.kind, p.nonce) for p in problems] == [("regression", 3), ("duplicate", 5)]


def test_writers_sharing_a_file_never_tear_a_line(tmp_path: Path) -> None:
    """Two histories (as two processes would) appending to one file, flushing at odd
    moments and past the 64 KiB buffer: every line stays whole JSON."""
    path = tmp_path / "h.jsonl"
    first, second = NonceHistory(path), NonceHistory(path)
    for n in range(3000):
        writer = first if n % 3 else second
        writer.assigned(
            key_id="k" * 12, nonce=n, seq=n, endpoint="Balance" * (n % 7 + 1), queued_s=0.0
        )
        if n % 97 == 0:
            writer.flush()
    first.close()
    second.close()
    lines = path.read_bytes().splitlines()
    assert len(lines) == 3000
    assert all(isinstance(json.loads(line), dict) for line in lines)


def test_lines_read_back_as_the_records_whatever_their_values(tmp_path: Path) -> None:
    """The two hot records are written from a template, the rest by orjson: either way a
    line is the record ``recent`` shows, quotes and odd strings included."""
    path = tmp_path / "h.jsonl"
    history = NonceHistory(path)
    history.assigned(key_id="k1", nonce=10**18 + 7, seq=1, endpoint="AddOrder", queued_s=0.0123)
    history.outcome(
        key_id="k1", nonce=10**18 + 7, seq=1, endpoint="AddOrder", outcome="accepted", rtt_s=2.5
    )
    history.assigned(key_id='k"2', nonce="a1b2", seq=2, endpoint='Odd"},{\n', queued_s=0)
    history.outcome(
        key_id='k"2',
        nonce="a1b2",
        seq=2,
        endpoint='Odd"},{\n',
        outcome="rejected",
        rtt_s=1e-7,
        code='EAPI:Invalid nonce "},{',
    )
    history.assigned(key_id="k%s", nonce=5, seq=3, endpoint='E"%d\\', queued_s=1e-9)
    history.paused(key_id="k1", code=None, refusals=3, cooldown_s=60.0)
    history.close()
    lines = [json.loads(line) for line in path.read_bytes().splitlines()]
    assert lines == history.recent(last=10)
    events = [r["event"] for r in lines]
    assert events == ["nonce_assigned", "nonce_outcome"] * 2 + ["nonce_assigned", "lane_paused"]
    assert (lines[4]["key_id"], lines[4]["endpoint"]) == ("k%s", 'E"%d\\')
    assert (lines[0]["queued_ms"], lines[1]["rtt_ms"], lines[0]["nonce"]) == (
        12.3,
        2500.0,
        10**18 + 7,
    )


async def test_an_idle_lane_puts_its_records_on_disk_without_closing(tmp_path: Path) -> None:
    """Calls in quick succession share one write; the last ones reach the file soon after
    the lane goes idle (a timer, not the next call)."""
    path = tmp_path / "h.jsonl"
    history = NonceHistory(path)

    async def instant(call: PrivateCall, nonce: Nonce) -> Nonce:
        return nonce

    source = IncreasingNonces(MemoryStore(), "k", unit="counter")
    async with Lane(key_id="k", wire=instant, source=source, history=history) as lane:
        for _ in range(5):
            await lane.submit(PrivateCall("Balance"))
        async with asyncio.timeout(5):  # bounded: the write is due within 10 ms
            while len(path.read_bytes().splitlines()) < 10:  # noqa: ASYNC110 - a file
                await asyncio.sleep(0.005)
        assert [json.loads(line)["seq"] for line in path.read_bytes().splitlines()[::2]] == [
            1,
            2,
            3,
            4,
            5,
        ]
    history.close()


async def test_a_record_that_cannot_be_written_as_it_is_made_stops_the_lane_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A history so close to its rotation size that every record is written as it is made,
    on a disk that refuses the write: the call is answered with StateError (nothing sent),
    the lane stops sending, and nothing hangs or escapes the lane's worker."""
    history = NonceHistory(tmp_path / "h.jsonl", max_bytes=100)

    def refused(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    sent: list[Nonce] = []

    async def wire(call: PrivateCall, nonce: Nonce) -> Nonce:
        sent.append(nonce)
        return nonce

    source = IncreasingNonces(MemoryStore(), "k", unit="counter")
    async with Lane(key_id="k", wire=wire, source=source, history=history) as lane:
        monkeypatch.setattr("framework.nonce.history.os.write", refused)
        async with asyncio.timeout(5):
            with pytest.raises(StateError, match="No space left"):
                await lane.submit(PrivateCall("AddOrder"))
            with pytest.raises(StateError):
                await lane.submit(PrivateCall("Balance"))
        assert sent == [] and lane.broken is not None
        monkeypatch.undo()
    history.close()


def test_a_write_left_due_by_a_loop_that_ended_is_made_by_the_next_one(tmp_path: Path) -> None:
    """A history outliving its event loop (one ``asyncio.run`` after another) with a timed
    write still due when the first loop ended: the next loop's idle lane writes it."""
    path = tmp_path / "h.jsonl"
    history = NonceHistory(path)

    def record(seq: int) -> None:
        history.assigned(key_id="k", nonce=seq, seq=seq, endpoint="Balance", queued_s=0.0)

    async def first() -> None:
        record(1)
        history.idle(pytest.fail)  # written at once
        record(2)
        history.idle(pytest.fail)  # due in 10 ms: the loop ends first

    async def second() -> None:
        record(3)
        history.idle(pytest.fail)
        async with asyncio.timeout(5):  # bounded: due within 10 ms
            while len(path.read_bytes().splitlines()) < 3:  # noqa: ASYNC110 - a file
                await asyncio.sleep(0.005)

    asyncio.run(first())
    assert len(path.read_bytes().splitlines()) == 1
    asyncio.run(second())
    history.close()
