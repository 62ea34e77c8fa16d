"""``orderly nonces ...``: read the nonce history, check it, show and repair store floors,
and the state of keys shared through Redis. Imported by :mod:`framework.cli` when one of
these commands runs."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from framework.errors import OrderlyError

if TYPE_CHECKING:
    from framework.config import Config


def config_at(path: Path | None) -> Config:
    """The config at ``path``; the defaults without one."""
    from framework.config import Config, load

    return load(path) if path else Config()


def _format(record: dict[str, Any]) -> str:
    if record.get("event") == "lane_paused":
        return (
            f"{record.get('ts')}  {record.get('key_id')}  lane paused after "
            f"{record.get('refusals')} refusals ({record.get('code')}) for "
            f"{record.get('cooldown_s')} s"
        )
    if record.get("event") == "nonce_assigned":
        detail = f"queued {record.get('queued_ms')}ms"
    else:
        detail = f"{record.get('outcome')} rtt {record.get('rtt_ms')}ms"
        if "code" in record:
            detail += f" {record['code']}"
    return (
        f"{record.get('ts')}  {record.get('key_id')}  #{record.get('seq')}  "
        f"{record.get('event', '?').removeprefix('nonce_'):<8}  {record.get('nonce')}  "
        f"{record.get('endpoint')}  {detail}"
    )


def _history_path(args: argparse.Namespace) -> Path:
    path: Path = args.file or config_at(args.config).state.history
    from framework.nonce.reading import history_files

    if not history_files(path):
        raise OrderlyError(f"no nonce history at {path}")
    return path


def _records(path: Path) -> list[dict[str, Any]]:
    from framework.nonce.reading import BadLine, read_records

    return [r for r in read_records(path) if not isinstance(r, BadLine)]


def _tail(args: argparse.Namespace) -> int:
    path = _history_path(args)
    for record in _records(path)[-args.n :] if args.n > 0 else []:
        print(_format(record), flush=True)
    if not args.follow:
        return 0
    with open(path, encoding="utf-8") as handle:
        handle.seek(0, os.SEEK_END)
        while True:
            line = handle.readline()
            if not line:
                time.sleep(0.2)
                continue
            try:
                print(_format(json.loads(line)), flush=True)
            except ValueError:
                continue


def _show(args: argparse.Namespace) -> int:
    records = [r for r in _records(_history_path(args)) if r.get("key_id") == args.key]
    if not records:
        raise OrderlyError(f"no records for key {args.key}")
    for record in records[-args.last :]:
        print(_format(record))
    return 0


def _check(args: argparse.Namespace) -> int:
    """One history, or (``--also PATH``, repeated) the histories of every process of a
    shared key, merged in time order: each key's nonces must strictly increase across all."""
    import heapq

    from framework.nonce.reading import BadLine, check, read_records

    path = _history_path(args)
    others = [Path(p) for p in args.also or []]

    def stamp(record: dict[str, Any] | BadLine) -> str:
        return str(record.get("ts", "")) if isinstance(record, dict) else ""

    records = heapq.merge(*(read_records(p) for p in [path, *others]), key=stamp)
    pauses: list[dict[str, Any]] = []
    count, problems = check(records, pauses)
    for problem in problems:
        print(problem)
    for pause in pauses:
        print(
            f"note: key {pause.get('key_id')}: lane paused at {pause.get('ts')} after "
            f"{pause.get('refusals')} refusals ({pause.get('code')}), "
            f"{pause.get('cooldown_s')} s"
        )
    print(
        f"checked {count} nonces in {path}: "
        + ("ok" if not problems else f"{len(problems)} problems")
    )
    return 1 if problems else 0


def _floors(args: argparse.Namespace) -> int:
    path: Path = args.store or config_at(args.config).state.store
    if not path.exists():
        raise OrderlyError(f"no nonce store at {path}")
    from framework.nonce.store import SqliteStore

    store = SqliteStore(path)
    try:
        for state in store.floors():
            print(
                f"{state.key_id}  unit={state.unit}  floor={state.floor}  "
                f"updated={state.updated_at}"
            )
    finally:
        store.close()
    return 0


def _resume(args: argparse.Namespace) -> int:
    """Every key of the history whose store floor is below its last sent nonce gets the
    floor max(last sent + margin, now in its unit) + one block: above every nonce the
    history shows, and above the records a ``kill -9`` may have cost it (at most the 512
    records held before a write: 256 nonces)."""
    from framework.nonce.reading import read_records
    from framework.nonce.source import DEFAULT_BLOCK, NS_PER_UNIT
    from framework.nonce.store import SqliteStore

    config = config_at(args.config)
    path: Path = args.store or config.state.store
    last: dict[str, int] = {}
    for record in read_records(config.state.history):
        if not isinstance(record, dict) or record.get("event") != "nonce_assigned":
            continue
        nonce = record.get("nonce")
        if isinstance(nonce, int):
            key = str(record.get("key_id"))
            last[key] = max(last.get(key, 0), nonce)
    store = SqliteStore(path)
    try:
        floors = {state.key_id: state for state in store.floors()}
        unit = config.nonce.unit
        block = config.nonce.reserve_block or DEFAULT_BLOCK[unit]
        now = time.time_ns() // NS_PER_UNIT[unit] if unit in NS_PER_UNIT else 0
        for key, sent in sorted(last.items()):
            known = floors.get(key)
            if known is not None and known.floor >= sent:
                print(f"{key}  floor {known.floor} is above the history ({sent}): unchanged")
                continue
            floor = max(sent + max(1_000, block), now) + block
            store.resume(key, known.unit if known else unit, floor)
            print(f"{key}  floor {known.floor if known else 'none'} -> {floor} (history: {sent})")
    finally:
        store.close()
    return 0


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _status(args: argparse.Namespace) -> int:
    """Each key shared through the config's Redis: its sender (process, epoch, lease time
    left), floor, calls queued and calls read but not answered."""
    import redis

    from framework.errors import ConfigError

    config = config_at(args.config)
    if not config.state.redis_url:
        raise ConfigError("orderly nonces status needs [state] redis_url")
    client = redis.Redis.from_url(config.state.redis_url, decode_responses=True)
    try:
        leases = sorted(client.scan_iter("orderly:*:lease"))
        if not leases:
            print("no shared key has a sender now")
        for lease in leases:
            base = lease.removesuffix("lease")
            holder, left = _text(client.get(lease)), client.pttl(lease)
            pending = 0
            if client.exists(base + "calls"):
                groups = client.xinfo_groups(base + "calls")
                pending = sum(int(g.get("pending", 0)) for g in groups)
            print(
                f"{base.removeprefix('orderly:').rstrip(':')}  sender {holder}"
                f" (lease {left} ms)  epoch {_text(client.get(base + 'epoch'))}"
                f"  floor {_text(client.get(base + 'floor'))}"
                f"  queued {client.xlen(base + 'calls')}  pending {pending}"
            )
    except redis.RedisError as exc:
        raise ConfigError(f"cannot read Redis at [state] redis_url: {exc}") from None
    finally:
        client.close()
    return 0


#: ``orderly nonces ACTION`` -> its handler.
HANDLERS = {
    "tail": _tail,
    "show": _show,
    "check": _check,
    "floors": _floors,
    "resume": _resume,
    "status": _status,
}
