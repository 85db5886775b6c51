"""finsync: billing database to ERP and tax engine, with a per-record ledger and a workbook.

This package is still a mixed room (docs/architecture.md): its foundations (``config``,
``db``, ``logs``, ``terminal``, ``schedule``) sit just above ``core`` and may import only
``core`` and each other; ``alerts`` sits beside ``reports``; ``demo`` near the top, beside the
service (top-level ``scheduler.py``); ``cli`` on top may import everything.
"""

__version__ = "0.1.0"
