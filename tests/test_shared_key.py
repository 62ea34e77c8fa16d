"""Several processes on one API key through Redis (framework/shared.py), against a real
redis-server the tests start and stop themselves."""

from __future__ import annotations

import asyncio
import io
import itertools
import os
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio

from framework.cli import main as orderly
from framework.errors import AmbiguousOutcome, TransientError
from framework.exchanges.kraken.client import KrakenClient
from framework.nonce import SqliteStore
from framework.nonce.fenced import names
from framework.nonce.history import NonceHistory
from framework.sandbox import Sandbox
from framework.shared import Sharing
from framework.shared_limits import SharedSpacing
from tests.conformance.bitunix_server import BitunixServer
from tests.helpers.redis_server import RedisServer
from tests.test_runner import ROOT


def shared_client(
    creds: tuple[str, str], url: str, state: Path, redis_url: str, **options: Any
) -> KrakenClient:
    state.mkdir(parents=True, exist_ok=True)
    return KrakenClient(
        *creds,
        url,
        store=SqliteStore(state / "nonces.sqlite"),
        history=NonceHistory(state / "history.jsonl"),
        tier=None,
        sharing=Sharing(redis_url, ttl_s=2.0),
        **options,
    )


async def test_two_clients_sharing_nothing_but_redis_never_refuse_a_nonce(
    tmp_path: Path, creds: tuple[str, str], redis_server: RedisServer
) -> None:
    async with Sandbox(dict([creds]), delay_ms=(0, 5), seed=2) as sandbox:
        async with (
            shared_client(creds, sandbox.base_url, tmp_path / "a", redis_server.url) as a,
            shared_client(creds, sandbox.base_url, tmp_path / "b", redis_server.url) as b,
        ):

            async def calls(kraken: KrakenClient) -> None:
                for _ in range(5):
                    await kraken.balance()

            async with asyncio.timeout(30):
                await asyncio.gather(*(calls(k) for k in (a, b) for _ in range(16)))
        (stats,) = sandbox.stats().values()
        nonces = sandbox.accepted_nonces(creds[0])
    assert stats["invalid_nonce"] == 0
    assert all(y > x for x, y in itertools.pairwise(nonces))
    assert len(nonces) >= 160


ROUNDS = 4


def live(workers: list[Worker]) -> list[Worker]:
    return [w for w in workers if w.process.returncode is None]


async def until(done: Callable[[], bool]) -> None:
    while not done():  # noqa: ASYNC110 - other processes change the state
        await asyncio.sleep(0.02)


class Worker:
    def __init__(self, process: asyncio.subprocess.Process, name: str) -> None:
        self.process, self.name = process, name
        self.placed: dict[str, str] = {}
        self.sender_at: list[float] = []
        self.done = False
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while line := (await self.process.stdout.readline()).decode().split():
            if line[0] == "sender":
                self.sender_at.append(float(line[1]))
            elif line[0] == "placed":
                self.placed[line[1]] = line[2]
            elif line[0] == "done":
                self.done = True


async def start_worker(
    name: str, url: str, redis_url: str, tmp: Path, creds: tuple[str, str], rounds: int
) -> Worker:
    env = {**os.environ, "ORDERLY_TEST_API_KEY": creds[0], "ORDERLY_TEST_API_SECRET": creds[1]}
    err = open(tmp / f"{name}.err", "w")  # noqa: SIM115, ASYNC230 - read when a worker hangs
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.helpers.shared_worker",
        url,
        redis_url,
        str(tmp / name),
        name,
        str(rounds),
        stdout=asyncio.subprocess.PIPE,
        stderr=err,
        cwd=ROOT,
        env=env,
    )
    err.close()  # the child has its own descriptor
    return Worker(process, name)


async def test_four_processes_and_a_sender_killed_five_times(
    tmp_path: Path, creds: tuple[str, str], redis_server: RedisServer
) -> None:
    """4 processes x 16 coroutines on one key, sharing nothing but Redis, against a sandbox
    answering after 0-5 ms; the sender is killed (SIGKILL) five times and replaced. Each
    takeover is under 2 s (lease TTL 1 s); no nonce is refused; every order a live caller
    placed is at the exchange exactly once."""
    rng = random.Random(4)
    async with Sandbox(dict([creds]), delay_ms=(0, 5), seed=4) as sandbox:
        url = sandbox.base_url
        workers = [
            await start_worker(f"w{i}", url, redis_server.url, tmp_path, creds, ROUNDS)
            for i in range(4)
        ]
        takeovers = []
        async with asyncio.timeout(40):
            for kill in range(5):
                await asyncio.sleep(rng.uniform(0.1, 0.3))
                await until(lambda: any(w.sender_at for w in live(workers)))
                senders = [w for w in live(workers) if w.sender_at]
                victim = max(senders, key=lambda w: w.sender_at[-1])
                victim.process.send_signal(signal.SIGKILL)
                killed_at = time.monotonic()
                await victim.process.wait()
                workers.append(
                    await start_worker(f"r{kill}", url, redis_server.url, tmp_path, creds, ROUNDS)
                )
                await until(
                    lambda at=killed_at: any(w.sender_at[-1:] > [at] for w in live(workers))  # type: ignore[misc]
                )
                new = max(w.sender_at[-1] for w in live(workers) if w.sender_at)
                takeovers.append(new - killed_at)
            try:
                for worker in workers:
                    if worker.process.returncode is None:
                        await asyncio.wait_for(worker.process.wait(), 15)
                        await worker.reader
            except TimeoutError:
                for w in live(workers):
                    print("HUNG", w.name, len(w.placed), w.sender_at, flush=True)
                    w.process.send_signal(signal.SIGUSR1)
                await asyncio.sleep(1)
                for w in live(workers):
                    print((tmp_path / f"{w.name}.err").read_text()[-6000:])
                    w.process.kill()
                raise
        (stats,) = sandbox.stats().values()
        at_exchange = Counter(o.cl_ord_id for o in sandbox.engine.orders.values())
        nonces = sandbox.accepted_nonces(creds[0])
    survivors = [w for w in workers if w.process.returncode == 0]
    assert all(w.done for w in survivors) and len(survivors) >= 4
    assert len(takeovers) == 5 and max(takeovers) < 2.0, takeovers
    assert stats["invalid_nonce"] == 0
    assert all(y > x for x, y in itertools.pairwise(nonces))
    assert max(at_exchange.values()) == 1  # nothing placed twice
    histories = [str(tmp_path / w.name / "history.jsonl") for w in workers]
    merged = ["nonces", "check", "--file", histories[0]]
    for other in histories[1:]:
        merged += ["--also", other]
    assert orderly(merged) == 0  # every sender's nonces, merged in time: strictly rising
    for worker in survivors:
        for cl_ord_id, state in worker.placed.items():
            assert state in ("accepted", "filled", "partially_filled"), (cl_ord_id, state)
            assert at_exchange[cl_ord_id] == 1


async def test_redis_killed_and_restarted_keeps_the_floor_and_a_wipe_never_regresses(
    tmp_path: Path, creds: tuple[str, str], redis_server: RedisServer
) -> None:
    """Append-only persistence keeps the floor over a SIGKILL of redis-server; when Redis
    loses everything (FLUSHALL), the next sender starts from its local floor and the clock."""
    probe = redis.Redis.from_url(redis_server.url)
    async with (
        Sandbox(dict([creds]), delay_ms=(0, 2), seed=6) as sandbox,
        shared_client(creds, sandbox.base_url, tmp_path / "a", redis_server.url) as a,
    ):
        floor_key = names("kraken", a.key_id)["floor"]

        async def calls(count: int) -> None:
            async with asyncio.timeout(20):
                for _ in range(count):
                    await a.balance()

        await calls(10)
        before = int(probe.get(floor_key) or 0)
        redis_server.kill()
        redis_server.start()
        probe = redis.Redis.from_url(redis_server.url)
        assert int(probe.get(floor_key) or 0) >= before > 0  # the floor survived
        await calls(10)
        redis_server.wipe()
        await calls(10)
        (stats,) = sandbox.stats().values()
        nonces = sandbox.accepted_nonces(creds[0])
    assert stats["invalid_nonce"] == 0 and len(nonces) >= 30
    assert all(y > x for x, y in itertools.pairwise(nonces))


async def test_a_sender_paused_past_its_lease_sends_nothing_that_hurts(
    tmp_path: Path, creds: tuple[str, str], redis_server: RedisServer
) -> None:
    """SIGSTOP the sender for three lease TTLs: another process takes over; SIGCONT: the
    old one finds its lease gone and stops sending (a call it had started may reach the
    exchange and be refused, counted, far from the lockout)."""
    async with Sandbox(dict([creds]), delay_ms=(0, 2), seed=7) as sandbox:
        url = sandbox.base_url
        workers = [
            await start_worker(f"p{i}", url, redis_server.url, tmp_path, creds, 12)
            for i in range(2)
        ]
        async with asyncio.timeout(40):
            await until(lambda: any(w.sender_at for w in workers))
            (sender,) = [w for w in workers if w.sender_at]
            (other,) = [w for w in workers if w is not sender]
            sender.process.send_signal(signal.SIGSTOP)
            await until(lambda: bool(other.sender_at))
            await asyncio.sleep(2.0)
            sender.process.send_signal(signal.SIGCONT)
            for worker in workers:
                await worker.process.wait()
                await worker.reader
        (stats,) = sandbox.stats().values()
    assert all(w.done for w in workers)
    assert stats["locked_out"] == 0 and stats["invalid_nonce"] <= 3


async def test_orderly_sender_serves_callers_and_status_shows_it(
    tmp_path: Path,
    creds: tuple[str, str],
    redis_server: RedisServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`orderly sender CONFIG` holds the key with no strategy; a caller that may not send
    gets its calls through it; `orderly nonces status` names the sender and the floor."""
    config = tmp_path / "sender.toml"
    async with Sandbox(dict([creds]), delay_ms=(0, 2), seed=8) as sandbox:
        config.write_text(f"""
[exchange]
name = "kraken"
base_url = "{sandbox.base_url}"
tier = "none"
[state]
store = "{tmp_path / "sender" / "nonces.sqlite"}"
history = "{tmp_path / "sender" / "history.jsonl"}"
backend = "redis"
redis_url = "{redis_server.url}"
""")
        env = {
            **os.environ,
            "ORDERLY_KRAKEN_API_KEY": creds[0],
            "ORDERLY_KRAKEN_API_SECRET": creds[1],
        }
        sender = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "framework.cli",
            "sender",
            str(config),
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
            env=env,
        )
        try:
            assert sender.stdout is not None
            assert b"sending for key" in await sender.stdout.readline()
            caller = KrakenClient(
                *creds,
                sandbox.base_url,
                store=SqliteStore(tmp_path / "caller" / "nonces.sqlite"),
                history=NonceHistory(None),
                tier=None,
                sharing=Sharing(redis_server.url, sender=False),
            )
            async with caller, asyncio.timeout(20):
                for _ in range(5):
                    assert await caller.balance()
            assert orderly(["nonces", "status", "--config", str(config)]) == 0
            status = capsys.readouterr().out
            assert f"kraken:{caller.key_id}  sender" in status and "floor" in status
        finally:
            sender.send_signal(signal.SIGTERM)
            assert await sender.wait() == 0
        (stats,) = sandbox.stats().values()
    assert stats["invalid_nonce"] == 0 and stats["accepted"] >= 6  # warm-up + 5


async def test_bitunix_processes_share_the_rate_limits_through_redis(
    redis_server: RedisServer,
) -> None:
    """Three bot processes of one Bitunix key place orders as fast as they may; the server
    enforces place_order's 10 a second per uid: none refused (each with a pacer of its own,
    they are: tests of the pacer alone show it)."""
    key, secret = "shared-bitunix-api-key-4d1f", "shared-bitunix-api-secret-9a2c"
    env = {**os.environ, "ORDERLY_TEST_API_KEY": key, "ORDERLY_TEST_API_SECRET": secret}
    async with BitunixServer({key: secret}, seed=9) as server:
        bots = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.helpers.bitunix_worker",
                server.base_url,
                redis_server.url,
                f"bot{n}",
                "8",
                stdout=asyncio.subprocess.PIPE,
                cwd=ROOT,
                env=env,
            )
            for n in range(3)
        ]
        async with asyncio.timeout(30):
            outputs = [(await bot.communicate())[0] for bot in bots]
    assert all(b"done" in out for out in outputs)
    assert server.refused == {} and len(server.orders) == 24


async def test_processes_sharing_a_bitunix_limit_are_spaced_evenly_not_in_bursts(
    redis_server: RedisServer,
) -> None:
    """The server counts calls when they arrive, the pacer when they are granted: a burst
    granted at the edge of a window meets the next burst if a few calls arrive late (CI
    saw 10006 that way). Grants shared by two processes are therefore spaced evenly, one
    interval apart on Redis's clock, like the in-process pacer's."""
    clients = [redis.asyncio.Redis.from_url(redis_server.url) for _ in range(2)]
    interval = 1 / (10 * 0.9)  # place_order: 10/s at 90%
    limits = [SharedSpacing(client, "orderly:test:limit", interval) for client in clients]
    try:
        slots = await asyncio.gather(*(limits[n % 2].take() for n in range(20)))
    finally:
        for client in clients:
            await client.aclose()
    interval_us = int(interval * 1_000_000)
    gaps = [b - a for a, b in itertools.pairwise(sorted(slots))]
    assert min(gaps) >= interval_us


async def test_redis_away_is_transient_for_a_read_and_ambiguous_for_an_order(
    tmp_path: Path, creds: tuple[str, str], redis_server: RedisServer
) -> None:
    """A request Redis may not have queued: a read can be asked again; an order may have
    been queued and run, so the order layer must reconcile it. Neither stops the bot."""
    async with (
        Sandbox(dict([creds])) as sandbox,
        shared_client(creds, sandbox.base_url, tmp_path / "a", redis_server.url) as a,
    ):
        await a.balance()
        redis_server.kill()
        async with asyncio.timeout(20):
            with pytest.raises(TransientError, match="Redis unreachable"):
                await a.balance()
            with pytest.raises(AmbiguousOutcome, match="Redis unreachable"):
                await a.add_order(
                    pair="XBTUSD", side="buy", ordertype="limit", volume="0.001", price="1000"
                )
        redis_server.start()


async def test_two_bots_on_one_key_and_one_journal_keep_to_their_own_orders(
    tmp_path: Path,
    creds: tuple[str, str],
    redis_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two bots share a key (through Redis) and the journal's file. Stopping one cancels its
    own resting order, not the other's; a restarted bot inherits its own open order, never
    the other bot's."""
    from framework.config import load
    from framework.runner import EXIT_OK, Runner

    monkeypatch.setenv("ORDERLY_KRAKEN_API_KEY", creds[0])
    monkeypatch.setenv("ORDERLY_KRAKEN_API_SECRET", creds[1])
    journal = tmp_path / "orders.sqlite"

    def config(name: str, cancel: bool, base_url: str) -> Path:
        path = tmp_path / f"{name}.toml"  # the bot's name in the journal: bot-a, bot-b
        path.write_text(f"""
[exchange]
name = "kraken"
base_url = "{base_url}"
tier = "none"
[strategy]
class = "tests.helpers.strategies:Rester"
pairs = ["XBTUSD"]
[strategy.params]
out = "{tmp_path / name}"
[runner]
tick_interval_s = 0.05
order_poll_s = 0.1
summary_interval_s = 5
streams = false
cancel_on_stop = {str(cancel).lower()}
dead_man_timeout_s = 0
log_file = "{tmp_path / name}.log"
[state]
store = "{tmp_path / name}.sqlite"
history = "{tmp_path / name}.jsonl"
journal = "{journal}"
backend = "redis"
redis_url = "{redis_server.url}"
""")
        return path

    def lines(name: str, kind: str) -> list[str]:
        path = tmp_path / f"{name}.{kind}"
        return path.read_text().splitlines() if path.exists() else []

    async def run(name: str, cancel: bool, url: str) -> tuple[Runner, asyncio.Task[int]]:
        runner = Runner(load(config(name, cancel, url)), out=io.StringIO())
        return runner, asyncio.create_task(runner.main(install_signals=False))

    async with Sandbox(dict([creds])) as sandbox, asyncio.timeout(30):
        a, a_task = await run("bot-a", False, sandbox.base_url)
        b, b_task = await run("bot-b", True, sandbox.base_url)
        while not (lines("bot-a", "placed") and lines("bot-b", "placed")):  # noqa: ASYNC110
            await asyncio.sleep(0.05)  # each bot has its order's answer (bounded by the timeout)
        (a_order,), (b_order,) = lines("bot-a", "placed"), lines("bot-b", "placed")
        b.request_stop("test: b stops")  # cancel_on_stop: its own order only
        assert await b_task == EXIT_OK
        a.request_stop("test: a stops")  # leaves its order resting
        assert await a_task == EXIT_OK
        resting = {o.cl_ord_id for o in sandbox.engine.open.values()}
        assert resting == {a_order} and b_order not in resting  # b stopped: only its own
        b, b_task = await run("bot-b", True, sandbox.base_url)  # b again: inherits nothing
        a, a_task = await run("bot-a", True, sandbox.base_url)  # a again: its own order
        while len(lines("bot-a", "inherited")) < 2 or len(lines("bot-b", "inherited")) < 2:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        for runner in (a, b):
            runner.request_stop("test finished")
        assert await a_task == EXIT_OK and await b_task == EXIT_OK
    assert lines("bot-a", "inherited") == ["", a_order]
    assert lines("bot-b", "inherited") == ["", ""]
