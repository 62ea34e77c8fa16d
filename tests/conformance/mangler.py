"""A reverse proxy that spoils answers: it forwards each request to a real (conformance or
sandbox) server, so signatures, nonces and orders are real, then answers the client with a
malformed version of the real answer, chosen by a seeded generator.

The kinds (``KINDS``) are what the wild sends: random bytes, an empty body, an HTML error
page, invalid UTF-8, a truncated body, JSON nested 100,000 deep, a body past the 8 MiB cap,
a reset connection, a trickle slower than the client's timeout, a wrong HTTP status, the
whole answer replaced by another JSON value or envelope, a value somewhere inside replaced
by one of the wrong type (or deleted), and numbers turned into NaN, Infinity or 1e400.
``pass`` forwards the answer untouched, so state keeps moving.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from typing import Any

import aiohttp
from aiohttp import web

from tests.conformance.engine import lose_answer
from tests.conformance.loopback import LoopbackServer

KINDS: dict[str, float] = {  # kind -> weight
    "pass": 30,
    "bytes": 6,
    "empty": 5,
    "html": 5,
    "utf8": 3,
    "truncated": 8,
    "deep": 2,
    "huge": 1,
    "reset": 4,
    "slow": 1,
    "status": 5,
    "top": 10,
    "shape": 30,
    "number": 10,
}
#: Whole answers that are JSON but not what the endpoint returns.
TOPS: list[Any] = [
    None,
    [],
    {},
    "ok",
    0,
    True,
    {"error": [], "result": None},
    {"error": [], "result": []},
    {"error": "EGeneral:Internal error"},
    {"error": [None]},
    {"code": 0, "msg": "Success", "data": None},
    {"code": 0, "data": []},
    {"code": "0", "data": {}},
    {"code": None},
    {"status": "ok", "response": None},
    {"status": "ok"},
    {"status": "error"},
    {"status": "error", "error": None},
    {"status": "ok", "response": {"statuses": None}},
]
#: Values put where another one was.
ODD: list[Any] = [
    None,
    [],
    {},
    "",
    "x",
    -1,
    0,
    True,
    1e308,
    "1E+400",
    [[[]]],
    {"a": {"b": None}},
    "NaN",
    "Infinity",
    "-Infinity",
    "12abc",
    2**70,
]
NUMBERS = ["NaN", "Infinity", "-Infinity", "1e400", "-1", "0", "", "1E+30"]


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path inside a JSON value (dict keys and list indexes), the value's own first."""
    found = [path]
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*path, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value[:20]):
            found += _paths(inner, (*path, index))
    return found


def _replace(value: Any, path: tuple[Any, ...], new: Any, delete: bool = False) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        value = dict(value)
        if delete and not rest:
            value.pop(head, None)
        else:
            value[head] = _replace(value[head], rest, new, delete)
    elif isinstance(value, list):
        value = list(value)
        if delete and not rest:
            del value[head]
        else:
            value[head] = _replace(value[head], rest, new, delete)
    return value


class Mangler(LoopbackServer):
    """The proxy; ``counts`` says how many answers of each kind it sent."""

    def __init__(
        self, upstream: str, seed: int, *, slow_s: float = 0.6, only: tuple[str, ...] = ()
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self._random = random.Random(seed)
        self._kinds, self._weights = list(KINDS), list(KINDS.values())
        self.slow_s = slow_s
        self.counts: Counter[str] = Counter()
        #: False: every answer passes untouched.
        self.spoiling = True
        #: Spoil only answers to paths ending so (empty: every path).
        self.only = only
        self._session: aiohttp.ClientSession | None = None

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._proxy)

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()
        await super().__aexit__(*exc_info)

    async def _proxy(self, request: web.Request) -> web.StreamResponse:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        body = await request.read()
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() not in ("host", "content-length", "transfer-encoding")
        }
        async with self._session.request(
            request.method, self.upstream + request.path_qs, headers=headers, data=body or None
        ) as real:
            payload, status = await real.read(), real.status
            date = real.headers.get("Date")
        spoil = self.spoiling and (not self.only or request.path.endswith(self.only))
        kind = self._random.choices(self._kinds, self._weights)[0] if spoil else "pass"
        self.counts[kind] += 1
        return await self._answer(request, kind, status, payload, date)

    async def _answer(
        self, request: web.Request, kind: str, status: int, payload: bytes, date: str | None
    ) -> web.StreamResponse:
        rng = self._random
        headers = {"Date": date} if date else {}
        if kind == "reset":
            lose_answer(request)
            return web.Response(status=200)
        if kind == "slow":
            response = web.StreamResponse(status=200, headers=headers)
            await response.prepare(request)
            for _ in range(int(self.slow_s / 0.05)):
                await response.write(b" ")
                await asyncio.sleep(0.05)
            await response.write(payload)
            return response
        if kind == "pass":
            out = payload
        elif kind == "bytes":
            out = rng.randbytes(rng.randint(1, 300))
        elif kind == "empty":
            out = b""
        elif kind == "html":
            out, status = (
                b"<html><body><h1>502 Bad Gateway</h1></body></html>",
                rng.choice([200, 502, 503, 403]),
            )
        elif kind == "utf8":
            out = b'{"error": [], "result": "\xff\xfe\xfa", "code": 0, "data": "\xc3\x28"}'
        elif kind == "truncated":
            out = payload[: rng.randint(0, max(0, len(payload) - 1))]
        elif kind == "deep":
            out = b'{"result":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        elif kind == "huge":
            out = b'{"result": "' + b"x" * (9 * 1024 * 1024) + b'"}'
        elif kind == "status":
            out, status = payload, rng.choice([400, 404, 429, 500, 502, 503])
        elif kind == "top":
            out = json.dumps(rng.choice(TOPS)).encode()
        else:
            out = self._spoil(kind, payload)
        return web.Response(body=out, status=status, headers=headers)

    def _spoil(self, kind: str, payload: bytes) -> bytes:
        """``shape``: one to three values inside replaced by odd ones, or deleted;
        ``number``: numbers (and numeric strings) turned into NaN, Infinity, 1e400..."""
        rng = self._random
        try:
            value = json.loads(payload)
        except ValueError:
            return payload
        paths = _paths(value)[1:]
        if kind == "number":
            paths = [p for p in paths if _numeric(_get(value, p))] or paths
        for path in rng.sample(paths, min(len(paths), rng.randint(1, 3))):
            try:
                if kind == "number":
                    value = _replace(value, path, rng.choice(NUMBERS))
                elif rng.random() < 0.3:
                    value = _replace(value, path, None, delete=True)
                else:
                    value = _replace(value, path, rng.choice(ODD))
            except (KeyError, IndexError, TypeError):
                continue  # an earlier change removed the path
        text = json.dumps(value)
        if kind == "number":  # bare NaN / Infinity tokens too, as some servers send them
            text = text.replace('"NaN"', "NaN") if rng.random() < 0.5 else text
        return text.encode()


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


def _numeric(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return False
        return True
    return False
