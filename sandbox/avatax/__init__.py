"""A local AvaTax REST v2 sandbox: real HTTP on loopback, a small rate table, scripted faults.

``AvaTaxSandbox`` is the whole public surface; see ``sandbox.avatax.server``.
"""

from __future__ import annotations

from sandbox.avatax.engine import COMPANIES, RATES, AvaTaxFault
from sandbox.avatax.server import AvaTaxSandbox

__all__ = ["COMPANIES", "RATES", "AvaTaxFault", "AvaTaxSandbox"]
