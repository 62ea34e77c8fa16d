"""Nonce history: the life of every nonce, as events, in a ring, and in a JSON-lines file.

Two events per call, with the same names and fields everywhere:

- ``nonce_assigned``: ``key_id``, ``nonce``, ``seq`` (per key, per process), ``endpoint``,
  ``queued_ms`` (time the call waited in the lane's queue).
- ``nonce_outcome``: ``key_id``, ``nonce``, ``seq``, ``endpoint``, ``outcome`` (one of
  :data:`OUTCOMES`), ``rtt_ms``, and ``code`` (the exchange's error string) when refused.

Each event goes to structlog (``nonce_assigned`` and accepted outcomes at debug level, any
other outcome at warning), to a bounded in-memory ring that code can query with
:meth:`NonceHistory.recent`, and to a JSON-lines file that rotates by size
(``nonces.jsonl``, ``nonces.jsonl.1`` ... oldest last). Records hold the key id, a short
hash, never a key or a secret.

Whole lines are buffered in memory (up to 64 KiB) and written with one ``write`` on an
``O_APPEND`` descriptor when the lane's queue runs empty, when the buffer is full, and on
close: an idle or lightly loaded bot has every record on disk at once, a busy one pays a
write per buffer, not per record. One ``write`` is never split by a signal, so a ``kill -9``
can lose the buffered tail of the history but never leaves half a line; several processes
appending to one file cannot interleave inside a line. A nonce floor is never at risk: it
lives in the store.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson

from framework.clock import SYSTEM_CLOCK, Clock
from framework.errors import StateError
from framework.log import enabled, get_logger
from framework.paths import private_dir

_BUFFER = 64 * 1024
Outcome = Literal["accepted", "rejected", "failed", "timed_out"]
OUTCOMES: tuple[Outcome, ...] = ("accepted", "rejected", "failed", "timed_out")
Record = dict[str, Any]


class NonceHistory:
    """Records nonce events. ``path=None`` keeps the ring and the log only."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        ring_size: int = 10_000,
        max_bytes: int = 50 * 1024 * 1024,
        backups: int = 5,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self._ring: deque[Record] = deque(maxlen=ring_size)
        self._max_bytes = max_bytes
        self._backups = backups
        self._clock = clock
        self._pid = os.getpid()
        self._log = get_logger("framework.nonce.history")
        self._fd: int | None = None
        self._size = 0
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._stamp_second = -1
        self._stamp_prefix = ""
        if self.path is not None:
            private_dir(self.path.parent)
            self._open()

    def _open(self) -> None:
        assert self.path is not None
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._size = os.fstat(self._fd).st_size

    def _rotate(self) -> None:
        assert self.path is not None and self._fd is not None
        os.close(self._fd)
        for index in range(self._backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{index}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{index + 1}"))
        if self._backups > 0:
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink()
        self._open()

    def _emit(self, record: Record) -> None:
        self._ring.append(record)
        if self._fd is not None:
            line = orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
            self._pending.append(line)
            self._pending_bytes += len(line)
            if (
                self._pending_bytes >= _BUFFER
                or self._size + self._pending_bytes >= self._max_bytes
            ):
                self.flush()

    def _stamp(self) -> str:
        """RFC 3339 UTC with microseconds, as text; the seconds part is formatted once per
        second (two records per call made this a hot spot)."""
        seconds, rest = divmod(self._clock.wall_ns(), 1_000_000_000)
        if seconds != self._stamp_second:
            self._stamp_second = seconds
            moment = dt.datetime.fromtimestamp(seconds, dt.UTC)
            self._stamp_prefix = moment.strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._stamp_prefix}.{rest // 1000:06d}+00:00"

    def assigned(
        self, *, key_id: str, nonce: int | str, seq: int, endpoint: str, queued_s: float
    ) -> None:
        """A nonce was given to a call leaving the queue."""
        queued_ms = round(queued_s * 1000, 3)
        self._emit(
            {
                "ts": self._stamp(),
                "event": "nonce_assigned",
                "key_id": key_id,
                "nonce": nonce,
                "seq": seq,
                "endpoint": endpoint,
                "queued_ms": queued_ms,
                "pid": self._pid,
            }
        )
        if not enabled("debug"):
            return
        self._log.debug(
            "nonce_assigned",
            key_id=key_id,
            nonce=nonce,
            seq=seq,
            endpoint=endpoint,
            queued_ms=queued_ms,
        )

    def outcome(
        self,
        *,
        key_id: str,
        nonce: int | str,
        seq: int,
        endpoint: str,
        outcome: Outcome,
        rtt_s: float,
        code: str | None = None,
    ) -> None:
        """What became of the call that carried ``nonce``."""
        rtt_ms = round(rtt_s * 1000, 3)
        record: Record = {
            "ts": self._stamp(),
            "event": "nonce_outcome",
            "key_id": key_id,
            "nonce": nonce,
            "seq": seq,
            "endpoint": endpoint,
            "outcome": outcome,
            "rtt_ms": rtt_ms,
            "pid": self._pid,
        }
        if code is not None:
            record["code"] = code
        self._emit(record)
        if outcome == "accepted" and not enabled("debug"):
            return
        emit = self._log.debug if outcome == "accepted" else self._log.warning
        emit(
            "nonce_outcome",
            key_id=key_id,
            nonce=nonce,
            seq=seq,
            endpoint=endpoint,
            outcome=outcome,
            rtt_ms=rtt_ms,
            code=code,
        )

    def paused(self, *, key_id: str, code: str | None, refusals: int, cooldown_s: float) -> None:
        """The lane's breaker tripped: nothing is sent for ``cooldown_s``."""
        self._emit(
            {
                "ts": self._stamp(),
                "event": "lane_paused",
                "key_id": key_id,
                "code": code,
                "refusals": refusals,
                "cooldown_s": cooldown_s,
                "pid": self._pid,
            }
        )
        self.flush()

    def recent(self, key_id: str | None = None, last: int = 100) -> list[Record]:
        """The newest ``last`` records in the ring, oldest first, optionally for one key.
        ``ts`` is RFC 3339 text, as in the file."""
        records = [r for r in self._ring if key_id is None or r["key_id"] == key_id]
        return records[-last:] if last > 0 else []

    def flush(self) -> None:
        """Write the buffered lines (whole lines, one write), then rotate if due. A write
        the OS refuses (a full disk) raises StateError; the lines not written stay buffered
        for the next flush."""
        if self._fd is None or not self._pending:
            return
        data = memoryview(b"".join(self._pending))
        try:
            while data:  # a regular file takes it all at once; loop only on a short write
                data = data[os.write(self._fd, data) :]
            self._size = os.fstat(self._fd).st_size
            if self._size >= self._max_bytes:
                self._rotate()
        except OSError as exc:
            raise StateError(f"nonce history {self.path}: cannot write: {exc}") from None
        finally:
            self._pending = [bytes(data)] if data else []
            self._pending_bytes = len(data)

    def last_nonce(self, key_id: str) -> int | None:
        """The last integer nonce this history's file shows for ``key_id`` (None: none, or
        no file)."""
        if self.path is None:
            return None
        self.flush()
        return last_nonce(self.path, key_id)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __repr__(self) -> str:
        return f"NonceHistory(path={str(self.path) if self.path else None!r})"


# --- reading history files (``orderly nonces ...``) ---------------------------------------


def history_files(path: Path) -> list[Path]:
    """The file and its rotated backups, oldest first."""
    backups = sorted(
        (p for p in path.parent.glob(f"{path.name}.*") if p.suffix.lstrip(".").isdigit()),
        key=lambda p: int(p.suffix.lstrip(".")),
        reverse=True,
    )
    return [*backups, *([path] if path.exists() else [])]


def _lines_backwards(file: Path, chunk: int = 1 << 20) -> Iterator[bytes]:
    """The lines of ``file``, last first, read in chunks from the end."""
    with open(file, "rb") as handle:
        position = handle.seek(0, os.SEEK_END)
        rest = b""
        while position > 0:
            size = min(chunk, position)
            position -= size
            handle.seek(position)
            lines = (handle.read(size) + rest).split(b"\n")
            rest = lines.pop(0)  # may be cut: joined with the chunk before it
            yield from reversed(lines)
        yield rest


def last_nonce(path: Path, key_id: str) -> int | None:
    """The last integer nonce the history at ``path`` gave ``key_id`` (newest file first,
    read from its end), or None if it holds none. Nonces of a key only increase, so the last
    one is the largest; a ``kill -9`` may have cost the history its unwritten tail."""
    needle = f'"key_id":"{key_id}"'.encode()
    for file in reversed(history_files(path)):
        for line in _lines_backwards(file):
            if needle not in line or b'"nonce_assigned"' not in line:
                continue
            try:
                nonce = json.loads(line).get("nonce")
            except ValueError:
                continue
            if isinstance(nonce, int) and not isinstance(nonce, bool):
                return nonce
    return None


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line of a history file that is not a JSON object."""

    file: Path
    line: int


def read_records(path: Path) -> Iterator[Record | BadLine]:
    """Every record of the history at ``path`` (rotated files included), in write order."""
    for file in history_files(path):
        with open(file, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                try:
                    record = json.loads(line)
                except ValueError:
                    record = None
                yield record if isinstance(record, dict) else BadLine(file, number)


@dataclass(frozen=True, slots=True)
class Problem:
    """One regression or duplicate found by :func:`check`."""

    kind: Literal["regression", "duplicate", "unreadable"]
    key_id: str
    nonce: int | str | None
    previous: int | str | None
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: key {self.key_id}: {self.detail}"


def check(
    records: Iterable[Record | BadLine], pauses: list[Record] | None = None
) -> tuple[int, list[Problem]]:
    """Verify that each key's assigned nonces strictly increase (integers) or never repeat
    (strings). Returns the number of assignments checked and every problem found; lane
    pauses (not problems) are appended to ``pauses`` when it is given."""
    pauses = pauses if pauses is not None else []
    last: dict[str, int] = {}
    seen: dict[str, set[int | str]] = {}
    problems: list[Problem] = []
    count = 0
    for record in records:
        if isinstance(record, BadLine):
            problems.append(
                Problem("unreadable", "-", None, None, f"{record.file}:{record.line} is not JSON")
            )
            continue
        if record.get("event") == "lane_paused":
            pauses.append(record)
            continue
        if record.get("event") != "nonce_assigned":
            continue
        count += 1
        key, nonce = str(record.get("key_id")), record.get("nonce")
        if not isinstance(nonce, int | str):
            problems.append(Problem("unreadable", key, None, None, f"nonce {nonce!r}"))
            continue
        used = seen.setdefault(key, set())
        previous = last.get(key)
        if nonce in used:
            problems.append(Problem("duplicate", key, nonce, previous, f"nonce {nonce} reused"))
        elif isinstance(nonce, int) and previous is not None and nonce < previous:
            problems.append(
                Problem("regression", key, nonce, previous, f"nonce {nonce} after {previous}")
            )
        used.add(nonce)
        if isinstance(nonce, int):
            last[key] = nonce if previous is None else max(nonce, previous)
    return count, problems
