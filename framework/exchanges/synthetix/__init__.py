"""Synthetix off-chain perps: EIP-712 signer, error translation and the client.

Needs the optional extra ``orderly[synthetix]`` (eth-account)."""

from framework.exchanges.synthetix.client import SynthetixClient
from framework.exchanges.synthetix.signer import recover, sign_action, typed_data

__all__ = ["SynthetixClient", "recover", "sign_action", "typed_data"]
