"""Nonce stores: where each key's floor lives, so that no restart ever goes backwards.

The floor of a key is the highest nonce that may already have been handed out. A source
*reserves* a ceiling before it issues any nonce up to that ceiling, so after a crash (even
``kill -9``) the store's value is at least every nonce that was issued, and the next
process starts strictly above it. Reserving ahead in blocks means a commit is paid once
per block, not per call. On a clean close the exact last nonce is written back.

Values are kept as decimal text: Kraken nonces are unsigned 64-bit and do not fit SQLite's
signed INTEGER.

Each key is held by one process at a time: :meth:`NonceStore.acquire` takes an OS file lock
(released by the kernel if the process dies) and raises :class:`StoreLocked` otherwise.

A store that cannot be read or written (a full disk, a read-only directory, a corrupted
file) raises :class:`StateError` naming the file: a nonce that could not be reserved is
never issued.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from framework.errors import NonceUnitError, StateError, StoreLocked
from framework.log import get_logger
from framework.paths import private_file

log = get_logger("framework.nonce.store")

#: Nonce units from the smallest scale to the largest. Once a key has seen nonces of one
#: scale, a smaller scale can only continue above that floor (as a counter); moving to a
#: larger scale is irreversible at the exchange.
UNITS = ("counter", "ms", "us", "ns")


@dataclass(frozen=True, slots=True)
class KeyState:
    """What a store knows of one key."""

    key_id: str
    unit: str
    floor: int
    updated_at: str


class NonceStore(Protocol):
    def acquire(self, key_id: str, unit: str, *, force_unit: bool = False) -> int:
        """Hold ``key_id`` for this process and return its floor (0 for a new key)."""
        ...

    def reserve(self, key_id: str, ceiling: int) -> None:
        """Durably record that nonces up to ``ceiling`` may be issued. Never lowers the floor."""
        ...

    def release(self, key_id: str, last_issued: int) -> None:
        """Write the exact last issued nonce as the floor and let the key go."""
        ...

    def floors(self) -> list[KeyState]:
        """Every key the store knows."""
        ...

    def breaker(self, key_id: str) -> tuple[int, float]:
        """The key's lane breaker as last saved: (auth refusals in a row, wall-clock second
        its pause ends; 0 when not paused). (0, 0.0) for a key never refused."""
        ...

    def save_breaker(self, key_id: str, refusals: int, paused_until: float) -> None:
        """Keep the breaker across restarts, so a bot restarted in a loop cannot walk a key
        into the exchange's lockout one refusal at a time."""
        ...


def check_unit(key_id: str, stored: str, wanted: str, *, force: bool) -> str:
    """The unit to record for a key after asking for ``wanted``; raises if that is unsafe."""
    for unit in (stored, wanted):
        if unit not in UNITS:
            raise NonceUnitError(f"unknown nonce unit {unit!r}; use one of {', '.join(UNITS)}")
    if UNITS.index(wanted) > UNITS.index(stored):
        if not force:
            raise NonceUnitError(
                f"this key has used {stored!r} nonces; switching to {wanted!r} makes every "
                f"nonce larger, and the exchange will then refuse {stored!r} nonces from this "
                "key for good. Pass force_unit=True (nonce.force_unit in config) if you mean it",
                key_id=key_id,
            )
        return wanted
    if wanted != stored:
        log.warning("nonce_unit_below_floor", key_id=key_id, stored=stored, wanted=wanted)
    return stored


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class MemoryStore:
    """A store that forgets everything when the process ends. For tests and throwaway keys."""

    def __init__(self) -> None:
        self._state: dict[str, KeyState] = {}
        self._held: set[str] = set()
        self._breakers: dict[str, tuple[int, float]] = {}

    def acquire(self, key_id: str, unit: str, *, force_unit: bool = False) -> int:
        if key_id in self._held:
            raise StoreLocked("this key is already held by a lane in this process", key_id=key_id)
        state = self._state.get(key_id)
        floor = state.floor if state else 0
        recorded = check_unit(key_id, state.unit, unit, force=force_unit) if state else unit
        self._state[key_id] = KeyState(key_id, recorded, floor, _now())
        self._held.add(key_id)
        return floor

    def reserve(self, key_id: str, ceiling: int) -> None:
        state = self._state[key_id]
        if ceiling > state.floor:
            self._state[key_id] = KeyState(key_id, state.unit, ceiling, _now())

    def release(self, key_id: str, last_issued: int) -> None:
        state = self._state[key_id]
        self._state[key_id] = KeyState(key_id, state.unit, last_issued, _now())
        self._held.discard(key_id)

    def floors(self) -> list[KeyState]:
        return sorted(self._state.values(), key=lambda s: s.key_id)

    def breaker(self, key_id: str) -> tuple[int, float]:
        return self._breakers.get(key_id, (0, 0.0))

    def save_breaker(self, key_id: str, refusals: int, paused_until: float) -> None:
        self._breakers[key_id] = (refusals, paused_until)

    def __repr__(self) -> str:
        return f"MemoryStore(keys={len(self._state)})"


_SCHEMA = """
CREATE TABLE IF NOT EXISTS nonce_floor (
    key_id     TEXT PRIMARY KEY,
    unit       TEXT NOT NULL,
    floor      TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS breaker (
    key_id       TEXT PRIMARY KEY,
    refusals     INTEGER NOT NULL,
    paused_until REAL NOT NULL
);
"""


class SqliteStore:
    """The embedded default: one SQLite file (WAL mode, synchronous=FULL) for all keys.

    Commits happen only in :meth:`reserve` (once per block) and :meth:`release`; the nonce
    sources call :meth:`reserve` from a worker thread so the event loop never waits on fsync.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._mutex = threading.Lock()
        self._locks: dict[str, int] = {}
        with self._failing("open"):
            private_file(self.path)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(_SCHEMA)

    @contextlib.contextmanager
    def _failing(self, doing: str, key_id: str | None = None) -> Iterator[None]:
        """Turn what SQLite or the OS raises into a StateError naming the file."""
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            raise StateError(
                f"nonce store {self.path}: cannot {doing}: {exc}", key_id=key_id
            ) from None

    def _lock_path(self, key_id: str) -> Path:
        return self.path.with_name(f"{self.path.name}.{key_id}.lock")

    def _lock(self, key_id: str) -> None:
        if key_id in self._locks:
            raise StoreLocked("this key is already held by a lane in this process", key_id=key_id)
        fd = os.open(self._lock_path(key_id), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StoreLocked(
                f"another process (pid {holder}) is using this key in nonce store {self.path}; "
                "one key per process, or share it through Redis ([state] backend = 'redis';"
                " README 'Several bots, one key')",
                key_id=key_id,
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._locks[key_id] = fd

    def _unlock(self, key_id: str) -> None:
        fd = self._locks.pop(key_id, None)
        if fd is not None:
            os.close(fd)

    def _row(self, key_id: str) -> KeyState | None:
        row = self._db.execute(
            "SELECT key_id, unit, floor, updated_at FROM nonce_floor WHERE key_id = ?", (key_id,)
        ).fetchone()
        return KeyState(row[0], row[1], int(row[2]), row[3]) if row else None

    def _write(self, key_id: str, unit: str, floor: int) -> None:
        self._db.execute(
            "INSERT INTO nonce_floor (key_id, unit, floor, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(key_id) DO UPDATE SET unit = excluded.unit, floor = excluded.floor, "
            "updated_at = excluded.updated_at",
            (key_id, unit, str(floor), _now()),
        )

    def acquire(self, key_id: str, unit: str, *, force_unit: bool = False) -> int:
        with self._mutex, self._failing("read the key's floor", key_id):
            self._lock(key_id)
            try:
                state = self._row(key_id)
                floor = state.floor if state else 0
                recorded = check_unit(key_id, state.unit, unit, force=force_unit) if state else unit
                self._write(key_id, recorded, floor)
            except BaseException:
                self._unlock(key_id)
                raise
            return floor

    def reserve(self, key_id: str, ceiling: int) -> None:
        with self._mutex, self._failing("reserve nonces", key_id):
            state = self._row(key_id)
            if state is None or ceiling > state.floor:
                self._write(key_id, state.unit if state else "counter", ceiling)

    def release(self, key_id: str, last_issued: int) -> None:
        with self._mutex:
            try:
                with self._failing("write the last nonce", key_id):
                    state = self._row(key_id)
                    if state is not None:
                        self._write(key_id, state.unit, last_issued)
            finally:  # the reserved ceiling on file already covers every nonce issued
                self._unlock(key_id)

    def resume(self, key_id: str, unit: str, floor: int) -> None:
        """Raise ``key_id``'s floor to ``floor`` (never lower it), holding the key while it
        writes: ``orderly nonces resume`` after the store lost writes."""
        with self._mutex, self._failing("resume the key's floor", key_id):
            self._lock(key_id)
            try:
                state = self._row(key_id)
                if state is None or floor > state.floor:
                    self._write(key_id, state.unit if state else unit, floor)
            finally:
                self._unlock(key_id)

    def breaker(self, key_id: str) -> tuple[int, float]:
        with self._mutex, self._failing("read the key's breaker", key_id):
            row = self._db.execute(
                "SELECT refusals, paused_until FROM breaker WHERE key_id = ?", (key_id,)
            ).fetchone()
        return (int(row[0]), float(row[1])) if row else (0, 0.0)

    def save_breaker(self, key_id: str, refusals: int, paused_until: float) -> None:
        with self._mutex, self._failing("save the key's breaker", key_id):
            self._db.execute(
                "INSERT INTO breaker (key_id, refusals, paused_until) VALUES (?, ?, ?) "
                "ON CONFLICT(key_id) DO UPDATE SET refusals = excluded.refusals, "
                "paused_until = excluded.paused_until",
                (key_id, refusals, paused_until),
            )

    def floors(self) -> list[KeyState]:
        with self._mutex, self._failing("read the floors"):
            rows = self._db.execute(
                "SELECT key_id, unit, floor, updated_at FROM nonce_floor ORDER BY key_id"
            ).fetchall()
        return [KeyState(r[0], r[1], int(r[2]), r[3]) for r in rows]

    def close(self) -> None:
        with self._mutex:
            for key_id in list(self._locks):
                self._unlock(key_id)
            with contextlib.suppress(sqlite3.Error):
                self._db.close()

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"
