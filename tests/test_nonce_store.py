"""Nonce stores: floors survive restarts, reservation is per block, keys are held by one
process, units are guarded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from framework.clock import ManualClock
from framework.errors import NonceUnitError, StoreLocked
from framework.nonce.source import IncreasingNonces
from framework.nonce.store import MemoryStore, SqliteStore
from framework.paths import default_store_path
from framework.secret import key_id


async def test_sqlite_floor_survives_a_clean_restart(tmp_path: Path) -> None:
    path = tmp_path / "n.sqlite"
    store = SqliteStore(path)
    source = IncreasingNonces(store, "k", unit="counter")
    issued = [await source.next() for _ in range(10)]
    await source.close()
    store.close()

    store = SqliteStore(path)
    source = IncreasingNonces(store, "k", unit="counter")
    assert await source.next() == issued[-1] + 1  # clean close writes the exact last nonce
    store.close()


async def test_sqlite_without_close_restarts_above_every_issued_nonce(tmp_path: Path) -> None:
    path = tmp_path / "n.sqlite"
    store = SqliteStore(path)
    source = IncreasingNonces(store, "k", unit="counter", block=100)
    issued = [await source.next() for _ in range(250)]
    # no close(): as after kill -9. The OS releases the file lock when the process dies;
    # here we drop it by hand.
    store._unlock("k")
    again = SqliteStore(path)
    first = await IncreasingNonces(again, "k", unit="counter").next()
    assert first > max(issued)
    assert first <= max(issued) + 100 + 1  # at most one block skipped
    again.close()
    store.close()


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.commits = 0

    def reserve(self, key_id: str, ceiling: int) -> None:
        self.commits += 1
        super().reserve(key_id, ceiling)


async def test_reservation_is_paid_once_per_block() -> None:
    store = CountingStore()
    source = IncreasingNonces(store, "k", unit="counter", block=1000)
    for _ in range(5000):
        await source.next()
    assert store.commits == 5


async def test_ms_nonces_commit_once_per_second_by_default() -> None:
    """One second ahead of the clock (was ten: issue 13 bounds the floor's drift over
    crash-restarts to under two seconds)."""
    store = CountingStore()
    clock = ManualClock()
    source = IncreasingNonces(store, "k", unit="ms", clock=clock)
    for _ in range(100):
        await source.next()
        clock.advance(0.1)  # 100 calls over 10 s
    assert store.commits == 10


def test_second_holder_in_same_process_is_refused(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "n.sqlite")
    store.acquire("k", "ms")
    with pytest.raises(StoreLocked, match="already held"):
        store.acquire("k", "ms")
    store.close()


def test_second_process_gets_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "n.sqlite"
    store = SqliteStore(path)
    store.acquire("abc", "ms")
    script = (
        "import sys\n"
        "from framework.nonce.store import SqliteStore\n"
        "from framework.errors import StoreLocked\n"
        f"s = SqliteStore({str(path)!r})\n"
        "try:\n"
        "    s.acquire('abc', 'ms')\n"
        "except StoreLocked as e:\n"
        "    print(e); sys.exit(3)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 3
    assert "another process" in done.stdout and "Redis" in done.stdout
    store.release("abc", 0)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    store.close()


@pytest.mark.parametrize("make_store", [MemoryStore, "sqlite"])
def test_switching_to_a_larger_unit_is_refused_unless_forced(
    make_store: object, tmp_path: Path
) -> None:
    store = SqliteStore(tmp_path / "n.sqlite") if make_store == "sqlite" else MemoryStore()
    store.acquire("k", "ms")
    store.release("k", 5)
    with pytest.raises(NonceUnitError, match="refuse 'ms' nonces from this key for good"):
        store.acquire("k", "ns")
    assert store.acquire("k", "ns", force_unit=True) == 5
    store.release("k", 6)
    assert [s.unit for s in store.floors()] == ["ns"]
    assert store.acquire("k", "ms") == 6  # smaller unit: continues above the floor, unit kept
    assert [s.unit for s in store.floors()] == ["ns"]


def test_floor_values_above_signed_64_bits(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "n.sqlite")
    store.acquire("k", "ns")
    store.reserve("k", 2**64 - 10)
    store.release("k", 2**64 - 10)
    assert store.acquire("k", "ns") == 2**64 - 10
    store.close()


def test_default_location_is_the_state_dir(state_dir: Path) -> None:
    assert default_store_path() == state_dir / "nonces.sqlite"


def test_key_id_is_a_short_hash() -> None:
    kid = key_id("my-api-key")
    assert len(kid) == 12 and "my-api-key" not in kid
    assert kid == key_id("my-api-key") != key_id("other-key")
