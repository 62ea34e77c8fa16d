"""Loading a strategy from ``[strategy] class`` and checking a config as ``orderly run``
would, before connecting. Every problem is a :class:`ConfigError` naming the key."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from framework.config import Config
from framework.errors import ConfigError
from framework.guard import HOOKS
from framework.registry import check_exchange
from framework.strategy import Strategy


def _find_file(name: str, config: Config) -> Path:
    bases = [Path.cwd()]
    if config.source is not None:
        bases += [config.source.parent, config.source.parent.parent]
    for base in bases:
        if (base / name).is_file():
            return base / name
    raise ConfigError(
        f"strategy.class: no file {name} (looked in {', '.join(str(b) for b in bases)})"
    )


def _load_module(name: str, config: Config) -> Any:
    if not name.endswith(".py"):
        return importlib.import_module(name)
    path = _find_file(name, config)
    spec = importlib.util.spec_from_file_location(f"orderly_strategy_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"strategy.class: cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic resolves the module's annotations through it
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[spec.name]
        raise
    return module


def _import(target: str, config: Config) -> Any:
    """The class named by ``file.py:Class`` or ``package.module:Class``."""
    module_name, _, class_name = target.partition(":")
    if not class_name:
        raise ConfigError(f"strategy.class: {target!r} is not 'file.py:Class' or 'module:Class'")
    try:
        module = _load_module(module_name, config)
    except ConfigError:
        raise
    except Exception as exc:  # the user's module failed to import: say where and why
        where = f" (line {exc.lineno})" if isinstance(exc, SyntaxError) else ""
        raise ConfigError(
            f"strategy.class: cannot import {module_name}: {type(exc).__name__}: {exc}{where}"
        ) from None
    cls = getattr(module, class_name, None)
    if cls is None:
        raise ConfigError(f"strategy.class: {module_name} has no {class_name}")
    return cls


def load_strategy(config: Config) -> tuple[type[Strategy], BaseModel]:
    """The strategy class and its validated params; every problem is a ConfigError."""
    if config.strategy is None:
        raise ConfigError("strategy: missing [strategy] section (class = 'file.py:Class')")
    cls = _import(config.strategy.class_, config)
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise ConfigError(
            f"strategy.class: {config.strategy.class_} is not a framework.Strategy subclass"
        )
    for hook in HOOKS.values():  # a plain def would be called, then its None awaited
        if not inspect.iscoroutinefunction(getattr(cls, hook)):
            name = f"{cls.__name__}.{hook}"
            raise ConfigError(f"strategy.class: {name} must be 'async def' (hooks are awaited)")
    model = cls.Params
    if model.model_config.get("extra") is None:  # not said: a typo'd key is an error
        names = {*model.model_fields} | {f.alias for f in model.model_fields.values() if f.alias}
        unknown = sorted(set(config.strategy.params) - names)
        if unknown:
            raise ConfigError(
                "; ".join(
                    f"strategy.params.{key}: not a parameter of {cls.__name__}"
                    f" (it takes: {', '.join(sorted(model.model_fields)) or 'none'})"
                    for key in unknown
                )
            )
    try:
        params = cls.Params.model_validate(config.strategy.params)
    except ValidationError as exc:
        problems = [
            f"strategy.params.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
            for e in exc.errors()
        ]
        raise ConfigError("; ".join(problems)) from None
    except Exception as exc:  # the strategy's own Params model is broken
        raise ConfigError(
            f"strategy.class: {cls.__name__}.Params cannot be used: {type(exc).__name__}: {exc}"
        ) from None
    return cls, params


def build_strategy(cls: type[Strategy]) -> Strategy:
    """An instance of the strategy class; its ``__init__`` failing is a ConfigError."""
    try:
        return cls()
    except Exception as exc:
        raise ConfigError(
            f"strategy.class: {cls.__name__}() raised {type(exc).__name__}: {exc}"
        ) from None


def check(config: Config) -> list[str]:
    """Everything ``orderly run`` would verify before trading: the strategy builds, its
    params, the exchange's keys, each secret is there and well formed, each pair is one the
    exchange lists. Returns notes on what could not be checked (the exchange unreachable)."""
    cls, _ = load_strategy(config)
    build_strategy(cls)
    spec = check_exchange(config)
    for name in spec.secrets:
        secret = config.secret(name)
        check_format = spec.secret_checks.get(name)
        problem = check_format(secret.reveal()) if check_format else None
        if problem:
            raise ConfigError(f"secret {name}: {problem}")
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # none: the command line's case
        note = asyncio.run(check_pairs(config))
    else:  # called from async code, which this blocking check must not stall
        return ["pairs not checked: check() was called inside a running event loop"]
    return [note] if note else []


async def check_pairs(config: Config) -> str | None:
    """The strategy's pairs against the exchange's list (``orderly check``, and ``orderly
    run`` before it trades): a pair it does not list is a ConfigError; returns a note when
    the list could not be had (the exchange unreachable), else None."""
    spec = check_exchange(config)
    if spec.pairs is None or config.strategy is None:
        return None
    listed = await spec.pairs(config)
    if listed is None:
        return f"pairs not checked: {spec.name} could not be reached for its pair list"
    unknown = [p for p in config.strategy.pairs if p not in listed]
    if unknown:
        there = {p: names for p in unknown if (names := _named_there(p, listed))}
        hint = "; ".join(f"{p!r} is {names}" for p, names in there.items())
        if len(unknown) == 1 and there:
            hint = f"its name there: {there[unknown[0]]}"
        raise ConfigError(
            f"strategy.pairs: {', '.join(map(repr, unknown))} not listed by {spec.name}"
            + (f" ({hint})" if hint else "")
        )
    return None


def _folded(pair: str) -> str:
    """A pair's name without case or separators, XBT read as BTC: ``BTC/USD``, ``btc-usd``
    and Kraken's ``XBTUSD`` are one."""
    return "".join(c for c in pair.upper() if c.isalnum()).replace("XBT", "BTC")


def _named_there(pair: str, listed: set[str]) -> str:
    """The exchange's name(s) for ``pair`` written another way (ccxt's ``BTC/USD``)."""
    return " or ".join(repr(p) for p in sorted(listed) if _folded(p) == _folded(pair))
