"""Typed, frozen configuration read from ``config/*.toml``. Unknown keys are errors.

Only what the nonce core needs so far: where state lives, how nonces are made for a Kraken
key, and how the sandbox behaves. Secrets never come from TOML (later: environment, ``.env``
or a secrets file). :func:`load` turns every problem into one :class:`ConfigError` whose
message lists each bad key by its path, e.g. ``state.history_max_mb: Input should be ...``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from framework.errors import ConfigError
from framework.paths import default_history_path, default_store_path

#: A path in a config file; ``~`` is expanded.
UserPath = Annotated[Path, AfterValidator(lambda p: p.expanduser())]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StateConfig(_Section):
    """Where Orderly keeps its state."""

    store: UserPath = Field(
        default_factory=default_store_path,
        description="SQLite nonce store; default $XDG_STATE_HOME/orderly/nonces.sqlite",
    )
    history: UserPath = Field(
        default_factory=default_history_path,
        description="JSON-lines nonce history; rotated as history.1, history.2, ...",
    )
    history_max_mb: float = Field(50.0, gt=0, description="rotate the history past this size")
    history_backups: int = Field(5, ge=0, description="rotated history files kept")


class NonceConfig(_Section):
    """How nonces are made and guarded for an integer-nonce key."""

    unit: Literal["ms", "us", "ns", "counter"] = Field(
        "ms", description="timestamp unit (Kraken suggests ms) or a plain counter"
    )
    force_unit: bool = Field(
        False, description="allow moving a used key to a larger unit (irreversible)"
    )
    reserve_block: int | None = Field(
        None, ge=1, description="nonces reserved per store commit; default 10 s of the unit"
    )
    max_in_flight: int = Field(
        1, ge=1, description="1 = strict lane; N > 1 only with an exchange-side nonce window"
    )
    retries: int = Field(2, ge=0, description="fresh-nonce retries after a nonce refusal")
    breaker_threshold: int = Field(3, ge=1, description="refusals in a row that pause the lane")
    breaker_cooldown_s: float = Field(60.0, gt=0, description="how long the lane stays paused")


class SandboxConfig(_Section):
    """The embedded sandbox exchange."""

    port: int = Field(0, ge=0, le=65535, description="0 picks a free loopback port")
    nonce_window: int = Field(0, ge=0, description="tolerated nonce regression, in nonce units")
    repeat_in_window: bool = Field(
        False, description="accept an exact repeat inside the window (Kraken: undocumented)"
    )
    duplicate_cl_ord_id_error: str = Field(
        "EOrder:Duplicate cl_ord_id", description="error for a duplicate open cl_ord_id"
    )
    unknown_order_error: str = Field(
        "EOrder:Unknown order", description="error for cancelling an unknown or closed order"
    )
    lockout_threshold: int = Field(10, ge=1, description="auth failures in a row before lockout")
    lockout_s: float = Field(900.0, ge=0, description="lockout length (Kraken: about 15 min)")
    delay_ms: tuple[float, float] = Field(
        (0.0, 0.0), description="random delay before the nonce check, [low, high] ms"
    )
    seed: int | None = Field(None, description="seed for the random delay")


class Config(_Section):
    """A whole config file."""

    state: StateConfig = Field(default_factory=StateConfig)
    nonce: NonceConfig = Field(default_factory=NonceConfig)
    sandbox: SandboxConfig = Field(default_factory=SandboxConfig)


def _describe(error: ValidationError) -> list[str]:
    return [
        f"{'.'.join(str(part) for part in item['loc']) or '(top)'}: {item['msg']}"
        for item in error.errors()
    ]


def load(path: str | Path) -> Config:
    """Read and validate one TOML file; every problem becomes one ConfigError."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems = _describe(exc)
        raise ConfigError(f"{path}: " + "; ".join(problems)) from None
