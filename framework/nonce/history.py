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

Records are buffered in memory and written as whole lines with one ``write`` on an
``O_APPEND`` descriptor when the lane's queue runs empty (at once, or :data:`WRITE_EVERY_S`
after the previous write), when 512 records are held, and on close: an idle bot has every
record on disk within 10 ms, a busy one pays a write per interval or buffer, not per
record. One ``write`` is never split by a signal, so a ``kill -9`` can lose the buffered
tail of the history but never leaves half a line; several processes appending to one file
cannot interleave inside a line. A nonce floor is never at risk: it lives in the store.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import orjson

from framework import log
from framework.clock import SYSTEM_CLOCK, Clock
from framework.errors import StateError
from framework.log import get_logger
from framework.nonce.reading import Record, last_nonce
from framework.paths import private_dir, shift_backups

_BUFFERED = 512  # records held before a write (about 100 KiB of lines)
Outcome = Literal["accepted", "rejected", "failed", "timed_out"]
OUTCOMES: tuple[Outcome, ...] = ("accepted", "rejected", "failed", "timed_out")
#: The longest a record waits in memory once its writer is idle (seconds).
WRITE_EVERY_S = 0.01
_ASSIGNED = "assigned"
#: A record as kept before it is written or read: (wall ns, "assigned" or the outcome, key
#: id, nonce, seq, endpoint, seconds queued or round trip, error code), or a rare record
#: (a lane pause) as a dict already.
Raw = tuple[int, str, str, int | str, int, str, float, str | None] | Record


class NonceHistory:
    """Records nonce events. ``path=None`` keeps the ring and the log only.

    The two records of every call are kept raw (a tuple of the values and the wall time in
    nanoseconds) in the ring and the write buffer; they become JSON lines when written and
    dicts when read with :meth:`recent`: what a call pays is a clock read and two appends."""

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
        self._ring: deque[Raw] = deque(maxlen=ring_size)
        self._max_bytes = max_bytes
        self._backups = backups
        self._now_ns = clock.wall_ns
        self._pid = os.getpid()
        self._log = get_logger("framework.nonce.history")
        self._fd: int | None = None
        self._size = 0
        self._pending: list[Raw] = []
        self._unwritten = b""  # the tail of a short write, written first next time
        self._write_at = 1  # records held before a write: set by _open and each write
        self._stamp_second = -1
        self._stamp_prefix = ""
        self._templates: dict[tuple[str, str, str], str] = {}
        self._written_at = float("-inf")  # time.monotonic() of the last write
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None
        if self.path is not None:
            private_dir(self.path.parent)
            self._open()

    def _open(self) -> None:
        assert self.path is not None
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._size = os.fstat(self._fd).st_size
        self._plan(200)

    def _plan(self, line_bytes: int) -> None:
        """How many records to hold before writing: the buffer's size, or fewer when the
        file would pass its rotation size (lines of ``line_bytes``, as last written)."""
        room = (self._max_bytes - self._size) // max(1, line_bytes)
        self._write_at = max(1, min(_BUFFERED, room))

    def _rotate(self) -> None:
        assert self.path is not None and self._fd is not None
        os.close(self._fd)
        shift_backups(self.path, self._backups)
        self._open()

    def _emit(self, raw: Raw) -> None:
        self._ring.append(raw)
        if self._fd is not None:
            self._pending.append(raw)
            if len(self._pending) >= self._write_at:
                self.flush()

    def _stamp(self, ns: int) -> str:
        """RFC 3339 UTC with microseconds; the seconds part is formatted once per second."""
        seconds, rest = divmod(ns, 1_000_000_000)
        if seconds != self._stamp_second:
            self._stamp_second = seconds
            moment = dt.datetime.fromtimestamp(seconds, dt.UTC)
            self._stamp_prefix = moment.strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._stamp_prefix}.{rest // 1000:06d}+00:00"

    def assigned(
        self, *, key_id: str, nonce: int | str, seq: int, endpoint: str, queued_s: float
    ) -> None:
        """A nonce was given to a call leaving the queue."""
        self._emit((self._now_ns(), _ASSIGNED, key_id, nonce, seq, endpoint, queued_s, None))
        if log.debugging:
            self._log.debug("nonce_assigned", **self._fields(self._ring[-1]))

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
        self._emit((self._now_ns(), outcome, key_id, nonce, seq, endpoint, rtt_s, code))
        if outcome != "accepted":
            self._log.warning("nonce_outcome", **self._fields(self._ring[-1]))
        elif log.debugging:
            self._log.debug("nonce_outcome", **self._fields(self._ring[-1]))

    def paused(self, *, key_id: str, code: str | None, refusals: int, cooldown_s: float) -> None:
        """The lane's breaker tripped: nothing is sent for ``cooldown_s``."""
        self._emit(
            {
                "ts": self._stamp(self._now_ns()),
                "event": "lane_paused",
                "key_id": key_id,
                "code": code,
                "refusals": refusals,
                "cooldown_s": cooldown_s,
                "pid": self._pid,
            }
        )
        self.flush()

    def _dict(self, raw: Raw) -> Record:
        """A record as the file holds it."""
        if isinstance(raw, dict):
            return raw
        ns, kind, key_id, nonce, seq, endpoint, seconds, code = raw
        record: Record = {
            "ts": self._stamp(ns),
            "event": "nonce_assigned" if kind == _ASSIGNED else "nonce_outcome",
            "key_id": key_id,
            "nonce": nonce,
            "seq": seq,
            "endpoint": endpoint,
        }
        if kind == _ASSIGNED:
            record["queued_ms"] = round(seconds * 1000, 3)
        else:
            record["outcome"], record["rtt_ms"] = kind, round(seconds * 1000, 3)
        record["pid"] = self._pid
        if code is not None:
            record["code"] = code
        return record

    def _fields(self, raw: Raw) -> Record:
        """A record's fields for the log line (which has its own time, event and pid)."""
        return {k: v for k, v in self._dict(raw).items() if k not in ("ts", "event", "pid")}

    def _lines(self, raws: list[Raw]) -> bytes:
        """The JSON lines of ``raws``. The two hot records are formatted with a template
        per (event or outcome, key id, endpoint), made once with those three quoted by
        orjson; any other record (a pause, an error code, a string nonce) goes through
        orjson whole."""
        templates, out = self._templates, []
        for raw in raws:
            if raw.__class__ is not tuple or raw[7] is not None or raw[3].__class__ is str:
                out.append(orjson.dumps(self._dict(raw)).decode() + "\n")
                continue
            ns, kind, key_id, nonce, seq, endpoint, seconds, _ = raw
            if ns // 1_000_000_000 != self._stamp_second:
                self._stamp(ns)
            template = templates.get((kind, key_id, endpoint)) or self._template(
                kind, key_id, endpoint
            )
            out.append(
                template
                % (self._stamp_prefix, ns % 1_000_000_000 // 1000, nonce, seq, seconds * 1000)
            )
        return "".join(out).encode()

    def _template(self, kind: str, key_id: str, endpoint: str) -> str:
        event, time_field = (
            ("nonce_assigned", "queued_ms") if kind == _ASSIGNED else ("nonce_outcome", "rtt_ms")
        )
        outcome = "" if kind == _ASSIGNED else f',"outcome":{_quote(kind)}'
        template = (
            f'{{"ts":"%s.%06d+00:00","event":"{event}","key_id":{_quote(key_id)},"nonce":%d,'
            f'"seq":%d,"endpoint":{_quote(endpoint)}{outcome},"{time_field}":%.3f,'
            f'"pid":{self._pid}}}\n'
        )
        if len(self._templates) < 1_000:  # key ids x endpoints x outcomes: a few dozen
            self._templates[kind, key_id, endpoint] = template
        return template

    def recent(self, key_id: str | None = None, last: int = 100) -> list[Record]:
        """The newest ``last`` records in the ring, oldest first, optionally for one key.
        ``ts`` is RFC 3339 text, as in the file."""
        found: list[Raw] = []
        for raw in reversed(self._ring):  # newest first, only as far back as needed
            if len(found) >= last:
                break
            if key_id is None or (raw["key_id"] if isinstance(raw, dict) else raw[2]) == key_id:
                found.append(raw)
        return [self._dict(raw) for raw in reversed(found)]

    def idle(self, failed: Callable[[StateError], None]) -> None:
        """Its writer has nothing more for now: write the buffer at once, or, if the last
        write was less than WRITE_EVERY_S ago, that long after it (a steady trickle of calls
        pays one write per interval, not one per call). ``failed`` hears of a refused write.
        """
        if not self._pending:
            return
        loop = asyncio.get_running_loop()
        if self._timer is not None and self._timer_loop is loop:
            return  # due already (a timer of a loop that has ended is forgotten)
        due = self._written_at + WRITE_EVERY_S - time.monotonic()
        if due > 0:
            self._timer, self._timer_loop = loop.call_later(due, self.write_now, failed), loop
        else:
            self.write_now(failed)

    def write_now(self, failed: Callable[[StateError], None]) -> None:
        """:meth:`flush`, telling ``failed`` (not the caller) of a refused write."""
        try:
            self.flush()
        except StateError as exc:
            failed(exc)

    def flush(self) -> bool:
        """Write the buffered lines (whole lines, one write), then rotate if due; False if
        there was nothing to write. A write the OS refuses (a full disk) raises StateError;
        the lines not written stay buffered for the next flush."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._fd is None or not (self._pending or self._unwritten):
            return False
        self._written_at = time.monotonic()
        data = self._lines(self._pending)
        line_bytes = max(1, len(data) // max(1, len(self._pending)))
        data = self._unwritten + data
        self._pending.clear()
        try:
            while data:  # a regular file takes it all at once; loop only on a short write
                written = os.write(self._fd, data)
                self._size += written
                data = data[written:]
            if self._size >= self._max_bytes:
                self._rotate()
            self._plan(line_bytes)
        except OSError as exc:
            raise StateError(f"nonce history {self.path}: cannot write: {exc}") from None
        finally:
            self._unwritten = data
        return True

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


def _quote(text: str) -> str:
    """``text`` as a JSON string, ready to sit in a %-template."""
    return orjson.dumps(text).decode().replace("%", "%%")
