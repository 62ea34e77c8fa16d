"""The ``orderly`` command.

    orderly run CONFIG                          run a strategy until SIGINT/SIGTERM/SIGHUP
    orderly sandbox [--port P] [--nonce-window N] [--delay-ms LO HI] [--ws-drop-every LO HI]
                    [--config FILE]
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
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from framework.errors import OrderlyError

if TYPE_CHECKING:  # the rest is imported where used, so `orderly --help` answers at once
    from framework.config import Config


def _port(text: str) -> int:
    """A TCP port, 0 to 65535 (a larger number would wrap to another port)."""
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port: 0 to 65535")
    return int(text)


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
    sandbox.add_argument("--port", type=_port, help="port (0 = any free port)")
    sandbox.add_argument("--nonce-window", type=int, help="tolerated nonce regression")
    sandbox.add_argument(
        "--delay-ms",
        type=float,
        nargs=2,
        metavar=("LO", "HI"),
        help="random delay before the nonce check",
    )
    sandbox.add_argument(
        "--ws-drop-every",
        type=float,
        nargs=2,
        metavar=("LO", "HI"),
        help="cut every WebSocket connection at random moments LO..HI s apart",
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

    journal = commands.add_parser(
        "orders", help="the order journal: open orders and newest fills, per key"
    )
    journal.add_argument("--config", type=Path, help="take [state].journal from this file")
    journal.add_argument("--journal", type=Path, help="journal file (default: state dir)")
    journal.add_argument("--fills", type=int, default=20, help="how many newest fills")

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


async def _serve_sandbox(args: argparse.Namespace) -> int:
    from framework.cli_nonces import config_at
    from framework.sandbox import generate_credentials
    from framework.sandbox.paper import sandbox_from

    config = config_at(args.config)
    overrides = {
        "port": args.port,
        "nonce_window": args.nonce_window,
        "delay_ms": tuple(args.delay_ms) if args.delay_ms else None,
        "ws_drop_every_s": tuple(args.ws_drop_every) if args.ws_drop_every else None,
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
            from framework.eventloop import run_event_loop

            return run_event_loop(_serve_sandbox(args))
        if args.command == "run":
            from framework.runner import run

            return run(load(args.config))
        if args.command == "sender":
            from framework.eventloop import run_event_loop

            return run_event_loop(_sender(load(args.config)))
        if args.command == "check":
            from framework.loading import check as check_config

            for note in check_config(load(args.config)):
                print(f"orderly: {note}", file=sys.stderr)
            print(f"{args.config}: ok")
            return 0
        if args.command == "orders":
            from framework.cli_orders import orders

            return orders(args)
        from framework.cli_nonces import HANDLERS

        return HANDLERS[args.action](args)
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
