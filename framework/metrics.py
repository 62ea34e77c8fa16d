"""Prometheus metrics: with ``[runner] metrics_port`` set, ``orderly run`` serves
``/metrics`` (Prometheus text format, via prometheus-client) on ``metrics_host``
(127.0.0.1 unless configured) with the numbers of the live summary line, read from the bot
when scraped: nothing is counted twice and a call pays nothing for it.

Every series carries ``exchange``, ``key_id`` (the key's short hash, never the key) and
``strategy``; the lane's calls are also split by ``outcome``. A port that cannot be bound is
said on the terminal and the bot trades on without metrics: monitoring never stops trading.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from framework.log import get_logger
from framework.tally import Summary

log = get_logger("framework.metrics")
Kind = type[CounterMetricFamily] | type[GaugeMetricFamily]


class SummaryCollector(Collector):
    """The summary's numbers as Prometheus metrics, read at each scrape."""

    def __init__(self, summary: Callable[[], Summary], labels: Mapping[str, str]) -> None:
        self._summary = summary
        self._names = list(labels)
        self._values = list(labels.values())

    def _one(self, kind: Kind, name: str, text: str, value: float) -> Metric:
        family = kind(name, text, labels=self._names)
        family.add_metric(self._values, value)
        return family

    def collect(self) -> Iterator[Metric]:
        s = self._summary()
        lane, counter, gauge = s.lane, CounterMetricFamily, GaugeMetricFamily
        calls = CounterMetricFamily(
            "orderly_calls",
            "private calls sent through the key's lane, by outcome",
            labels=[*self._names, "outcome"],
        )
        for outcome in ("accepted", "refused", "rate_limited", "failed"):
            calls.add_metric([*self._values, outcome], getattr(lane, outcome))
        yield calls
        yield self._one(counter, "orderly_nonces_sent", "nonces sent on the key", lane.sent)
        yield self._one(counter, "orderly_lane_paused", "times the lane paused", lane.paused)
        yield self._one(counter, "orderly_fills", "fills delivered to the strategy", s.fills)
        yield self._one(counter, "orderly_orders_rejected", "orders rejected", s.rejected)
        yield self._one(counter, "orderly_hook_errors", "hooks that failed", s.hook_errors)
        yield self._one(gauge, "orderly_open_orders", "orders open now", s.open_orders)
        yield self._one(gauge, "orderly_tick_lag_seconds", "age of the last tick", s.tick_lag)
        yield self._one(gauge, "orderly_uptime_seconds", "time since start", s.uptime_s)
        running = s.state == "running"
        yield self._one(gauge, "orderly_strategy_running", "1 while hooks run", running)
        if s.pnl is not None:
            pnl = float(s.pnl)
            yield self._one(gauge, "orderly_pnl", "cash plus positions at the mid", pnl)


async def serve_metrics(
    host: str,
    port: int,
    summary: Callable[[], Summary],
    labels: Mapping[str, str],
    *,
    say: Callable[[str], None],
) -> None:
    """Serve ``/metrics`` until cancelled (``port`` 0: any free port, said on the terminal)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SummaryCollector(summary, labels))

    async def metrics(request: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            log.error("metrics_not_served", host=host, port=port, error=str(exc))
            say(f"metrics: cannot listen on {host}:{port} ({exc.strerror or exc}); no /metrics")
            return
        bound = runner.addresses[0][1]
        log.info("metrics_served", host=host, port=bound)
        say(f"metrics on http://{host}:{bound}/metrics")
        await asyncio.Event().wait()  # until the bot stops (cancelled)
    finally:
        await runner.cleanup()
