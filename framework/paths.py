"""Where Orderly keeps its state on disk: the nonce store, the nonce history and the order
journal.

The directory is ``$ORDERLY_STATE_DIR`` if set, else ``$XDG_STATE_HOME/orderly``, else
``~/.local/state/orderly`` (the XDG state directory).
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
