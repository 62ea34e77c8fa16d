"""The sender's side of a shared key (framework/shared.py): hold the lease, read the
calls in arrival order through the consumer group, run them through the local strict lane,
answer each caller; on taking over, warm up and claim what the old sender left. Mixed into
:class:`~framework.shared.SharedLane`."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import redis
import redis.asyncio

from framework.call import LaneStats, PrivateCall, Wire
from framework.clock import Clock
from framework.dispatch import Lane
from framework.errors import AmbiguousOutcome, OrderlyError, StateError
from framework.log import get_logger
from framework.nonce.fenced import FencedStore, Lease
from framework.nonce.source import Nonce, NonceSource
from framework.nonce.store import NonceStore
from framework.shared_messages import call_of, error_data

if TYPE_CHECKING:
    from framework.shared import Sharing

log = get_logger("framework.shared")

GROUP = "senders"


class SenderRole:
    """What the sender needs of the shared lane it is mixed into."""

    sharing: Sharing
    key_id: str
    exchange: str
    process: str
    _redis: redis.asyncio.Redis
    _keys: dict[str, str]
    _lease: Lease
    _wire: Wire
    _mutating: Callable[[str], bool]
    _make_source: Callable[[NonceStore], NonceSource]
    _local_store: NonceStore
    _warmup: PrivateCall
    _clock: Clock
    _lane_options: dict[str, Any]
    _trouble: BaseException | None
    _lane: Lane | None
    _handlers: set[asyncio.Task[None]]
    _entry_of: dict[int, str]
    _closing: bool
    caller_stats: LaneStats

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
