"""Paper trading: the sandbox exchange started in-process on a free loopback port, and a
Kraken venue connected to it. No keys, no network.

The paper account's credentials are fixed and public (they only ever open this sandbox), so
its nonce floor and history keep one key id from run to run.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
from collections.abc import AsyncIterator

from framework.config import Config
from framework.exchanges.kraken.venue import KrakenVenue, kraken_venue
from framework.sandbox.auth import AuthRules
from framework.sandbox.faults import Fault, FaultRules
from framework.sandbox.market import MarketRules
from framework.sandbox.matching import OrderRules
from framework.sandbox.server import Sandbox

PAPER_KEY = "orderly-paper-trading-key"
PAPER_SECRET = base64.b64encode(hashlib.sha512(b"orderly paper trading").digest()).decode()


def _tier(config: Config) -> str | None:
    return None if config.sandbox.tier == "none" else config.sandbox.tier


def sandbox_from(config: Config) -> Sandbox:
    """A Sandbox with the ``[sandbox]`` settings and the paper account."""
    cfg = config.sandbox
    return Sandbox(
        {PAPER_KEY: PAPER_SECRET},
        rules=AuthRules(
            nonce_window=cfg.nonce_window,
            repeat_in_window=cfg.repeat_in_window,
            lockout_threshold=cfg.lockout_threshold,
            lockout_seconds=cfg.lockout_s,
            record_nonces=False,
        ),
        order_rules=OrderRules(
            duplicate_cl_ord_id_error=cfg.duplicate_cl_ord_id_error,
            unknown_order_error=cfg.unknown_order_error,
            partial_fill_probability=cfg.partial_fill_probability,
            balances=tuple(cfg.balances.items()),
        ),
        market=MarketRules(
            seed=cfg.seed if cfg.seed is not None else 1,
            step_s=cfg.step_s,
            volatility=cfg.volatility,
            spread_bps=cfg.spread_bps,
        ),
        tier=_tier(config),
        faults=FaultRules(
            faults=tuple(Fault(f.kind, f.probability, f.endpoints) for f in cfg.faults),
            seed=cfg.fault_seed,
            slow_s=cfg.slow_s,
            late_s=cfg.late_s,
        ),
        delay_ms=cfg.delay_ms,
        ws_drop_every_s=cfg.ws_drop_every_s,
        seed=cfg.seed,
        port=cfg.port,
    )


@contextlib.asynccontextmanager
async def open_venue(config: Config) -> AsyncIterator[KrakenVenue]:
    async with (
        sandbox_from(config) as sandbox,
        kraken_venue(
            config,
            PAPER_KEY,
            PAPER_SECRET,
            sandbox.base_url,
            "sandbox",
            tier=_tier(config),
            ws_urls=(sandbox.ws_url, sandbox.ws_url),
        ) as venue,
    ):
        venue.persistent = False  # its orders end with this process: nothing to adopt
        if venue.client.pacer is not None:  # and its rate counters start empty with it
            venue.client.pacer.idle_s = None
        yield venue
