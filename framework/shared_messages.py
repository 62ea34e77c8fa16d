"""How a call and its answer cross processes through Redis (framework/shared.py): plain
JSON. A call is its endpoint, its parameters and its time window (as wall time: the loop
clocks of two processes do not agree); an error is its class name in Orderly's tree and its
fields, so a caller raises the same typed error the sender's lane raised."""

from __future__ import annotations

from typing import Any

from framework import errors
from framework.call import PrivateCall
from framework.clock import Clock, wall
from framework.errors import OrderlyError


def call_data(call: PrivateCall, clock: Clock) -> dict[str, Any]:
    data: dict[str, Any] = {"endpoint": call.endpoint, "params": dict(call.params)}
    if call.not_after is not None:  # the caller's loop time, as wall time for the sender
        data["not_after_wall"] = wall(clock) + (call.not_after - clock.monotonic())
    return data


def call_of(data: dict[str, Any], clock: Clock) -> PrivateCall:
    not_after = data.get("not_after_wall")
    return PrivateCall(
        data["endpoint"],
        data.get("params") or {},
        None if not_after is None else clock.monotonic() + (not_after - wall(clock)),
    )


def error_data(exc: BaseException) -> dict[str, Any]:
    if not isinstance(exc, OrderlyError):
        exc = errors.ExchangeError(f"{type(exc).__name__}: {exc}")
    return {
        "type": type(exc).__name__,
        "message": exc.message,
        "exchange": exc.exchange,
        "code": exc.code,
        "key_id": exc.key_id,
        "endpoint": exc.endpoint,
    }


def error_of(data: dict[str, Any]) -> OrderlyError:
    cls = getattr(errors, str(data.get("type")), None)
    if not (isinstance(cls, type) and issubclass(cls, OrderlyError)):
        cls = errors.ExchangeError
    exc = cls.__new__(cls)
    OrderlyError.__init__(
        exc,
        str(data.get("message")),
        exchange=data.get("exchange"),
        code=data.get("code"),
        key_id=data.get("key_id"),
        endpoint=data.get("endpoint"),
    )
    if isinstance(exc, errors.LanePaused):
        exc.resume_in = 0.0
    return exc
