"""``ctx.state``: what a strategy keeps across restarts, saved in the order journal.

The strategy reads and writes ``self.ctx.state`` (a dict) as it likes. Each time one of its
hooks or timers returns, the state is written down if it changed; after ``on_fill`` it is
written in the same transaction that marks the fill delivered. So a state kept from fills
(a position, a TWAP's filled volume) counts every fill exactly once across ``kill -9``: the
process dies either before that transaction (the fill comes again after the restart, to
a state without it) or after it (the fill is not delivered again). At start the runner
loads the state saved for the bot, its strategy's name and the key, before ``on_start``.

Values: ``str``, ``int``, ``float``, ``bool``, ``None``, :class:`~decimal.Decimal`, and
lists and string-keyed dicts of them (a tuple comes back as a list; the key
``"$decimal"`` is Orderly's), at most :data:`MAX_DEPTH` levels deep and :data:`MAX_BYTES`
written as JSON. Anything else is refused with
:class:`InvalidArguments` naming the key, reported as a failure of the hook that stored it;
the state saved before stays. The paper sandbox has no journal: its state lives in memory.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

from framework.errors import InvalidArguments, StateError
from framework.events import Fill
from framework.journal import OrderJournal
from framework.orders import OrderBook
from framework.strategy import Context
from framework.transport import too_deep

#: The largest state written (bytes of JSON); it is written after every hook that changes it.
MAX_BYTES = 1024 * 1024
#: The deepest nesting of lists and dicts kept (a structure inside itself never ends).
MAX_DEPTH = 64
_DECIMAL = "$decimal"


def _where(path: list[object]) -> str:
    return "ctx.state" + "".join(f"[{step!r}]" for step in path)


def _check(value: Any, path: list[object]) -> None:
    """Refuse what JSON would not bring back as it was, and nesting past MAX_DEPTH. ``path``
    (the keys and indexes down to ``value``) is turned into words only for an error."""
    if len(path) > MAX_DEPTH:
        raise InvalidArguments(
            f"{_where(path)[:49]}...: nests deeper than {MAX_DEPTH} levels (or holds itself)"
        )
    if value is None or isinstance(value, str | bool | int | Decimal):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidArguments(f"{_where(path)}: {value} cannot be saved")
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            path.append(index)
            _check(item, path)
            path.pop()
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or key == _DECIMAL:
                raise InvalidArguments(f"{_where(path)}: a key {key!r} cannot be saved")
            path.append(key)
            _check(item, path)
            path.pop()
        return
    raise InvalidArguments(
        f"{_where(path)}: a {type(value).__name__} cannot be saved (str, int, float, bool, "
        "None, Decimal, and lists and dicts of them)"
    )


def _encode(value: Any) -> Any:
    if isinstance(value, Decimal):
        return {_DECIMAL: str(value)}
    raise TypeError(type(value).__name__)  # _check let nothing else through


def _decode(obj: dict[str, Any]) -> Any:
    return Decimal(obj[_DECIMAL]) if obj.keys() == {_DECIMAL} else obj


def dump(state: dict[str, Any]) -> str:
    """``state`` as the journal keeps it; :class:`InvalidArguments` naming what cannot be."""
    if not isinstance(state, dict):
        raise InvalidArguments(f"ctx.state must stay a dict; it is a {type(state).__name__}")
    _check(state, [])
    text = json.dumps(state, default=_encode, sort_keys=True, separators=(",", ":"))
    if len(text) > MAX_BYTES:
        raise InvalidArguments(f"ctx.state is {len(text)} bytes as JSON; at most {MAX_BYTES}")
    return text


def load(text: str | None, where: str) -> dict[str, Any]:
    """A state as :func:`dump` wrote it (an empty dict for none); :class:`StateError`
    naming ``where`` for a text that is not one."""
    if text is None:
        return {}
    if too_deep(text.encode(), MAX_DEPTH + 2):  # checked before decoding: the stack is safe
        raise StateError(f"{where}: the saved strategy state nests too deep to be read")
    try:
        state = json.loads(text, object_hook=_decode, parse_float=float)
    except (ValueError, ArithmeticError) as exc:
        raise StateError(f"{where}: the saved strategy state cannot be read: {exc}") from None
    if not isinstance(state, dict):
        raise StateError(f"{where}: the saved strategy state is not a dict")
    return state


class StateKeeper:
    """Loads a strategy's ``ctx.state`` at start and writes it down after each hook."""

    def __init__(self, book: OrderBook, journal: OrderJournal | None, ctx: Context) -> None:
        self._book = book
        self._ctx = ctx
        self._name = ctx.name
        saved = journal.strategy_state(self._name) if journal is not None else None
        ctx.state = load(saved, f"order journal {journal.path}" if journal else "state")
        self._saved = dump(ctx.state)

    def after(self, event: object) -> None:
        """The hook for ``event`` (None: a timer) has returned: mark its fill delivered and
        write the state if it changed, in one transaction."""
        trade_id = event.trade_id if isinstance(event, Fill) else None
        try:
            text = dump(self._ctx.state)
        except InvalidArguments:
            if trade_id is not None:  # the fill was delivered all the same
                self._book.delivered(trade_id)
            raise
        changed = text != self._saved
        if trade_id is not None or changed:
            self._book.delivered(trade_id, (self._name, text) if changed else None)
            self._saved = text
