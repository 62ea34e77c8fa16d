"""Typed, frozen configuration read from ``config/*.toml``. Unknown keys are errors.

Sections: ``[exchange]`` (which venue), ``[strategy]`` (which class, its pairs and
``[strategy.params]``), ``[runner]`` (polling, hook policy, shutdown, logs), ``[state]``
(nonce store and history), ``[nonce]`` (how nonces are made and guarded), ``[sandbox]`` (the
embedded exchange and its simulated market). Each field is documented by its ``description``.

Secrets never come from TOML: :meth:`Config.secret` reads the environment, then a ``.env``
file in the working directory, then ``[exchange].secrets_file`` (``NAME=value`` lines).

:func:`load` turns every problem into one :class:`ConfigError` whose message lists each bad
key by its path, e.g. ``runner.order_poll_s: Input should be greater than 0``.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from dotenv import dotenv_values
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from framework.errors import ConfigError
from framework.paths import (
    default_history_path,
    default_journal_path,
    default_store_path,
    state_dir,
)
from framework.secret import Secret

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
    journal: UserPath = Field(
        default_factory=default_journal_path,
        description="SQLite order journal (every order and fill; restarts adopt open orders)",
    )
    bot_id: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="this bot's name in the order journal: a restart adopts the orders "
        "journaled under it, never another bot's on the key (default: the config file's "
        "name without .toml)",
    )
    history_max_mb: float = Field(50.0, gt=0, description="rotate the history past this size")
    history_backups: int = Field(5, ge=0, description="rotated history files kept")
    backend: Literal["sqlite", "redis"] = Field(
        "sqlite",
        description="sqlite: one process per key; redis: several processes share a key",
    )
    redis_url: str | None = Field(None, description="redis://host:port/db or unix:///path")
    lease_ttl_s: float = Field(
        2.0, gt=0.2, le=60, description="the sender's lease; a new sender takes over within it"
    )
    sender: bool = Field(True, description="redis: may this process be the key's sender")

    @model_validator(mode="after")
    def _redis_needs_a_url(self) -> StateConfig:
        if self.backend == "redis" and not self.redis_url:
            raise ValueError("backend = 'redis' needs redis_url")
        return self


class NonceConfig(_Section):
    """How nonces are made and guarded for an integer-nonce key."""

    unit: Literal["ms", "us", "ns", "counter"] = Field(
        "ms", description="timestamp unit (Kraken suggests ms) or a plain counter"
    )
    force_unit: bool = Field(
        False, description="allow moving a used key to a larger unit (irreversible)"
    )
    reserve_block: int | None = Field(
        None, ge=1, description="how far ahead the floor is reserved; default 1 s of the unit"
    )
    max_in_flight: int = Field(
        1, ge=1, description="1 = strict lane; N > 1 only with an exchange-side nonce window"
    )
    retries: int = Field(2, ge=0, description="fresh-nonce retries after a nonce refusal")
    breaker_threshold: int = Field(3, ge=1, description="refusals in a row that pause the lane")
    breaker_cooldown_s: float = Field(60.0, gt=0, description="how long the lane stays paused")


class ExchangeConfig(_Section):
    """Which exchange the bot trades on. Keys beside these belong to the exchange named
    and are checked by its own model (see the exchange's ``spec.py`` and the README)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = Field(
        "sandbox", description="sandbox = the embedded paper exchange, or a registered exchange"
    )
    module: str | None = Field(
        None, description="import this package to register the exchange (one not shipped)"
    )
    base_url: str | None = Field(None, description="REST base URL; default: the exchange's")
    timeout_s: float = Field(10.0, gt=0, description="HTTP timeout of one call")
    secrets_file: UserPath | None = Field(
        None, description="NAME=value file read after the environment and .env"
    )


class StrategyConfig(_Section):
    """The strategy to run."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    class_: str = Field(
        alias="class",
        description="'path/to/file.py:ClassName' or 'package.module:ClassName'",
    )
    pairs: tuple[str, ...] = Field(("XBTUSD",), min_length=1, description="pairs to watch")
    params: dict[str, Any] = Field(
        default_factory=dict, description="checked against the strategy's Params model"
    )


class RunnerConfig(_Section):
    """The long-running process."""

    tick_interval_s: float = Field(1.0, gt=0, description="how often tickers are polled")
    order_poll_s: float = Field(1.0, gt=0, description="how often fills and states are polled")
    streams: bool = Field(
        True,
        description="stream ticks, books and executions when the exchange can (Kraken, the"
        " sandbox); REST polling is the fallback",
    )
    stream_poll_s: float = Field(
        30.0,
        gt=0,
        description="with executions streaming, fills and states are still polled"
        " this often (a safety net)",
    )
    hook_timeout_s: float = Field(10.0, gt=0, description="longest a hook may run")
    loop_block_warn_s: float = Field(
        1.0, ge=0, description="say when the event loop is blocked this long (0 = never)"
    )
    on_hook_error: Literal["keep_running", "pause_strategy", "stop_bot"] = Field(
        "keep_running", description="what a hook that raises does to the bot"
    )
    cancel_on_stop: bool | Literal["own", "all"] = Field(
        True,
        description="cancel the bot's open orders when stopping, one by one (true or 'own');"
        " or every order of the key with one CancelAll ('all': faster for a large ladder,"
        " but also orders placed by hand or by another bot on the key)",
    )
    drain_timeout_s: float = Field(10.0, gt=0, description="longest wait for calls in flight")
    summary_interval_s: float = Field(2.0, gt=0, description="live summary period (terminal)")
    metrics_port: int | None = Field(
        None, ge=0, le=65535, description="serve Prometheus /metrics here (0: any free port)"
    )
    metrics_host: str = Field("127.0.0.1", description="address /metrics listens on")
    log_file: UserPath = Field(
        default_factory=lambda: state_dir() / "logs" / "orderly.jsonl",
        description="JSON log lines go here",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field("info")
    log_max_mb: float = Field(50.0, gt=0, description="start the log file again past this size")
    log_backups: int = Field(5, ge=0, description="full log files kept (name.1 the newest)")
    max_backoff_s: float = Field(30.0, gt=0, description="longest wait between failing polls")
    dead_man_timeout_s: int = Field(
        60, ge=0, lt=86400, description="exchange cancels all orders if not re-armed; 0 = off"
    )
    dead_man_refresh_s: float = Field(20.0, gt=0, description="re-arm period (Kraken: 15-30 s)")
    clock_check_s: float = Field(300.0, gt=0, description="compare clocks with the exchange")
    clock_skew_warn_s: float = Field(2.0, gt=0, description="warn past this clock difference")

    @model_validator(mode="after")
    def _refresh_below_timeout(self) -> RunnerConfig:
        if self.dead_man_timeout_s and self.dead_man_refresh_s >= self.dead_man_timeout_s:
            raise ValueError("dead_man_refresh_s must be below dead_man_timeout_s")
        return self


#: The faults the sandbox can inject (framework/sandbox/faults.py says what each does).
FaultKind = Literal[
    "unavailable", "busy", "internal_error", "http_502", "drop", "lost", "slow", "late", "garbled"
]


class FaultConfig(_Section):
    """One kind of fault the sandbox injects."""

    kind: FaultKind
    probability: float = Field(ge=0, le=1)
    endpoints: tuple[str, ...] = Field((), description="private endpoints hit; empty = all")


class SandboxConfig(_Section):
    """The embedded sandbox exchange and its simulated market."""

    port: int = Field(0, ge=0, le=65535, description="0 picks a free loopback port")
    tier: Literal["starter", "intermediate", "pro", "test", "none"] = Field(
        "pro", description="rate limits the sandbox enforces (and the paper client keeps to)"
    )
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
    ws_drop_every_s: tuple[float, float] | None = Field(
        None,
        description="cut every WebSocket connection at random moments [low, high] s apart"
        " (seeded): try a bot's reconnection; unset = never",
    )
    seed: int | None = Field(None, description="seed for the random delay and the market")
    step_s: float = Field(0.25, gt=0, description="one market price step every step_s")
    volatility: float = Field(0.0002, ge=0, description="stdev of one step's log return")
    spread_bps: float = Field(2.0, gt=0, description="bid-ask spread in basis points")
    partial_fill_probability: float = Field(
        0.3, ge=0, le=1, description="chance a resting order fills only half per step"
    )
    faults: tuple[FaultConfig, ...] = Field((), description="faults to inject (see README)")
    fault_seed: int = Field(0, description="seed of the fault draws")
    slow_s: float = Field(15.0, gt=0, description="delay of a 'slow' answer")
    late_s: float = Field(3.0, gt=0, description="delay before a 'late' call is executed")
    balances: dict[str, str] = Field(
        default_factory=lambda: {"ZUSD": "100000", "XXBT": "2", "XETH": "20"},
        description="starting balances of the paper account",
    )


class Config(_Section):
    """A whole config file."""

    exchange: ExchangeConfig = Field(default_factory=ExchangeConfig)
    strategy: StrategyConfig | None = None
    runner: RunnerConfig = Field(default_factory=RunnerConfig)
    state: StateConfig = Field(default_factory=StateConfig)
    nonce: NonceConfig = Field(default_factory=NonceConfig)
    sandbox: SandboxConfig = Field(default_factory=SandboxConfig)
    #: The file this config was read from (not a TOML key).
    source: Path | None = Field(None, exclude=True)

    @property
    def bot_id(self) -> str:
        """``[state].bot_id``, else the config file's name without ``.toml``."""
        return self.state.bot_id or (self.source.stem if self.source is not None else "bot")

    def secret(self, name: str) -> Secret:
        """``name`` from the environment, ``./.env`` or ``[exchange].secrets_file``."""
        value = os.environ.get(name)
        if not value and Path(".env").is_file():
            value = dotenv_values(".env").get(name)
        secrets_file = self.exchange.secrets_file
        if not value and secrets_file is not None:
            if not secrets_file.is_file():
                raise ConfigError(f"exchange.secrets_file: cannot read {secrets_file}")
            value = dotenv_values(secrets_file).get(name)
        if not value:
            where = "the environment, ./.env" + (
                f" or {secrets_file}" if secrets_file else " or [exchange].secrets_file"
            )
            raise ConfigError(f"missing secret {name}: set it in {where}")
        return Secret(value)


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
    if isinstance(data, dict) and "source" in data:
        raise ConfigError(f"{path}: source: Extra inputs are not permitted")
    try:
        config = Config.model_validate({**data, "source": path})
    except ValidationError as exc:
        problems = _describe(exc)
        raise ConfigError(f"{path}: " + "; ".join(problems)) from None
    from framework.registry import check_exchange  # the exchange checks its own keys

    try:
        check_exchange(config)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc.message}") from None
    return config
