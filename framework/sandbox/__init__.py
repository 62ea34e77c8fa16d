"""The embedded sandbox exchange (Kraken's REST API on 127.0.0.1)."""

from framework.sandbox.auth import AuthRules
from framework.sandbox.faults import Fault, FaultRules
from framework.sandbox.market import MarketRules
from framework.sandbox.matching import OrderRules
from framework.sandbox.server import Sandbox, generate_credentials

__all__ = [
    "AuthRules",
    "Fault",
    "FaultRules",
    "MarketRules",
    "OrderRules",
    "Sandbox",
    "generate_credentials",
]
