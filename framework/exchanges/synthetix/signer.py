"""EIP-712 signing of Synthetix trade actions (protocols.md 3.2-3.3), with eth-account.

Domain ``Synthetix`` / ``1`` / chainId 1 / zero ``verifyingContract`` (the troubleshooting
and signing pages; the viem example that leaves ``verifyingContract`` out is not followed).
JSON sends ``subAccountId`` and ``orderIds`` as strings; the signature hashes them as
uint256, so :func:`typed_data` takes integers.
"""

from __future__ import annotations

from collections.abc import Mapping
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
    # Cancel by client order id: sent as action ``cancelOrders`` with ``clientOrderIds``.
    "CancelOrdersByCloid": _fields(
        "subAccountId:uint256", "clientOrderIds:string[]", "nonce:uint256", "expiresAfter:uint256"
    ),
    # The dead-man switch: cancel all the subaccount's orders unless re-armed in time.
    "ScheduleCancel": _fields(
        "subAccountId:uint256", "timeoutSeconds:uint256", "nonce:uint256", "expiresAfter:uint256"
    ),
    # Authenticated reads (getOpenOrders, getTrades, ...). The docs sign them without a
    # nonce; the official SDK always signs one, and the type then holds it (before
    # expiresAfter): see :func:`typed_data`.
    "SubAccountAction": _fields("subAccountId:uint256", "action:string", "expiresAfter:uint256"),
}
#: The reads a client makes, signed as SubAccountAction.
READS = frozenset({"getOpenOrders", "getOrderHistory", "getTrades", "getSubAccount"})
#: The trade actions a client sends (each with a nonce).
TRADES = frozenset({"placeOrders", "cancelOrders", "scheduleCancel"})


def primary_of(action: str, params: Mapping[str, Any]) -> str:
    """The typed-data primary type an action is signed as."""
    if action in READS:
        return "SubAccountAction"
    if action == "cancelOrders" and "clientOrderIds" in params:
        return "CancelOrdersByCloid"
    return {"placeOrders": "PlaceOrders", "scheduleCancel": "ScheduleCancel"}.get(
        action, "CancelOrders"
    )


def typed_data(primary: str, message: dict[str, Any]) -> dict[str, Any]:
    """The full EIP-712 message for ``primary``. A SubAccountAction that carries a nonce
    has it in its type, between ``action`` and ``expiresAfter`` (as the official SDK signs)."""
    used = {"EIP712Domain", primary} | ({"Order"} if primary == "PlaceOrders" else set())
    types = {k: v for k, v in TYPES.items() if k in used}
    if primary == "SubAccountAction" and "nonce" in message:
        types[primary] = _fields(
            "subAccountId:uint256", "action:string", "nonce:uint256", "expiresAfter:uint256"
        )
    return {
        "types": types,
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
