"""Synthetix perps registers itself: ``[exchange] name = "synthetix"`` and its own keys."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from framework.registry import ExchangeSpec, register

if TYPE_CHECKING:
    from framework.config import Config


class SynthetixSettings(BaseModel):
    """Synthetix's keys in ``[exchange]``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sub_account_id: int | None = Field(
        None, ge=1, description="Synthetix subaccount the key trades (required)"
    )
    expires_after_s: float | None = Field(
        30.0, gt=0, description="Synthetix: a signed action expires this long after signing"
    )
    expires_unit: Literal["s", "ms"] = Field(
        "ms", description="Synthetix expiresAfter unit: ms on REST (the official SDK; see README)"
    )
    read_nonce: bool = Field(
        True,
        description="Synthetix: sign reads with a nonce, as the official SDK does (false: the"
        " docs' reads without one)",
    )
    rate_tokens: float = Field(
        1000.0, gt=0, description="Synthetix: the subaccount's token bucket (fee tier)"
    )
    rate_window_s: float = Field(10.0, gt=0, description="Synthetix: the bucket's refill period")

    @model_validator(mode="after")
    def _needs_a_subaccount(self) -> SynthetixSettings:
        if self.sub_account_id is None:
            raise ValueError("sub_account_id is required for synthetix")
        return self


def check_secret(value: str) -> str | None:
    """A signing key is 32 bytes of hex (0x optional)."""
    digits = value.removeprefix("0x")
    if len(digits) != 64 or any(c not in "0123456789abcdefABCDEF" for c in digits):
        return "is not a private key: 64 hex digits, with or without 0x"
    return None


PUBLIC = "https://papi.synthetix.io"


async def listed_pairs(config: Config) -> set[str] | None:
    """Which of the configured symbols Synthetix has a book for: each is asked with
    ``getOrderbook`` (the public call the venue reads prices with). A refusal as a bad
    request (HTTP 400/404) means not listed; anything else unclear, or no answer: None."""
    import aiohttp  # here: registering an exchange stays cheap

    base = (config.exchange.base_url or PUBLIC).rstrip("/")
    listed: set[str] = set()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            for pair in config.strategy.pairs if config.strategy else ():
                body = {"params": {"action": "getOrderbook", "symbol": pair, "limit": 5}}
                async with http.post(base + "/v1/info", json=body) as answer:
                    reply = await answer.json(content_type=None)
                    status = reply.get("status") if isinstance(reply, dict) else None
                    if status == "ok":
                        listed.add(pair)
                    elif status != "error" or answer.status not in (400, 404):
                        return None
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None
    return listed


SPEC = register(
    ExchangeSpec(
        name="synthetix",
        venue="framework.exchanges.synthetix.venue:open_venue",
        settings=SynthetixSettings,
        secrets=("ORDERLY_SYNTHETIX_PRIVATE_KEY",),
        secret_checks={"ORDERLY_SYNTHETIX_PRIVATE_KEY": check_secret},
        pairs=listed_pairs,
    )
)
