"""EIP-712 signing of Synthetix trade actions (protocols.md 3.2-3.3), with eth-account.

Domain ``Synthetix`` / ``1`` / chainId 1 / zero ``verifyingContract`` (the troubleshooting
and signing pages; the viem example that leaves ``verifyingContract`` out is not followed).
JSON sends ``subAccountId`` and ``orderIds`` as strings; the signature hashes them as
uint256, so :func:`typed_data` takes integers.
"""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data

DOMAIN: dict[str, Any] = {
    "name": "Synthetix",
    "version": "1",
    "chainId": 1,
    "verifyingContract": "0x0000000000000000000000000000000000000000",
}


def _fields(*pairs: str) -> list[dict[str, str]]:
    return [{"name": name, "type": kind} for name, kind in (p.split(":") for p in pairs)]


TYPES: dict[str, list[dict[str, str]]] = {
    "EIP712Domain": _fields(
        "name:string", "version:string", "chainId:uint256", "verifyingContract:address"
    ),
    "Order": _fields(
        "symbol:string",
        "side:string",
        "orderType:string",
        "price:string",
        "triggerPrice:string",
        "quantity:string",
        "reduceOnly:bool",
        "isTriggerMarket:bool",
        "clientOrderId:string",
        "closePosition:bool",
    ),
    "PlaceOrders": _fields(
        "subAccountId:uint256",
        "orders:Order[]",
        "grouping:string",
        "nonce:uint256",
        "expiresAfter:uint256",
    ),
    "CancelOrders": _fields(
        "subAccountId:uint256", "orderIds:uint256[]", "nonce:uint256", "expiresAfter:uint256"
    ),
    # Authenticated reads (getOpenOrders, getTrades, ...): signed without a nonce
    # (protocols.md 3.3). The field list is not in protocols.md; it is the one public SDKs
    # sign (subAccountId, action, expiresAfter).
    "SubAccountAction": _fields("subAccountId:uint256", "action:string", "expiresAfter:uint256"),
}
#: The typed-data primary type of each action.
PRIMARY = {"placeOrders": "PlaceOrders", "cancelOrders": "CancelOrders"}
#: The reads a client makes, signed as SubAccountAction.
READS = frozenset({"getOpenOrders", "getOrderHistory", "getTrades", "getSubAccount"})


def typed_data(primary: str, message: dict[str, Any]) -> dict[str, Any]:
    """The full EIP-712 message for ``primary`` (PlaceOrders or CancelOrders)."""
    used = {"EIP712Domain", primary} | ({"Order"} if primary == "PlaceOrders" else set())
    return {
        "types": {k: v for k, v in TYPES.items() if k in used},
        "primaryType": primary,
        "domain": DOMAIN,
        "message": message,
    }


def sign_action(primary: str, message: dict[str, Any], private_key: str) -> dict[str, Any]:
    """``{"v": 27|28, "r": "0x…", "s": "0x…"}`` as the API takes it."""
    signed = Account.sign_message(
        encode_typed_data(full_message=typed_data(primary, message)), private_key
    )
    return {"v": signed.v, "r": f"0x{signed.r:064x}", "s": f"0x{signed.s:064x}"}


def recover(primary: str, message: dict[str, Any], signature: dict[str, Any]) -> str:
    """The address that signed ``message`` (what a server checks against the owner)."""
    vrs = (int(signature["v"]), int(str(signature["r"]), 16), int(str(signature["s"]), 16))
    address: str = Account.recover_message(
        encode_typed_data(full_message=typed_data(primary, message)), vrs=vrs
    )
    return address


def address_of(private_key: str) -> str:
    address: str = Account.from_key(private_key).address
    return address
