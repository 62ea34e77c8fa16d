"""Logging, configured once: structlog with JSON lines (a console renderer on a TTY).

Events are snake_case names with fields: ``log.info("nonce_assigned", key_id=k, nonce=n)``.
Secrets are removed by the ``redact_secrets`` processor, not by discipline: every
:class:`framework.secret.Secret` registers its value here when it is created, and any
string in an event that contains a registered value has it replaced by ``***``.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import warnings
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any, TextIO, cast

import structlog

from framework.paths import private_file, shift_backups

REDACTED = "***"
_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
_level = _LEVELS["warning"]
#: Whether debug events are emitted (kept by :func:`configure`): hot paths read it to skip
#: building events nobody will see.
debugging = False
_SENSITIVE_FIELDS = frozenset({"api_key", "api_secret", "secret", "api_sign", "sign", "password"})
_secrets: set[str] = set()


def register_secret(value: str) -> None:
    """Make ``redact_secrets`` remove ``value`` from every future log event."""
    if value:
        _secrets.add(value)


def redact(text: str) -> str:
    """``text`` with every registered secret value replaced by ``***``."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _scrub(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(item) for item in value]
    return value


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: blank sensitive fields and registered secret values."""
    for key, value in event_dict.items():
        if key in _SENSITIVE_FIELDS:
            event_dict[key] = REDACTED
        elif _secrets:
            event_dict[key] = _scrub(value)
    return event_dict


class _ToStructlog(logging.Handler):
    """Sends the standard library's log records (aiohttp, asyncio) through structlog, so
    they land in the same JSON log, redacted like every other event."""

    def emit(self, record: logging.LogRecord) -> None:
        level = record.levelname.lower()
        logger = structlog.get_logger(component=record.name)
        getattr(logger, level if level in _LEVELS else "info")(
            record.getMessage(), exc_info=record.exc_info or None
        )


class FailSafeStream:
    """An output stream (a log file, standard output) whose failures (a full disk, a closed
    pipe) cost lines, never the code that writes: the first failure is said once on stderr,
    lines are dropped until a write works again, and the recovery is said with the count."""

    def __init__(self, stream: TextIO, name: str) -> None:
        self._stream = stream
        self.name = name
        self.dropped = 0  # lines lost (a line: its writes, then one flush)
        self._failing: OSError | None = None
        self._lost = False  # the current line

    def write(self, text: str) -> int:
        try:
            written = self._stream.write(text)
        except OSError as exc:
            self._failed(exc)
            return 0
        return written

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            self._failed(exc)
        if self._lost:
            self._lost, self.dropped = False, self.dropped + 1
        elif self._failing is not None:
            self._failing = None
            _say(f"orderly: {self.name} is written again ({self.dropped} lines lost)")

    def isatty(self) -> bool:
        return False

    def _failed(self, exc: OSError) -> None:
        self._lost = True
        if self._failing is None:
            self._failing = exc
            _say(
                f"orderly: {self.name} cannot be written ({exc.strerror or exc}): its lines"
                " are lost until it can; trading goes on"
            )


class RotatingFile:
    """A log file that starts again past ``max_bytes``: the full one becomes ``name.1`` (the
    older ones ``name.2`` ... up to ``backups``, the oldest dropped). It turns at a flush,
    which structlog does after each line, so every file holds whole lines. Mode 0600."""

    def __init__(self, path: Path, *, max_bytes: int, backups: int) -> None:
        self.path, self.name = path, str(path)
        self._max_bytes, self._backups = max_bytes, backups
        self._file = self._open()
        self._size = self._file.tell()

    def _open(self) -> TextIO:
        private_file(self.path)
        return open(self.path, "a", encoding="utf-8")

    def write(self, text: str) -> int:
        if self._file.closed:  # a turn that failed half-way: open again (OSError if not yet)
            self._file = self._open()
        self._size += len(text)  # JSON lines are ASCII: characters are bytes
        return self._file.write(text)

    def flush(self) -> None:
        self._file.flush()
        if self._size >= self._max_bytes:
            self._size = 0  # one try per max_bytes, whatever the file system says
            self._file.close()
            shift_backups(self.path, self._backups)
            self._file = self._open()

    def isatty(self) -> bool:
        return False

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> RotatingFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _say(line: str) -> None:
    with contextlib.suppress(OSError, ValueError):  # stderr itself gone: nothing to say
        print(line, file=sys.stderr, flush=True)


_SHOW_WARNING = warnings.showwarning  # Python's own: a warning to stderr
_NOT_AWAITED = re.compile(r"coroutine 'Context\.(\w+)' was never awaited")


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """A Python warning while the standard library is captured: in the JSON log too; a
    call to the strategy's context without ``await`` is said in Orderly's words."""
    text, where = str(message), f"{filename}:{lineno}"
    get_logger("py.warnings").warning(
        "python_warning", category=category.__name__, message=text, where=where
    )
    if called := _NOT_AWAITED.match(text):
        name = called[1]
        print(
            f"orderly: {where}: ctx.{name}(...) was called without await: it did nothing "
            f"(nothing was sent); write `await self.ctx.{name}(...)`",
            file=sys.stderr,
        )
        return
    _SHOW_WARNING(message, category, filename, lineno, file, line)


def configure(
    level: str = "info",
    *,
    stream: TextIO | None = None,
    json: bool | None = None,
    capture_stdlib: bool = False,
) -> None:
    """Configure structlog for the whole process. Call once, at start.

    Until it is called, Orderly as a library is quiet: warnings and above go to stderr,
    secrets redacted. ``capture_stdlib`` routes the standard library's logging (aiohttp,
    asyncio) and Python's warnings into the same stream. A stream that fails (a full disk)
    loses log lines, never raises. Loggers are not cached, so a later call (a test, or
    ``orderly run`` closing its log file) takes effect everywhere; hot paths read
    :data:`debugging` instead."""
    global _level, debugging
    _level = _LEVELS.get(level.lower(), _LEVELS["info"])
    debugging = _level <= _LEVELS["debug"]
    out = stream if stream is not None else sys.stderr
    use_json = json if json is not None else not out.isatty()
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if use_json:
        processors += [
            # tracebacks as dicts, without local variables: locals may hold anything
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            ),
            redact_secrets,
            structlog.processors.JSONRenderer(),
        ]
    else:
        processors += [
            structlog.processors.format_exc_info,
            redact_secrets,
            structlog.dev.ConsoleRenderer(colors=False),
        ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(
            cast(TextIO, FailSafeStream(out, f"log {getattr(out, 'name', 'stream')}"))
        ),
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not isinstance(h, _ToStructlog)]
    warnings.showwarning = _show_warning if capture_stdlib else _SHOW_WARNING
    if capture_stdlib:
        root.addHandler(_ToStructlog())
        root.setLevel(_level)


def get_logger(name: str) -> Any:
    """A structlog logger bound to ``component=name``; it follows :func:`configure`."""
    return structlog.get_logger(component=name)


if not structlog.is_configured():  # a library until the application configures it
    configure("warning")
