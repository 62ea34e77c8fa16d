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
    TransientError,
)
from framework.log import get_logger
from framework.nonce.fenced import Lease, names
from framework.nonce.source import NonceSource
from framework.nonce.store import NonceStore
from framework.shared_messages import call_data, error_of
from framework.shared_sender import SenderRole

log = get_logger("framework.shared")


@dataclass(frozen=True, slots=True)
class Sharing:
    """How a key is shared: the Redis URL, the lease's TTL, and whether this process may
    send (``sender=False``: a caller only)."""

    redis_url: str
    ttl_s: float = 2.0
    sender: bool = True


class SharedLane(SenderRole):
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
