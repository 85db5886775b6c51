"""The monthly finance workbook: figures (``monthly``, ``tax``), writer (``workbook``), atomic
files (``files``) and delivery by e-mail (``delivery``).

May import: the sync's state store and everything below it (``sync``, ``mappings``,
``billing``, ``core``, ``finsync.config``/``db``). Never a connector's call to the ERP, the
console or the CLI.
"""

from __future__ import annotations

from reports.delivery import DeliveryResult, deliver_report
from reports.workbook import ReportResult, build_monthly_report

__all__ = ["DeliveryResult", "ReportResult", "build_monthly_report", "deliver_report"]
