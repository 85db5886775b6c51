"""The monthly finance workbook.

Figures (pure data, no spreadsheet): ``monthly`` (``build_figures`` and the names callers use),
over ``common`` (period, records left out, tallies, streamed reads), ``documents`` (the document
rows), ``sync_exceptions`` (the ledger's), ``revenue``, ``receivables`` and ``tax``. Writing:
``workbook`` (``build_monthly_report``) puts together the sheets of ``sheets`` (one module per
sheet over ``sheets.writer``). Then atomic files (``files``) and delivery by e-mail
(``delivery``).

May import: the sync's state store and everything below it (``sync``, ``mappings``,
``billing``, ``core``, ``finsync.config``/``db``). Never a connector's call to the ERP, the
console or the CLI. Inside, the figures never import the writing side, and no module imports one
that imports it back (the import-linter contracts).
"""

from __future__ import annotations

from reports.delivery import DeliveryResult, deliver_report
from reports.workbook import ReportResult, build_monthly_report

__all__ = ["DeliveryResult", "ReportResult", "build_monthly_report", "deliver_report"]
