"""Where Orderly keeps its state on disk: the nonce store, the nonce history and the order
journal.

The directory is ``$ORDERLY_STATE_DIR`` if set, else ``$XDG_STATE_HOME/orderly``, else
``~/.local/state/orderly`` (the XDG state directory).

State and logs are private: directories Orderly creates are 0700, files 0600 (the nonce
store, its SQLite side files, the history, the journal, the log), whatever the umask.
"""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    if explicit := os.environ.get("ORDERLY_STATE_DIR"):
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base).expanduser() / "orderly"


def default_store_path() -> Path:
    """The SQLite nonce store used when none is given."""
    return state_dir() / "nonces.sqlite"


def default_journal_path() -> Path:
    """The SQLite order journal used when none is given."""
    return state_dir() / "orders.sqlite"


def default_history_path() -> Path:
    """The JSON-lines nonce history used when none is given."""
    return state_dir() / "history" / "nonces.jsonl"


def private_dir(path: Path) -> None:
    """Create ``path`` and any missing parents with mode 0700 (existing ones are left
    alone: they are the user's)."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        directory.mkdir(mode=0o700, exist_ok=True)
        os.chmod(directory, 0o700)  # mkdir's mode goes through the umask


def private_file(path: Path) -> None:
    """Create ``path`` (and its directory) readable by its owner only, if it is missing.
    SQLite gives its -wal and -shm files the mode of the database file."""
    private_dir(path.parent)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


def shift_backups(path: Path, backups: int) -> None:
    """Make way for a fresh ``path``: ``path.1`` becomes ``path.2`` and so on (the oldest past
    ``backups`` dropped), ``path`` becomes ``path.1``; with no backups, ``path`` goes."""
    for index in range(backups - 1, 0, -1):
        older = path.with_name(f"{path.name}.{index}")
        if older.exists():
            older.replace(path.with_name(f"{path.name}.{index + 1}"))
    if backups > 0:
        path.replace(path.with_name(f"{path.name}.1"))
    else:
        path.unlink()
