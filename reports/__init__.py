"""The monthly finance workbook: figures (``monthly``), writer (``workbook``), delivery."""

from __future__ import annotations

from reports.delivery import DeliveryResult, deliver_report
from reports.workbook import ReportResult, build_monthly_report

__all__ = ["DeliveryResult", "ReportResult", "build_monthly_report", "deliver_report"]
