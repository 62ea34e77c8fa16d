"""Exchanges by the name used in ``[exchange] name``, each registered by its own package.

An exchange package calls :func:`register` with an :class:`ExchangeSpec`: its name, how to
open its venue, the secrets it reads, and the model of its own keys in ``[exchange]``
(anything beside ``name``, ``base_url``, ``timeout_s``, ``secrets_file`` and ``module``).
Adding an exchange edits no core file. The registry finds a package by convention, importing
only the one a config names:

    framework.exchanges.<name>.spec     the exchanges shipped with Orderly
    framework.<name>.spec               the embedded sandbox
    [exchange] module = "my.package"    an exchange package anywhere on the path

The core never imports an exchange package by name; this file imports the one asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Coroutine, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from pydantic import BaseModel, ConfigDict, ValidationError

from framework.errors import ConfigError

if TYPE_CHECKING:
    from framework.config import Config
    from framework.venue import Venue

VenueOpener = Callable[["Config"], AbstractAsyncContextManager["Venue", None]]
Settings = TypeVar("Settings", bound=BaseModel)

_FRAMEWORK = Path(__file__).parent
_CONVENTIONS = ("framework.exchanges.{name}.spec", "framework.{name}.spec")


class NoSettings(BaseModel):
    """An exchange with no keys of its own: any extra key in ``[exchange]`` is an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True, slots=True)
class ExchangeSpec:
    """What an exchange package tells the core about itself."""

    name: str
    #: ``open_venue(config)``: an async context manager yielding the exchange's Venue; or
    #: its dotted path ``"package.module:open_venue"``, imported when a bot opens it (so
    #: registering stays cheap).
    venue: VenueOpener | str
    #: The pydantic model of the exchange's own keys in ``[exchange]`` (extra keys refused).
    settings: type[BaseModel] = NoSettings
    #: Secrets it reads (environment, .env or ``[exchange].secrets_file``).
    secrets: tuple[str, ...] = ()
    #: Per secret name, a check of its format: the problem in words, or None when it is
    #: fine (``orderly check``; the value is never shown).
    secret_checks: Mapping[str, Callable[[str], str | None]] = field(default_factory=dict)
    #: The pairs the exchange lists (``orderly check``), or None when it cannot tell (not
    #: reachable): ``await pairs(config)``; no function: pairs are not checked.
    pairs: Callable[[Config], Coroutine[Any, Any, set[str] | None]] | None = None


_SPECS: dict[str, ExchangeSpec] = {}


def register(spec: ExchangeSpec) -> ExchangeSpec:
    """Make ``spec`` the exchange named ``spec.name``; called by the exchange's package."""
    _SPECS[spec.name] = spec
    return spec


def _known() -> list[str]:
    shipped = {p.name for p in (_FRAMEWORK / "exchanges").iterdir() if (p / "spec.py").is_file()}
    return sorted(shipped | set(_SPECS) | {"sandbox"})


def spec_for(config: Config) -> ExchangeSpec:
    """The registered exchange ``[exchange] name`` names, importing its package if needed."""
    name, module = config.exchange.name, config.exchange.module
    if name not in _SPECS:
        candidates = [module] if module else [c.format(name=name) for c in _CONVENTIONS]
        for candidate in candidates:
            try:
                importlib.import_module(candidate)
            except ModuleNotFoundError as exc:
                if module or not (exc.name and candidate.startswith(exc.name)):
                    key = "exchange.module" if module else "exchange.name"
                    raise ConfigError(f"{key}: cannot import {candidate}: {exc}") from None
                continue
            if name in _SPECS:
                break
    if name not in _SPECS:
        where = f" (module {module} registered none by that name)" if module else ""
        raise ConfigError(
            f"exchange.name: Input should be one of {', '.join(map(repr, _known()))}; "
            f"got {name!r}{where}"
        )
    return _SPECS[name]


def open_venue(config: Config) -> AbstractAsyncContextManager[Venue, None]:
    """The venue of the exchange ``config`` names, as an async context manager."""
    opener = spec_for(config).venue
    if isinstance(opener, str):
        module, _, attribute = opener.partition(":")
        opener = getattr(importlib.import_module(module), attribute)
    return cast(VenueOpener, opener)(config)


def settings_of(config: Config, model: type[Settings]) -> Settings:
    """The exchange's own ``[exchange]`` keys, validated by its ``model``; every problem
    is one ConfigError naming each key (``exchange.tier: Input should be ...``)."""
    try:
        return model.model_validate(config.exchange.model_extra or {})
    except ValidationError as exc:
        problems = [
            f"{'.'.join(['exchange', *(str(p) for p in e['loc'])])}: {e['msg']}"
            for e in exc.errors()
        ]
        raise ConfigError("; ".join(problems)) from None


def check_exchange(config: Config) -> ExchangeSpec:
    """The exchange's spec, with its ``[exchange]`` keys validated."""
    spec = spec_for(config)
    settings_of(config, spec.settings)
    return spec
