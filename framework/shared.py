"""One API key, several processes: a lane whose calls travel through Redis to the key's one
sender (``[state] backend = "redis"``).

    caller (any process) ──XADD──▶ orderly:<exchange>:<key>:calls ──XREADGROUP──▶ sender
    caller ◀──XREAD── orderly:reply:<process> ◀──XADD── result or typed error ──┘

Every process of the key is a caller and a candidate sender. The candidate that holds the
key's lease (framework/nonce/fenced.py) reads the calls in arrival order through a consumer
group and runs them through its own local strict :class:`~framework.dispatch.Lane`, whose
nonce floor is the fenced Redis floor: nonces are assigned in send order by one process, as
in a single process. A batch is one stream entry, so it stays contiguous.

Before a call is sent the sender marks its entry *sent* in Redis, and before each send it
checks that its lease is still surely held; a sender that cannot renew in time stops sending
at once and answers nothing more (the next sender does).

**Failover.** When the sender dies (or stops renewing), another candidate takes the lease
within the TTL, reserves above the floor (the reservation is fenced by the new epoch), sends
one cheap read first so the exchange refuses any straggler of the old sender, then claims
the calls the old sender left pending: one never marked sent goes out; a read that may have
been sent is sent again; a state-changing call that may have been sent is answered
:class:`~framework.errors.AmbiguousOutcome`, which the order layer reconciles by client
order id.

The shared lane offers the lane's interface (``submit``, ``submit_batch``, ``close``,
``stats``), so a venue does not know whether its sender is local or remote.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio

from framework.call import LaneStats, PrivateCall, Wire
from framework.clock import SYSTEM_CLOCK, Clock
from framework.dispatch import Lane
from framework.errors import (
    AmbiguousOutcome,
    LaneClosed,
    OrderlyError,
    StateError,
    TransientError,
)
from framework.log import get_logger
from framework.nonce.fenced import FencedStore, Lease, names
from framework.nonce.source import Nonce, NonceSource
from framework.nonce.store import NonceStore
from framework.shared_messages import call_data, call_of, error_data, error_of

log = get_logger("framework.shared")

GROUP = "senders"


@dataclass(frozen=True, slots=True)
class Sharing:
    """How a key is shared: the Redis URL, the lease's TTL, and whether this process may
    send (``sender=False``: a caller only)."""

    redis_url: str
    ttl_s: float = 2.0
    sender: bool = True


class SharedLane:
    """A key's lane across processes (see the module's text)."""

    def __init__(
        self,
        sharing: Sharing,
        *,
        key_id: str,
        exchange: str,
        wire: Wire,
        mutating: Callable[[str], bool],
        source: Callable[[NonceStore], NonceSource],
        local_store: NonceStore,
        warmup: PrivateCall,
        clock: Clock = SYSTEM_CLOCK,
        **lane_options: Any,
    ) -> None:
        self.sharing = sharing
        self.key_id = key_id
        self.exchange = exchange
        self._wire = wire
        self._mutating = mutating
        self._make_source = source
        self._local_store = local_store
        self._warmup = warmup
        self._clock = clock
        self._lane_options = lane_options
        self._keys = names(exchange, key_id)
        self.process = uuid.uuid4().hex
        self._reply_key = f"orderly:reply:{self.process}"
        # a bounded pool that waits for a free connection rather than fail a call
        self._redis: redis.asyncio.Redis = redis.asyncio.Redis(
            connection_pool=redis.asyncio.BlockingConnectionPool.from_url(
                sharing.redis_url, max_connections=32, timeout=None
            )
        )
        self._trouble: BaseException | None = None  # a handler lost Redis: resign
        self._lease = Lease(self._redis, self._keys, self.process, int(sharing.ttl_s * 1000))
        self._waiting: dict[str, asyncio.Future[Any]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._lane: Lane | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._entry_of: dict[int, str] = {}  # id(call) -> stream entry, for "sent" marks
        self._closing = False
        self.caller_stats = LaneStats()
        self.ordering = "strict (shared)"
        #: A shared lane never breaks for good: a sender that cannot send resigns the key.
        self.broken: OrderlyError | None = None

    @property
    def stats(self) -> LaneStats:
        return self._lane.stats if self._lane is not None else self.caller_stats

    @property
    def is_sender(self) -> bool:
        return self._lane is not None

    # --- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        if self._tasks:
            return
        self._tasks.append(asyncio.create_task(self._read_replies(), name="shared-replies"))
        if self.sharing.sender:
            self._tasks.append(asyncio.create_task(self._candidate(), name="shared-candidate"))

    async def close(self, grace: float | None = None) -> None:
        if self._closing:
            return
        self._closing = True
        if self._handlers:  # calls this process is sending for others: let them finish
            await asyncio.wait(list(self._handlers), timeout=grace)
        await self._resign()
        for task in self._tasks:
            task.cancel()
        # A read blocked in redis-py may not notice the cancel: closing the connections
        # ends it (seen under load: the reply reader stuck in XREAD after its cancel).
        _, stuck = await asyncio.wait(self._tasks, timeout=1.0)
        await self._redis.connection_pool.disconnect(inuse_connections=True)
        if stuck:
            await asyncio.wait(stuck, timeout=1.0)
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(LaneClosed("lane closed before the answer came"))
        await self._redis.aclose()

    # --- callers --------------------------------------------------------------------------

    async def submit(self, call: PrivateCall) -> Any:
        (result,) = await self._submit([call], batch=False)
        if isinstance(result, BaseException):
            raise result
        return result

    async def submit_batch(self, calls: Sequence[PrivateCall]) -> list[Any]:
        return await self._submit(list(calls), batch=True)

    async def _submit(self, calls: list[PrivateCall], *, batch: bool) -> list[Any]:
        if self._closing:
            raise LaneClosed("lane is closed", exchange=self.exchange, key_id=self.key_id)
        request = uuid.uuid4().hex
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[request] = future
        self.caller_stats.sent += len(calls)
        fields = {
            "id": request,
            "reply": self._reply_key,
            "batch": "1" if batch else "0",
            "calls": json.dumps([call_data(c, self._clock) for c in calls]),
        }
        try:
            await self._add(fields)
            answers: list[Any] = await future
        except asyncio.CancelledError:  # a call not yet sent is dropped by the sender
            with contextlib.suppress(redis.RedisError):
                await self._redis.set(f"{self._keys['cancelled']}:{request}", 1, ex=600)
            raise
        except redis.RedisError as exc:  # the request may or may not have reached Redis
            cls = AmbiguousOutcome if any(self._mutating(c.endpoint) for c in calls) else None
            raise (cls or TransientError)(
                f"Redis unreachable, the call may not have been queued: {exc}",
                exchange=self.exchange,
                key_id=self.key_id,
            ) from None
        finally:
            self._waiting.pop(request, None)
        return [error_of(a["error"]) if "error" in a else a.get("result") for a in answers]

    async def _add(self, fields: dict[str, str], tries: int = 5) -> None:
        """XADD the request; a lost connection is retried with the same request id (the
        sender runs one request id once, so a retry can never send a call twice)."""
        for attempt in range(tries):
            try:
                await self._redis.xadd(self._keys["calls"], fields)  # type: ignore[arg-type]
                return
            except redis.ConnectionError:
                if attempt == tries - 1:
                    raise
                await asyncio.sleep(0.1 * 2**attempt)

    async def _read_replies(self) -> None:
        last = "0-0"
        while True:
            try:
                last = await self._read_some_replies(last)
            except Exception as exc:  # Redis away, or a bug: never let the replies stop
                if self._closing:
                    return
                log.error("shared_replies_failed", key_id=self.key_id, exc_info=exc)
                await asyncio.sleep(0.2)

    async def _read_some_replies(self, last: str) -> str:
        found: Any = await self._redis.xread({self._reply_key: last}, block=1000, count=100)
        read = []
        for _, entries in found or []:
            for entry_id, fields in entries:
                read.append(entry_id)
                future = self._waiting.get(fields[b"id"].decode())
                if future is not None and not future.done():
                    future.set_result(json.loads(fields[b"answers"]))
        if read:
            await self._redis.xdel(self._reply_key, *read)  # one round trip for the batch
            last = read[-1].decode()
        return last

    # --- the sender -------------------------------------------------------------------------

    async def _candidate(self) -> None:
        """Try for the lease; once held, send until it is lost, then try again."""
        loop = asyncio.get_running_loop()
        period = min(self.sharing.ttl_s / 3, 0.1)  # a dead sender is replaced soon after expiry
        while not self._closing:
            try:
                started = loop.time()
                if await self._lease.acquire(started):
                    await self._serve()
                else:
                    await asyncio.sleep(period)
            except Exception as exc:  # Redis away, or a bug: stand down, then try again
                log.error("shared_sender_failed", key_id=self.key_id, exc_info=exc)
                await self._abandon()
                await asyncio.sleep(period)

    async def _ensure_group(self) -> None:
        with contextlib.suppress(redis.ResponseError):  # BUSYGROUP: it exists
            await self._redis.xgroup_create(self._keys["calls"], GROUP, id="0", mkstream=True)

    async def _serve(self) -> None:
        await self._ensure_group()  # again at each takeover: Redis may have lost it
        token = self._lease.token
        assert token is not None
        store = FencedStore(self.sharing.redis_url, self._keys, token, self._local_store)
        try:
            source = await asyncio.to_thread(self._make_source, store)
        except OrderlyError as exc:
            log.error("shared_sender_failed", key_id=self.key_id, error=str(exc))
            await self._lease.release()
            await asyncio.sleep(self.sharing.ttl_s)
            return
        lane = Lane(
            key_id=self.key_id,
            wire=self._marked,
            source=source,
            exchange=self.exchange,
            clock=self._clock,
            **self._lane_options,
        )
        lane.start()
        self._lane = lane
        log.info("shared_sender", key_id=self.key_id, epoch=self._lease.epoch)
        try:
            with contextlib.suppress(OrderlyError):  # the exchange refuses stragglers now
                await lane.submit(self._warmup)
            await self._claim_pending()
            renew = asyncio.create_task(self._keep_lease())
            try:
                await self._consume(lane, renew)
            finally:
                renew.cancel()
                await asyncio.gather(renew, return_exceptions=True)
        finally:
            await self._abandon()
            if lane.broken is not None:  # it cannot send: let another process take over
                log.error("shared_sender_resigns", key_id=self.key_id, error=str(lane.broken))
                with contextlib.suppress(redis.RedisError):
                    await self._lease.release()

    async def _keep_lease(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.sharing.ttl_s / 3)
            if not await self._lease.renew(loop.time()):
                log.error("shared_lease_lost", key_id=self.key_id, epoch=self._lease.epoch)
                return

    async def _consume(self, lane: Lane, renew: asyncio.Task[None]) -> None:
        while not renew.done() and not self._closing and lane.broken is None:
            if self._trouble is not None:
                self._trouble = None
                return
            found: Any = await self._redis.xreadgroup(
                GROUP, self.process, {self._keys["calls"]: ">"}, count=64, block=100
            )
            for _, entries in found or []:
                for entry_id, fields in entries:
                    self._handle(entry_id.decode(), fields, maybe_sent=False)

    async def _claim_pending(self) -> None:
        """Take over the calls an earlier sender read but did not answer."""
        start = "0-0"
        while True:
            reply: Any = await self._redis.xautoclaim(
                self._keys["calls"], GROUP, self.process, min_idle_time=0, start_id=start
            )
            start, entries = reply[0], reply[1]
            sent = await self._redis.hgetall(self._keys["sent"])
            for entry_id, fields in entries:
                if fields:
                    key = entry_id.decode()
                    self._handle(key, fields, maybe_sent=key.encode() in sent)
            if start in (b"0-0", "0-0"):
                return

    def _handle(self, entry: str, fields: dict[bytes, bytes], *, maybe_sent: bool) -> None:
        task = asyncio.create_task(self._run_safely(entry, fields, maybe_sent))
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

    async def _run_safely(self, entry: str, fields: dict[bytes, bytes], maybe_sent: bool) -> None:
        """One entry; if Redis fails under it, the sender resigns and the entry stays
        pending for the next sender (never silently dropped)."""
        try:
            await self._run(entry, fields, maybe_sent)
        except Exception as exc:
            log.error("shared_entry_failed", key_id=self.key_id, entry=entry, exc_info=exc)
            self._trouble = exc

    async def _run(self, entry: str, fields: dict[bytes, bytes], maybe_sent: bool) -> None:
        lane = self._lane
        assert lane is not None
        request = fields[b"id"].decode()
        calls = [call_of(d, self._clock) for d in json.loads(fields[b"calls"])]
        async with self._redis.pipeline(transaction=False) as check:
            check.exists(f"{self._keys['cancelled']}:{request}")
            check.set(f"{self._keys['seen']}:{request}", entry, nx=True, ex=3600)
            check.get(f"{self._keys['seen']}:{request}")
            cancelled, _, first = await check.execute()
        if cancelled or first.decode() != entry:  # gave up before it was sent, or a retry
            await self._done(entry)  # of an XADD whose first copy is already handled
            return
        if maybe_sent and any(self._mutating(c.endpoint) for c in calls):
            ambiguous = AmbiguousOutcome(
                "the key's sender died while this call may have been sent",
                exchange=self.exchange,
                key_id=self.key_id,
            )
            await self._answer(entry, fields, [{"error": error_data(ambiguous)}] * len(calls))
            return
        for call in calls:
            self._entry_of[id(call)] = entry
        try:
            if fields.get(b"batch") == b"1":
                results = await lane.submit_batch(calls)
            else:
                try:
                    results = [await lane.submit(calls[0])]
                except OrderlyError as exc:
                    results = [exc]
        finally:
            for call in calls:
                self._entry_of.pop(id(call), None)
        if self._lane is not lane or lane.broken is not None:  # the next sender answers
            return
        await self._answer(
            entry,
            fields,
            [
                {"error": error_data(r)} if isinstance(r, BaseException) else {"result": r}
                for r in results
            ],
        )

    async def _marked(self, call: PrivateCall, nonce: Nonce) -> Any:
        """The wire, after marking the call's entry sent, while the lease is surely held."""
        if not self._lease.holding(asyncio.get_running_loop().time()):
            raise StateError(
                "this process is no longer the key's sender (lease not renewed in time)",
                key_id=self.key_id,
            )
        entry = self._entry_of.get(id(call))
        if entry is not None:
            await self._redis.hset(self._keys["sent"], entry, "1")
        return await self._wire(call, nonce)

    async def _answer(self, entry: str, fields: dict[bytes, bytes], answers: list[Any]) -> None:
        reply = {"id": fields[b"id"], "answers": json.dumps(answers)}
        await self._done(entry, (fields[b"reply"].decode(), reply))

    async def _done(self, entry: str, reply: tuple[str, dict[str, Any]] | None = None) -> None:
        """Answer (if there is an answer) and forget the entry, in one round trip."""
        async with self._redis.pipeline(transaction=False) as batch:
            if reply is not None:
                batch.xadd(reply[0], reply[1])  # type: ignore[arg-type]
            batch.xack(self._keys["calls"], GROUP, entry)
            batch.xdel(self._keys["calls"], entry)
            batch.hdel(self._keys["sent"], entry)
            await batch.execute()

    async def _abandon(self) -> None:
        """Stop sending: the local lane closes at once; what it had not answered stays
        pending in Redis for the next sender."""
        lane, self._lane = self._lane, None
        if lane is not None:
            await lane.close(grace=0)

    async def _resign(self) -> None:
        await self._abandon()
        with contextlib.suppress(redis.RedisError):
            await self._lease.release()
