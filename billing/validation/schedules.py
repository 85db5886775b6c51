"""Revenue schedules against their invoice lines: each line's schedule adds up to the line
less its credits, inside the service period (or the issue month)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from billing.records import (
    RevenueEntry,
    SourceRecord,
)
from billing.validation.closure import InvoiceFacts, LineFacts, Pass
from billing.validation.in_record import revenue_entry_problems
from billing.validation.wording import ZERO, fix_first, money_text
from core.errors import Problem


def _month(day: date) -> date:
    return day.replace(day=1)


def check_revenue(state: Pass, records: Iterable[SourceRecord]) -> None:
    """Schedule entries come grouped by line: judge each line's schedule as a whole."""
    group: list[RevenueEntry] = []
    for entry in records:
        assert isinstance(entry, RevenueEntry)
        if group and group[0].invoice_line_id != entry.invoice_line_id:
            _schedule(state, group)
            group = []
        group.append(entry)
    if group:
        _schedule(state, group)


def _schedule(state: Pass, entries: list[RevenueEntry]) -> None:
    line = state.lines.get(entries[0].invoice_line_id)
    invoice = state.invoices.get(line.invoice_id) if line else None
    total = sum((e.amount for e in entries if e.amount is not None), ZERO)
    cur = entries[0].currency
    sum_problem: Problem | None = None
    if line is not None and total != line.amount - line.credited:
        expected = line.amount - line.credited
        void = invoice is not None and invoice.status == "void"
        sum_problem = Problem(
            "amount",
            f"the schedule of {invoice.label if invoice else 'its invoice'} line {line.line_no} "
            f"adds up to {money_text(total, cur)}, not to "
            + (
                "zero for a void invoice"
                if void
                else f"the line's amount less credits {money_text(expected, cur)}"
            )
            + ": correct the line's schedule entries in billing",
        )
    for entry in entries:
        problems = revenue_entry_problems(entry)
        if entry.invoice_id is not None and entry.invoice_id in state.rejected_invoices:
            problems.append(
                Problem("invoice_line_id", fix_first(state.rejected_invoices[entry.invoice_id]))
            )
        if line is not None and invoice is not None:
            problems += _period_problems(entry, line, invoice)
        if sum_problem is not None:
            problems.append(sum_problem)
        if problems:
            state.reject(
                "revenue_entry", entry.id, entry.label, entry.currency, entry.amount, problems
            )


def _period_problems(entry: RevenueEntry, line: LineFacts, invoice: InvoiceFacts) -> list[Problem]:
    """Revenue is earned inside the service period (the issue month for a point-in-time line);
    a reversal (negative) may fall later, in the month of the credit note or void."""
    if line.pattern == "ratable" and line.service_start and line.service_end:
        first, last = _month(line.service_start), _month(line.service_end)
        what = f"the service period {line.service_start} to {line.service_end}"
    elif invoice.issue_date is not None:
        first = last = _month(invoice.issue_date)
        what = f"the issue month of {invoice.label}"
    else:
        return []
    month = _month(entry.period)
    if month < first or (month > last and entry.amount is not None and entry.amount > ZERO):
        return [
            Problem(
                "period",
                f"{entry.period:%Y-%m} is outside {what}: date the entry inside it in billing",
            )
        ]
    return []
