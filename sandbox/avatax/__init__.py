"""A local AvaTax REST v2 sandbox: real HTTP on loopback, a small rate table, scripted faults.

``AvaTaxSandbox`` is the whole public surface; see ``sandbox.avatax.server``.
"""

from __future__ import annotations

from sandbox.avatax.faults import AvaTaxFault
from sandbox.avatax.rates import COMPANIES, RATES
from sandbox.avatax.server import AvaTaxSandbox

__all__ = ["COMPANIES", "RATES", "AvaTaxFault", "AvaTaxSandbox"]
