"""The ``orderly`` command.

    orderly run CONFIG                          run a strategy until SIGINT/SIGTERM/SIGHUP
    orderly sandbox [--port P] [--nonce-window N] [--delay-ms LO HI] [--config FILE]
    orderly nonces tail  [-n N] [--follow] [--file PATH]
    orderly nonces show  --key ID [--last N] [--file PATH]
    orderly nonces check [--file PATH] [--also PATH ...]
                                                exit 1 on any regression or duplicate
    orderly nonces floors [--store PATH]        each key's floor and unit in the store
    orderly nonces resume --config CONFIG       put a store that lost writes back above
                                                every nonce its history shows sent
    orderly sender CONFIG                       send for the config's key, with no strategy
                                                ([state] backend = "redis")
    orderly nonces status --config CONFIG       each shared key: sender, epoch, floor, queue
    orderly check CONFIG                        validate a config file (strategy class and
                                                params, secrets for a real key), exit 2 if bad

Every user mistake ends in one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from framework.errors import OrderlyError

if TYPE_CHECKING:  # the rest is imported where used, so `orderly --help` answers at once
    from framework.config import Config


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orderly",
        description="Orderly: run trading strategies through one ordered nonce lane per key,"
        " run the sandbox exchange, read the nonce history.",
    )
    parser.add_argument("--version", action="version", version=f"orderly {_version()}")
    parser.add_argument("--log-level", default="info", help="debug, info, warning, error")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the strategy a config file names")
    run.add_argument("config", type=Path)

    sandbox = commands.add_parser("sandbox", help="run the sandbox exchange on 127.0.0.1")
    sandbox.add_argument("--config", type=Path, help="read [sandbox] from this TOML file")
    sandbox.add_argument("--port", type=int, help="port (0 = any free port)")
    sandbox.add_argument("--nonce-window", type=int, help="tolerated nonce regression")
    sandbox.add_argument(
        "--delay-ms",
        type=float,
        nargs=2,
        metavar=("LO", "HI"),
        help="random delay before the nonce check",
    )
    sandbox.add_argument("--lockout-threshold", type=int, help="auth failures before lockout")
    sandbox.add_argument("--lockout-s", type=float, help="lockout length in seconds")
    sandbox.add_argument("--seed", type=int, help="seed for the random delay")
    sandbox.add_argument(
        "--tier",
        choices=["starter", "intermediate", "pro", "test", "none"],
        help="rate limits to enforce (default pro; none = off)",
    )

    nonces = commands.add_parser("nonces", help="read the nonce history and store")
    actions = nonces.add_subparsers(dest="action", required=True)
    for name, text in (
        ("tail", "print the newest records"),
        ("show", "one key's records"),
        ("check", "verify strict increase per key"),
        ("floors", "each key's floor in the store"),
        ("resume", "raise each key's floor above what its history shows sent"),
        ("status", "each key shared through Redis: sender, epoch, floor, queue, pending"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("--config", type=Path, help="take [state] paths from this file")
        if name in ("floors", "resume"):
            action.add_argument("--store", type=Path, help="SQLite store (default: state dir)")
        else:
            action.add_argument("--file", type=Path, help="history file (default: state dir)")
    actions.choices["tail"].add_argument("-n", type=int, default=20, help="how many records")
    actions.choices["tail"].add_argument(
        "-f", "--follow", action="store_true", help="keep printing new records"
    )
    actions.choices["check"].add_argument(
        "--also",
        action="append",
        metavar="PATH",
        help="another process's history of the same key(s), merged in time order",
    )
    actions.choices["show"].add_argument("--key", required=True, help="key id (12 hex chars)")
    actions.choices["show"].add_argument("--last", type=int, default=50, help="how many")

    sender = commands.add_parser(
        "sender", help="be the sender of the config's key (Redis backend), with no strategy"
    )
    sender.add_argument("config", type=Path)

    config = commands.add_parser("check", help="validate a config file")
    config.add_argument("config", type=Path)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("orderly")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _config(path: Path | None) -> Config:
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
    path: Path = args.file or _config(args.config).state.history
    from framework.nonce.history import history_files

    if not history_files(path):
        raise OrderlyError(f"no nonce history at {path}")
    return path


def _records(path: Path) -> list[dict[str, Any]]:
    from framework.nonce.history import BadLine, read_records

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

    from framework.nonce.history import BadLine, check, read_records

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
    path: Path = args.store or _config(args.config).state.store
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
    history shows, and above the records a ``kill -9`` may have cost it (at most one
    64 KiB buffer, a few hundred records)."""
    from framework.nonce.history import read_records
    from framework.nonce.source import DEFAULT_BLOCK, NS_PER_UNIT
    from framework.nonce.store import SqliteStore

    config = _config(args.config)
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


async def _sender(config: Config) -> int:
    """Hold the key's sender role (when the lease is free) until SIGINT/SIGTERM."""
    import asyncio

    from framework.errors import ConfigError
    from framework.registry import open_venue

    if config.state.backend != "redis":
        raise ConfigError("orderly sender needs [state] backend = 'redis' (and redis_url)")
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    async with open_venue(config) as venue:
        print(f"orderly: sending for key {venue.key_id} when it holds the lease", flush=True)
        await stop.wait()
    return 0


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _status(args: argparse.Namespace) -> int:
    """Each key shared through the config's Redis: its sender (process, epoch, lease time
    left), floor, calls queued and calls read but not answered."""
    import redis

    from framework.errors import ConfigError

    config = _config(args.config)
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


async def _serve_sandbox(args: argparse.Namespace) -> int:
    from framework.sandbox import generate_credentials
    from framework.sandbox.paper import sandbox_from

    config = _config(args.config)
    overrides = {
        "port": args.port,
        "nonce_window": args.nonce_window,
        "delay_ms": tuple(args.delay_ms) if args.delay_ms else None,
        "lockout_threshold": args.lockout_threshold,
        "lockout_s": args.lockout_s,
        "seed": args.seed,
        "tier": args.tier,
    }
    sandbox_cfg = config.sandbox.model_copy(
        update={k: v for k, v in overrides.items() if v is not None}
    )
    sandbox = sandbox_from(config.model_copy(update={"sandbox": sandbox_cfg}))
    api_key = os.environ.get("ORDERLY_SANDBOX_API_KEY")
    secret = os.environ.get("ORDERLY_SANDBOX_API_SECRET")
    generated = not (api_key and secret)
    if not (api_key and secret):
        api_key, secret = generate_credentials()
    sandbox.gate.accounts[api_key] = secret
    import asyncio

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await sandbox.start()
    print(f"sandbox listening on {sandbox.base_url}", flush=True)
    if generated:  # throwaway credentials, valid only for this sandbox run
        print(f"export ORDERLY_SANDBOX_API_KEY={api_key}", flush=True)
        print(f"export ORDERLY_SANDBOX_API_SECRET={secret}", flush=True)
    print(f"Kraken WebSocket v2 (public and private) on {sandbox.ws_url}", flush=True)
    await stop.wait()
    await sandbox.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from framework import log as logging_setup
    from framework.config import load

    if args.command != "run":  # run configures its own JSON log file, once
        logging_setup.configure(args.log_level)
    try:
        if args.command == "sandbox":
            from framework.runner import run_event_loop

            return run_event_loop(_serve_sandbox(args))
        if args.command == "run":
            from framework.runner import run

            return run(load(args.config))
        if args.command == "sender":
            from framework.runner import run_event_loop

            return run_event_loop(_sender(load(args.config)))
        if args.command == "check":
            from framework.loading import check as check_config

            for note in check_config(load(args.config)):
                print(f"orderly: {note}", file=sys.stderr)
            print(f"{args.config}: ok")
            return 0
        handlers = {
            "tail": _tail,
            "show": _show,
            "check": _check,
            "floors": _floors,
            "resume": _resume,
            "status": _status,
        }
        return handlers[args.action](args)
    except OrderlyError as exc:
        print(f"orderly: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug, ours or in a strategy: one line here, details in the log
        if args.command != "run":  # run has logged it in its own log file
            logging_setup.get_logger("framework.cli").exception("unexpected_error")
        print(
            f"orderly: unexpected {type(exc).__name__}: {exc} (traceback in the log)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
