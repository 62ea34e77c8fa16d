"""Reading nonce history files (``orderly nonces ...``, a restart looking for its last
nonce): the file and its rotated backups, records in write order, the last nonce of a key,
and the check that each key's nonces never repeat or go down. The writing side is
framework/nonce/history.py."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Record = dict[str, Any]


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
