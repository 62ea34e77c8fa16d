"""The core's pipeline with an in-memory transport: Kraken's pure parts build the documented
request, and a failed send means exactly one thing, decided in one place."""

from __future__ import annotations

import gzip
import subprocess
import sys
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from framework.call import PrivateCall
from framework.clock import ManualClock
from framework.errors import (
    AmbiguousOutcome,
    ExchangeError,
    OrderlyError,
    RateLimited,
    TransientError,
)
from framework.exchanges.kraken.wire import KrakenWire
from framework.secret import Secret
from framework.transport import (
    AiohttpTransport,
    Answer,
    ClockOffset,
    NoAnswer,
    NotConnected,
    Request,
    decode_json,
    pipeline,
)
from tests.test_kraken_signer import DOC_NONCE, DOC_SECRET

DOC_BODY = b"nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"
DOC_SIGN = (
    "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="
)


class Memory:
    """A transport that hands each request to a function: no sockets."""

    def __init__(self, reply: Any) -> None:
        self.reply = reply
        self.sent: list[Request] = []

    async def send(self, request: Request) -> Answer:
        self.sent.append(request)
        if isinstance(self.reply, BaseException):
            raise self.reply
        return self.reply


def kraken(reply: Any) -> tuple[KrakenWire, Memory]:
    wire = KrakenWire(
        Secret("doc-key"),
        Secret(DOC_SECRET),
        "https://kraken.test",
        exchange="kraken",
        key_id="k",
        clock=ManualClock(),
    )
    return wire, Memory(reply)


def ok(result: Any) -> Answer:
    return Answer(200, {}, orjson.dumps({"error": [], "result": result}))


ORDER = PrivateCall(
    "AddOrder",
    {"ordertype": "limit", "pair": "XBTUSD", "price": "37500", "type": "buy", "volume": "1.25"},
)


async def test_kraken_builds_the_documented_request() -> None:
    wire, memory = kraken(ok({"txid": ["T-1"]}))
    assert await pipeline(wire, memory, key_id="k")(ORDER, DOC_NONCE) == {"txid": ["T-1"]}
    (request,) = memory.sent
    assert request.url == "https://kraken.test/0/private/AddOrder"
    assert request.body == DOC_BODY and request.headers["API-Sign"] == DOC_SIGN


@pytest.mark.parametrize(
    ("call", "reply", "error"),
    [
        (ORDER, NotConnected("refused"), TransientError),  # never sent
        (PrivateCall("Balance"), NoAnswer("reset"), TransientError),  # a read: retry
        (ORDER, NoAnswer("no answer in time"), AmbiguousOutcome),  # may have run
        (ORDER, Answer(200, {}, b'{"error": [], "res'), AmbiguousOutcome),  # cut short
        (PrivateCall("Balance"), Answer(200, {}, b"<html>"), ExchangeError),
        (ORDER, Answer(502, {}, b"<html>"), AmbiguousOutcome),
        (
            ORDER,
            Answer(200, {}, b'{"error": ["EAPI:Rate limit exceeded"], "result": {}}'),
            RateLimited,  # proves nothing ran: not ambiguous
        ),
    ],
)
async def test_a_failed_send_means_one_thing(
    call: PrivateCall, reply: Any, error: type[Exception]
) -> None:
    wire, memory = kraken(reply)
    with pytest.raises(error) as raised:
        await pipeline(wire, memory, key_id="k")(call, DOC_NONCE)
    assert type(raised.value) is error
    assert raised.value.endpoint == call.endpoint  # type: ignore[attr-defined]


async def test_an_answer_nested_past_the_parsers_depth_is_typed() -> None:
    deep = b"[" * 3000 + b"]" * 3000
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)  # eth-account raises it process-wide; the parser must cope
    try:
        for call, error in ((PrivateCall("Balance"), ExchangeError), (ORDER, AmbiguousOutcome)):
            wire, memory = kraken(Answer(200, {}, deep))
            with pytest.raises(error):
                await pipeline(wire, memory, key_id="k")(call, DOC_NONCE)
    finally:
        sys.setrecursionlimit(limit)


@pytest.mark.parametrize("encoding", [None, "gzip"])
async def test_an_oversized_answer_is_not_read_whole(encoding: str | None) -> None:
    """100 kB against a 10 kB cap; with gzip the wire carries a few hundred bytes (a short
    Content-Length) that would inflate past the cap: counted as inflated, never read whole."""

    async def huge(request: web.Request) -> web.Response:
        if encoding is None:
            return web.Response(body=b"x" * 100_000)
        packed = gzip.compress(b"x" * 100_000)
        return web.Response(body=packed, headers={"Content-Encoding": encoding})

    app = web.Application()
    app.router.add_post("/0/private/{method}", huge)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    wire = KrakenWire(
        Secret("doc-key"),
        Secret(DOC_SECRET),
        f"http://127.0.0.1:{port}",
        exchange="kraken",
        key_id="k",
        clock=ManualClock(),
    )
    try:
        async with aiohttp.ClientSession() as session:
            transport = AiohttpTransport(session, max_answer=10_000)
            with pytest.raises(TransientError, match="over 10000 bytes"):
                await pipeline(wire, transport, key_id="k")(PrivateCall("Balance"), 1)
            with pytest.raises(AmbiguousOutcome, match="over 10000 bytes"):
                await pipeline(wire, transport, key_id="k")(ORDER, 2)
    finally:
        await runner.cleanup()


DEEP_SYNTHETIX = """
import sys
import eth_account  # noqa: F401  (py_ecc raises the recursion limit process-wide)
from framework.clock import ManualClock
from framework.errors import OrderlyError
from framework.exchanges.synthetix.wire import SynthetixWire
from framework.secret import Secret

print("recursion limit", sys.getrecursionlimit(), flush=True)
wire = SynthetixWire(Secret("0x" + "11" * 32), 1, "http://x", key_id="k", clock=ManualClock(),
                     expires_after_s=None, expires_unit="s", envelope="params")
deep = b"[" * 200_000 + b"]" * 200_000
try:
    wire.answer("placeOrders", 200, deep, mutating=True)
except OrderlyError as exc:
    print("typed", type(exc).__name__, flush=True)
"""


def test_a_synthetix_answer_nested_200000_deep_is_a_typed_error_not_a_crash() -> None:
    done = subprocess.run(
        [sys.executable, "-c", DEEP_SYNTHETIX], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-1000:])  # -11 was SIGSEGV
    assert "typed ExchangeError" in done.stdout


def test_depth_is_counted_outside_strings_only() -> None:
    nested_text = b'{"a": "' + b"[" * 5000 + b'"}'  # brackets inside a string: depth 1
    assert decode_json(nested_text) == {"a": "[" * 5000}
    assert decode_json(b"[" * 600 + b"]" * 600) is None
    assert decode_json(b"[" * 100 + b"]" * 100) is not None


def bitunix_wire(clock: ManualClock) -> Any:
    from framework.exchanges.bitunix.wire import BitunixWire

    # secret values are redacted from every later log line: never a letter or a common word
    key, secret = Secret("bitunix-clock-test-key-7f3a"), Secret("bitunix-clock-test-secret-9c1d")
    return BitunixWire(key, secret, "http://x", key_id="k", clock=clock)


def test_only_a_successful_believable_answer_teaches_the_clock() -> None:
    """Bitunix took its offset from any answer's Date (error pages included) and Synthetix
    from any timestamp: one ``timestamp: 99999999999999999999`` put every later
    ``expiresAfter`` near 1e17."""
    from framework.exchanges.synthetix.wire import SynthetixWire

    clock = ManualClock(wall_ns=1_800_000_000 * 10**9)
    bitunix = bitunix_wire(clock)
    balance = PrivateCall("GET /api/v1/futures/account", {})
    ahead = {"Date": "Fri, 15 Jan 2027 08:00:30 GMT"}  # 30 s ahead of the clock
    page = Answer(502, ahead, b"<html>bad gateway</html>")
    bitunix.build(balance, "n1")
    with pytest.raises(TransientError):
        bitunix.parse(balance, page)
    assert bitunix.clock_offset_ms == 0.0  # an error page teaches nothing
    bitunix.build(balance, "n2")
    bitunix.parse(balance, Answer(200, ahead, b'{"code": 0, "data": {}}'))
    assert 29_000 <= bitunix.clock_offset_ms <= 31_000
    bitunix.build(balance, "n3")
    far = {"Date": "Sat, 01 Jan 2050 00:00:00 GMT"}
    bitunix.parse(balance, Answer(200, far, b'{"code": 0, "data": {}}'))
    assert 29_000 <= bitunix.clock_offset_ms <= 31_000  # not believed; kept

    snx = SynthetixWire(
        Secret("0x" + "11" * 32),
        1,
        "http://x",
        key_id="k",
        clock=clock,
        expires_after_s=30,
        expires_unit="s",
        envelope="params",
    )
    absurd = b'{"status": "ok", "response": {}, "timestamp": 99999999999999999999}'
    snx.answer("getSubAccount", 200, absurd, mutating=False)
    assert snx.clock_offset_ms == 0.0 and snx.expires_after() == 1_800_000_030
    error = b'{"status": "error", "error": {"message": "x"}, "timestamp": 1800000050000}'
    with pytest.raises(OrderlyError):
        snx.answer("getSubAccount", 400, error, mutating=False)
    assert snx.clock_offset_ms == 0.0
    good = b'{"status": "ok", "response": {}, "timestamp": 1800000050000}'
    snx.answer("getSubAccount", 200, good, mutating=False)
    assert snx.clock_offset_ms == 50_000


def test_the_clock_offset_is_a_median_of_recent_samples() -> None:
    """One odd sample among sound ones moves nothing; a lasting change wins after three;
    a sample past an hour is refused; under a second is noise."""
    offsets = ClockOffset("test")
    assert [offsets.observe(ms) for ms in (0, 0, 50_000, 0)] == [0, 0, 0, 0]
    assert [offsets.observe(5_000) for _ in range(3)][-1] == 5_000
    assert offsets.observe(9 * 3_600_000) == 5_000  # refused
    assert ClockOffset("test").observe(400) == 0.0
