"""The wire, in the core: one private call goes build -> sign -> send -> parse here, for
every exchange, and this is the one place a failed send is given its meaning.

    ExchangeWire    what an exchange package supplies: pure parts that build a signed
                    request from (call, nonce) and turn an answer into a result or a typed
                    error, and which endpoints change state
    Transport       the seam that carries bytes: :class:`AiohttpTransport` in production;
                    any object with ``send`` in tests
    pipeline()      wires an ExchangeWire and a Transport into the Pipeline a Lane sends
                    with, so the lane calls the core and the exchange's pure parts, never
                    back into the client that built it

What a failure means:

- never connected: nothing was sent -> :class:`TransientError`;
- connected but no usable answer (timeout, reset, dropped), or an answer the exchange's
  parser could not understand or that only says "try later": on a state-changing endpoint
  the call may have run -> :class:`AmbiguousOutcome` (reconcile before anything else),
  unless the exchange's wire says the error proves nothing ran; on a read ->
  :class:`TransientError`.
"""

from __future__ import annotations

import json
import statistics
from collections import deque
from collections.abc import Callable, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol

import aiohttp

from framework.call import PrivateCall
from framework.errors import AmbiguousOutcome, ExchangeError, OrderlyError, TransientError
from framework.log import get_logger, redact
from framework.nonce.source import Nonce

log = get_logger("framework.transport")


class Request(NamedTuple):
    """A request ready to go: the exact bytes that were signed. (Named tuples, these two:
    every private call makes one of each, and a tuple is the cheapest frozen record.)"""

    method: str
    url: str
    headers: Mapping[str, str] = MappingProxyType({})
    body: bytes | None = None
    query: Mapping[str, str] | None = None


class Answer(NamedTuple):
    status: int
    headers: Mapping[str, str]
    body: bytes


class NotConnected(Exception):
    """The request never reached the exchange."""


class NoAnswer(Exception):
    """The request may have reached the exchange, but no answer came back."""


class Transport(Protocol):
    async def send(self, request: Request) -> Answer:
        """Carry ``request``; raise :class:`NotConnected` or :class:`NoAnswer`."""
        ...


class ExchangeWire(Protocol):
    """An exchange's pure parts for one key."""

    exchange: str

    def mutating(self, endpoint: str) -> bool:
        """Whether a call to ``endpoint`` changes state (a lost answer is then ambiguous)."""
        ...

    def build(self, call: PrivateCall, nonce: Nonce) -> Request:
        """The signed request for ``call`` with ``nonce``."""
        ...

    def parse(self, call: PrivateCall, answer: Answer) -> Any:
        """The result of ``call``, or raise its typed error."""
        ...

    def not_executed(self, error: OrderlyError) -> bool:
        """Whether ``error`` (from :meth:`parse`) proves that nothing ran."""
        ...


#: The largest answer read (bytes); a larger one is cut off and treated as no answer.
MAX_ANSWER = 8 * 1024 * 1024
#: Every request says who sends it (Synthetix's docs ask for a descriptive User-Agent).
USER_AGENT = "orderly/0.1 (+https://github.com/orderly)"


class AiohttpTransport:
    """HTTP over one aiohttp session; answers larger than ``max_answer`` bytes are not read
    whole (memory stays bounded) and count as no usable answer."""

    def __init__(self, session: aiohttp.ClientSession, max_answer: int = MAX_ANSWER) -> None:
        self.session = session
        self.max_answer = max_answer

    async def send(self, request: Request) -> Answer:
        try:
            async with self.session.request(
                request.method,
                request.url,
                data=request.body,
                headers=request.headers,
                params=request.query,
            ) as response:
                length = response.content_length
                plain = response.headers.get("Content-Encoding", "identity") == "identity"
                if plain and length is not None and length <= self.max_answer:
                    # aiohttp reads no more than Content-Length; an encoded body is counted
                    # below as it inflates (a small gzip can inflate past any cap)
                    return Answer(response.status, response.headers, await response.read())
                body = bytearray()
                async for chunk in response.content.iter_any():  # to the end, or the cap
                    body += chunk
                    if len(body) > self.max_answer:
                        raise NoAnswer(f"answer over {self.max_answer} bytes, not read")
                return Answer(response.status, response.headers, bytes(body))
        except aiohttp.ClientConnectorError as exc:
            raise NotConnected(redact(str(exc))) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise NoAnswer(
                "no answer in time" if isinstance(exc, TimeoutError) else type(exc).__name__
            ) from None


async def exchange(
    transport: Transport,
    request: Request,
    *,
    endpoint: str,
    mutating: bool,
    name: str,
    key_id: str,
) -> Answer:
    """Send one request; a failure becomes the typed error it means (module docstring)."""
    where = {"exchange": name, "endpoint": endpoint, "key_id": key_id}
    title = name.capitalize()
    try:
        return await transport.send(request)
    except NotConnected as exc:
        raise TransientError(f"cannot reach {title}: {exc}", **where) from None
    except NoAnswer as exc:
        cls = AmbiguousOutcome if mutating else TransientError
        raise cls(f"{title} {endpoint}: {exc}", **where) from None


class Pipeline:
    """The function a Lane sends with: build and sign, send, parse. Also in two steps,
    :meth:`build` (pure: a strict lane signs the next call while this one is in flight)
    and :meth:`deliver`."""

    def __init__(self, wire: ExchangeWire, transport: Transport, *, key_id: str) -> None:
        self.wire = wire
        self.transport = transport
        self.key_id = key_id
        self.build: Callable[[PrivateCall, Nonce], Request] = wire.build

    async def __call__(self, call: PrivateCall, nonce: Nonce) -> Any:
        return await self.deliver(call, self.build(call, nonce))

    async def deliver(self, call: PrivateCall, request: Request) -> Any:
        wire, key_id = self.wire, self.key_id
        mutating = wire.mutating(call.endpoint)
        answer = await exchange(
            self.transport,
            request,
            endpoint=call.endpoint,
            mutating=mutating,
            name=wire.exchange,
            key_id=key_id,
        )
        try:
            return wire.parse(call, answer)
        except (TransientError, ExchangeError) as exc:  # answered: "later", or unreadable
            if mutating and not wire.not_executed(exc):
                raise AmbiguousOutcome(
                    f"{wire.exchange.capitalize()} {call.endpoint} may have run: {exc.message}",
                    exchange=wire.exchange,
                    code=exc.code,
                    endpoint=call.endpoint,
                    key_id=key_id,
                ) from None
            raise


def pipeline(wire: ExchangeWire, transport: Transport, *, key_id: str) -> Pipeline:
    """The wire a Lane sends with, for ``wire``'s exchange over ``transport``."""
    return Pipeline(wire, transport, key_id=key_id)


#: The largest clock offset (ms) an exchange's answer may teach; past it the answer is
#: taken to be wrong, not the local clock, and the offset is kept as it was.
MAX_CLOCK_OFFSET_MS = 3_600_000


class ClockOffset:
    """The exchange's clock minus ours (ms), learned only from successful answers: the
    median of the last five samples (one odd sample among sound ones moves nothing; a
    lasting change wins after three), a sample past an hour refused with a warning (the
    answer is wrong, not our clock), and under a second counted as 0 (noise)."""

    def __init__(self, exchange: str) -> None:
        self.exchange = exchange
        self._samples: deque[float] = deque(maxlen=5)
        self.ms = 0.0

    def observe(self, offset_ms: float) -> float:
        """Take one sample; returns the offset to apply."""
        if abs(offset_ms) > MAX_CLOCK_OFFSET_MS:
            log.warning(
                "clock_offset_rejected",
                exchange=self.exchange,
                offset_ms=round(offset_ms),
                max_ms=MAX_CLOCK_OFFSET_MS,
            )
            return self.ms
        self._samples.append(offset_ms)
        middle = statistics.median_low(self._samples)
        self.ms = middle if abs(middle) >= 1000 else 0.0
        return self.ms


#: Deepest JSON nesting decoded. Python's decoder recurses in C; with the recursion limit
#: raised (eth-account raises it to 100,000), a deep enough answer overflowed the C stack.
MAX_DEPTH = 512
_OPEN, _CLOSE, _QUOTE, _ESCAPE = frozenset(b"[{"), frozenset(b"]}"), ord('"'), ord("\\")


def too_deep(payload: bytes, limit: int) -> bool:
    """Whether ``payload`` (JSON) nests deeper than ``limit``, found without decoding it."""
    if payload.count(b"[") + payload.count(b"{") <= limit:  # the common case: no scan
        return False
    depth, in_string, escaped = 0, False, False
    for byte in payload:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _ESCAPE:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPEN:
            depth += 1
            if depth > limit:
                return True
        elif byte in _CLOSE:
            depth -= 1
    return False


def decode_json(payload: bytes | str, max_depth: int = MAX_DEPTH, *, decimals: bool = False) -> Any:
    """``payload`` decoded, or None if it is not JSON or nests deeper than ``max_depth``
    (checked before decoding, so no answer can exhaust the stack). With ``decimals``,
    numbers with a fraction become :class:`~decimal.Decimal` with their digits."""
    raw = payload.encode() if isinstance(payload, str) else payload
    if too_deep(raw, max_depth):
        return None
    try:
        return json.loads(raw, parse_float=Decimal) if decimals else json.loads(raw)
    except (ValueError, RecursionError):
        return None
