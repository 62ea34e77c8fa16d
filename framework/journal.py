"""The order journal: every order of one key, written down before it is sent and at every
change, so a restart (even after ``kill -9``) knows what the bot had at the exchange.

    orders   client id, pair, side, kind, volume, price, post-only, state, exchange id,
             filled volume and cost, reason, created / updated / last-sent times
    fills    each fill applied to an order (by trade id), and whether the strategy's
             ``on_fill`` has had it

One embedded SQLite file (WAL; ``synchronous=NORMAL``, so a committed write survives the
process being killed; a power cut may lose the last writes, which the start-up
reconciliation then finds at the exchange again). Rows are keyed by (exchange, key id), so
several bots may share the file. At start the runner restores the key's open orders and the
fills not yet delivered, then reconciles them with the exchange (:meth:`Execution.resume`).

A write that fails raises :class:`StateError` naming the file: the order is not sent.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

from framework.errors import InvalidArguments, StateError
from framework.events import Fill, OrderState
from framework.orders import LimitOrder, MarketOrder, Order, TrackedOrder
from framework.paths import private_file

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    exchange  TEXT NOT NULL,
    key_id    TEXT NOT NULL,
    cl_ord_id TEXT NOT NULL,
    kind      TEXT NOT NULL,
    pair      TEXT NOT NULL,
    side      TEXT NOT NULL,
    volume    TEXT NOT NULL,
    price     TEXT,
    post_only INTEGER NOT NULL,
    state     TEXT NOT NULL,
    txid      TEXT,
    filled    TEXT NOT NULL,
    cost      TEXT NOT NULL,
    reason    TEXT,
    created   REAL NOT NULL,
    updated   REAL NOT NULL,
    sent_at   REAL,
    bot       TEXT NOT NULL DEFAULT '',
    reduce_only INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (exchange, key_id, cl_ord_id)
);
CREATE INDEX IF NOT EXISTS orders_open ON orders (exchange, key_id, state);
CREATE TABLE IF NOT EXISTS fills (
    exchange  TEXT NOT NULL,
    key_id    TEXT NOT NULL,
    trade_id  TEXT NOT NULL,
    cl_ord_id TEXT NOT NULL,
    txid      TEXT NOT NULL,
    pair      TEXT NOT NULL,
    side      TEXT NOT NULL,
    price     TEXT NOT NULL,
    volume    TEXT NOT NULL,
    fee       TEXT NOT NULL,
    maker     INTEGER NOT NULL,
    time      REAL NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (exchange, key_id, trade_id)
);
CREATE TABLE IF NOT EXISTS strategy_state (
    exchange  TEXT NOT NULL,
    key_id    TEXT NOT NULL,
    bot       TEXT NOT NULL,
    strategy  TEXT NOT NULL,
    state     TEXT NOT NULL,
    PRIMARY KEY (exchange, key_id, bot, strategy)
);
CREATE TABLE IF NOT EXISTS fill_ids (
    exchange  TEXT NOT NULL,
    key_id    TEXT NOT NULL,
    cl_ord_id TEXT NOT NULL,
    alt_id    TEXT NOT NULL,
    PRIMARY KEY (exchange, key_id, cl_ord_id, alt_id)
);
"""

_OPEN = tuple(s.value for s in OrderState if s.is_open)
#: Columns of ``orders`` added since its first version: an older journal gains them when
#: it is opened.
_ADDED = (("bot", "TEXT NOT NULL DEFAULT ''"), ("reduce_only", "INTEGER NOT NULL DEFAULT 0"))
#: A named bot's rows, and unnamed ones (journals of before the names): its one value, bot.
_OWN = "bot IN (?, '')"
_SAVE_STATE = "INSERT OR REPLACE INTO strategy_state VALUES (?,?,?,?,?)"
#: What reading a row can raise: the file, or a value no order can hold (a hand edit, a
#: newer Orderly's row).
_UNREADABLE = (sqlite3.Error, ValueError, ArithmeticError, InvalidArguments)

#: The columns of ``orders`` by name, as rows are written and read (an older journal that
#: gained columns has them in another order).
_COLUMNS = (
    "exchange, key_id, cl_ord_id, kind, pair, side, volume, price, post_only, state, txid, "
    "filled, cost, reason, created, updated, sent_at, bot, reduce_only"
)
_UPSERT = f"""
INSERT INTO orders ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
ON CONFLICT (exchange, key_id, cl_ord_id) DO UPDATE SET
    state=excluded.state, txid=excluded.txid, filled=excluded.filled, cost=excluded.cost,
    reason=excluded.reason, updated=excluded.updated, sent_at=excluded.sent_at,
    volume=excluded.volume, price=excluded.price
"""


class OrderJournal:
    """The journal of one key's orders in one SQLite file."""

    def __init__(
        self, path: Path | str, *, exchange: str, key_id: str, bot: str | None = None
    ) -> None:
        self.path = Path(path)
        self.exchange = exchange
        self.key_id = key_id
        #: Whose orders: a named bot restores its own (and unnamed ones, from journals of
        #: before the names); None reads every bot's, and writes unnamed rows.
        self.bot = bot
        try:
            private_file(self.path)
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(orders)")}
            for name, kind in _ADDED if columns else ():  # a journal of an older Orderly
                if name not in columns:
                    self._db.execute(f"ALTER TABLE orders ADD COLUMN {name} {kind}")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise self._error("open", exc) from None

    def _error(self, doing: str, exc: BaseException) -> StateError:
        return StateError(f"order journal {self.path}: cannot {doing}: {exc}", key_id=self.key_id)

    def _write(
        self,
        doing: str,
        sql: str,
        rows: Iterable[tuple[object, ...]],
        *more: tuple[str, Iterable[tuple[object, ...]]],
    ) -> None:
        """``sql`` for each of ``rows`` (and each of ``more``), in one transaction."""
        try:
            with self._db:
                self._db.execute("BEGIN")
                for statement, values in ((sql, rows), *more):
                    self._db.executemany(statement, values)
        except sqlite3.Error as exc:
            raise self._error(doing, exc) from None

    def _row(self, order: TrackedOrder) -> tuple[object, ...]:
        request = order.request
        return (
            self.exchange,
            self.key_id,
            order.cl_ord_id,
            _kind(request),
            request.pair,
            request.side,
            str(request.volume),
            str(request.price) if isinstance(request, LimitOrder) else None,
            int(request.post_only) if isinstance(request, LimitOrder) else 0,
            order.state.value,
            order.txid,
            str(order.filled),
            str(order.cost),
            order.reason,
            order.created,
            order.updated,
            order.sent_at,
            self.bot or "",
            int(request.reduce_only),
        )

    def save(self, *orders: TrackedOrder) -> None:
        """Write ``orders`` as they are now, in one transaction."""
        self._write("write an order", _UPSERT, [self._row(o) for o in orders])

    def fill(self, order: TrackedOrder, fill: Fill) -> None:
        """Record ``fill`` as applied to ``order`` (not yet delivered), with the order."""
        row = (
            self.exchange,
            self.key_id,
            fill.trade_id,
            fill.cl_ord_id,
            fill.txid,
            fill.pair,
            fill.side,
            str(fill.price),
            str(fill.volume),
            str(fill.fee),
            int(fill.maker),
            fill.time,
        )
        try:
            with self._db:
                self._db.execute("BEGIN")
                self._db.execute(
                    "INSERT OR IGNORE INTO fills VALUES (?,?,?,?,?,?,?,?,?,?,?,?,0)", row
                )
                if fill.alt_id is not None:  # the trade's second id: it counts once either way
                    self._db.execute(
                        "INSERT OR IGNORE INTO fill_ids VALUES (?,?,?,?)",
                        (self.exchange, self.key_id, fill.cl_ord_id, fill.alt_id),
                    )
                self._db.execute(_UPSERT, self._row(order))
        except sqlite3.Error as exc:
            raise self._error("write a fill", exc) from None

    def delivered(self, trade_id: str | None, state: tuple[str, str] | None = None) -> None:
        """A hook of the strategy has run: the fill ``on_fill`` had (``trade_id``) is marked
        delivered and the strategy's state (its name, JSON) written, in one transaction."""
        where = (self.exchange, self.key_id)
        self._write(
            "mark a fill delivered" if trade_id is not None else "save the strategy state",
            "UPDATE fills SET delivered=1 WHERE exchange=? AND key_id=? AND trade_id=?",
            [] if trade_id is None else [(*where, trade_id)],
            *([] if state is None else [(_SAVE_STATE, [(*where, self.bot or "", *state)])]),
        )

    def strategy_state(self, strategy: str) -> str | None:
        """The state ``strategy`` saved on this key (JSON), or None."""
        try:
            row = self._db.execute(
                "SELECT state FROM strategy_state WHERE exchange=? AND key_id=? AND bot=? "
                "AND strategy=?",
                (self.exchange, self.key_id, self.bot or "", strategy),
            ).fetchone()
        except sqlite3.Error as exc:
            raise self._error("read the strategy state", exc) from None
        return None if row is None else str(row[0])

    def open_orders(self) -> list[TrackedOrder]:
        """The key's orders not yet in a final state, with the trade ids applied to each."""
        try:
            return _open_orders(self._db, self.exchange, self.key_id, self.bot)
        except _UNREADABLE as exc:
            raise self._error("read the open orders", exc) from None

    def undelivered(self) -> list[Fill]:
        """Fills applied but never delivered to ``on_fill`` (the bot died in between)."""
        try:
            mine = (
                ""
                if self.bot is None
                else (
                    f"AND cl_ord_id IN (SELECT cl_ord_id FROM orders WHERE exchange=? AND key_id=? "
                    f"AND {_OWN})"
                )
            )
            return _fills(
                self._db,
                self.exchange,
                self.key_id,
                f"AND delivered=0 {mine} ORDER BY time",
                *([] if self.bot is None else [self.exchange, self.key_id, self.bot]),
            )
        except _UNREADABLE as exc:
            raise self._error("read the fills", exc) from None

    def close(self) -> None:
        self._db.close()

    def __repr__(self) -> str:
        return f"OrderJournal(path={str(self.path)!r}, key_id={self.key_id!r})"


Keyed = tuple[str, str, list[TrackedOrder], list[Fill], list[tuple[str, str]]]


def read_journal(path: Path, fills: int) -> list[Keyed]:
    """Every key a journal holds, as (exchange, key id, its open orders, its newest
    ``fills`` fills, oldest first, and the states its bots' strategies saved: ("bot
    strategy", JSON)). Only reads (a running bot's journal too): no row written, no file
    created (SQLite may still fold its WAL back into the file when the last reader closes)."""
    if not path.is_file():
        raise StateError(f"order journal {path}: no such file")
    try:
        db = sqlite3.connect(f"file:{path}?mode=rw", uri=True)  # never creates a file
        try:
            db.execute("PRAGMA busy_timeout=5000")
            keys = db.execute(
                "SELECT DISTINCT exchange, key_id FROM orders ORDER BY exchange, key_id"
            ).fetchall()
            kept = db.execute(  # a journal of an Orderly before ctx.state has no such table
                "SELECT name FROM sqlite_master WHERE name='strategy_state'"
            ).fetchone()
            return [
                (
                    exchange,
                    key_id,
                    _open_orders(db, exchange, key_id),
                    _fills(db, exchange, key_id, f"ORDER BY time DESC LIMIT {int(fills)}")[::-1],
                    db.execute(
                        "SELECT trim(bot || ' ' || strategy), state FROM strategy_state "
                        "WHERE exchange=? AND key_id=? ORDER BY bot, strategy",
                        (exchange, key_id),
                    ).fetchall()
                    if kept
                    else [],
                )
                for exchange, key_id in keys
            ]
        finally:
            db.close()
    except _UNREADABLE as exc:
        raise StateError(f"order journal {path}: cannot read: {exc}") from None


def _open_orders(
    db: sqlite3.Connection, exchange: str, key_id: str, bot: str | None = None
) -> list[TrackedOrder]:
    """The key's open orders: ``bot``'s and unnamed ones, or every bot's (None)."""
    marks = ",".join("?" * len(_OPEN))
    mine = "" if bot is None else f"AND {_OWN}"
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM orders WHERE exchange=? AND key_id=? AND state IN ({marks}) "
        f"{mine} "
        "ORDER BY created",
        (exchange, key_id, *_OPEN, *([] if bot is None else [bot])),
    ).fetchall()
    orders = [_order(row) for row in rows]
    for order in orders:
        where = (exchange, key_id, order.cl_ord_id)
        order.trade_ids = {
            tid
            for (tid,) in db.execute(
                "SELECT trade_id FROM fills WHERE exchange=? AND key_id=? AND cl_ord_id=? "
                "UNION SELECT alt_id FROM fill_ids WHERE exchange=? AND key_id=? AND cl_ord_id=?",
                where + where,
            )
        }
    return orders


def _fills(
    db: sqlite3.Connection, exchange: str, key_id: str, rest: str, *values: object
) -> list[Fill]:
    """The key's fills; ``rest``: the rest of the query (a condition, the order, a limit),
    with its ``values``."""
    rows = db.execute(
        "SELECT trade_id, cl_ord_id, txid, pair, side, price, volume, fee, maker, time "
        f"FROM fills WHERE exchange=? AND key_id=? {rest}",
        (exchange, key_id, *values),
    ).fetchall()
    return [
        Fill(t, c, x, p, s, Decimal(pr), Decimal(v), Decimal(f), bool(m), tm)
        for t, c, x, p, s, pr, v, f, m, tm in rows
    ]


def _kind(request: Order) -> str:
    """``market``, ``limit`` (good till cancelled), ``limit/ioc`` or ``limit/fok``: the
    time in force rides in the kind (journals written before it have ``limit``)."""
    if not isinstance(request, LimitOrder):
        return "market"
    return "limit" if request.time_in_force == "gtc" else f"limit/{request.time_in_force}"


def _order(row: tuple[object, ...]) -> TrackedOrder:
    (_, _, cl_ord_id, kind, pair, side, volume, price, post_only, state, txid) = row[:11]
    filled, cost, reason, created, updated, sent_at, _, reduce_only = row[11:19]
    request: Order
    if str(kind).startswith("limit"):
        request = LimitOrder(
            pair=str(pair),
            side=str(side),  # type: ignore[arg-type]
            volume=Decimal(str(volume)),
            price=Decimal(str(price)),
            post_only=bool(post_only),
            time_in_force=str(kind).partition("/")[2] or "gtc",  # type: ignore[arg-type]
            reduce_only=bool(reduce_only),
        )
    else:
        request = MarketOrder(
            pair=str(pair),
            side=str(side),  # type: ignore[arg-type]
            volume=Decimal(str(volume)),
            reduce_only=bool(reduce_only),
        )
    return TrackedOrder(
        request,
        str(cl_ord_id),
        state=OrderState(state),
        txid=None if txid is None else str(txid),
        filled=Decimal(str(filled)),
        cost=Decimal(str(cost)),
        reason=None if reason is None else str(reason),
        created=float(created),  # type: ignore[arg-type]
        updated=float(updated),  # type: ignore[arg-type]
        sent_at=None if sent_at is None else float(sent_at),  # type: ignore[arg-type]
    )
