"""Figures of the monthly finance workbook, read from the billing database and the ledger.

Pure data building, no spreadsheet: ``build_figures`` gathers the small, fully aggregated parts
(revenue, receivables, tax, sync health); the document rows stream from ``reports.documents``.
The shared pieces are in ``reports.common``. This module also names, in ``__all__``, what the
workbook writer and the tests use of them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from mappings.tables import MappingTables
from reports.common import (
    EXCEPTION_STATUSES,
    NOTHING_LEFT_OUT,
    ZERO,
    LeftOut,
    Period,
    Tally,
    find_left_out,
    parse_period,
)
from reports.documents import (
    credit_note_rows,
    invoice_rows,
    payment_rows,
    refund_rows,
)
from reports.receivables import AgingRows, CreditBalanceRow, receivables_at_end
from reports.revenue import JournalLine, RevenueLine, RollForward, journals, revenue_figures
from reports.sync_exceptions import exception_rows
from reports.tax import InvoiceTax, TaxTotal, tax_figures
from sync.state import ledger

__all__ = [
    "Figures",
    "LeftOut",
    "Period",
    "Tally",
    "build_figures",
    "credit_note_rows",
    "exception_rows",
    "find_left_out",
    "invoice_rows",
    "parse_period",
    "payment_rows",
    "refund_rows",
]


@dataclass(frozen=True)
class Figures:
    """The small, fully aggregated parts of the report (everything but the document lists)."""

    period: Period
    entity: str | None
    revenue: tuple[RevenueLine, ...]
    roll_forward: tuple[RollForward, ...]
    waterfall_months: tuple[date, ...]
    waterfall: dict[str, tuple[Decimal, ...]]  # currency -> one amount per month, then "later"
    later_reductions: dict[str, Decimal]  # currency -> credits and voids after the period end
    journals: tuple[JournalLine, ...]
    aging: AgingRows  # streamed from billing on PostgreSQL; ``aging.totals`` per currency
    credit_balances: tuple[CreditBalanceRow, ...]
    tax: tuple[TaxTotal, ...]  # per jurisdiction and currency, from reports.tax
    tax_variances: tuple[InvoiceTax, ...]  # invoices whose billed tax differs from the engine's
    sync_health: dict[str, dict[str, int]]  # kind -> status -> count (ERP target)
    exceptions_count: int
    left_out: LeftOut = NOTHING_LEFT_OUT

    def recognized(self) -> dict[str, Decimal]:
        """Revenue recognized in the period per currency."""
        out: dict[str, Decimal] = defaultdict(lambda: ZERO)
        for line in self.revenue:
            out[line.currency] += line.amount
        return dict(out)

    def deferred_closing(self) -> dict[str, Decimal]:
        """Closing deferred revenue per currency (all entities of the report)."""
        out: dict[str, Decimal] = defaultdict(lambda: ZERO)
        for rf in self.roll_forward:
            out[rf.currency] += rf.closing
        return dict(out)

    def open_receivable(self) -> dict[str, Decimal]:
        """What customers owe at period end per currency (the aging total)."""
        return dict(self.aging.totals)

    def credit_balance(self) -> dict[str, Decimal]:
        """What the company owes customers at period end per currency."""
        out: dict[str, Decimal] = defaultdict(lambda: ZERO)
        for row in self.credit_balances:
            out[row.currency] += row.balance
        return dict(out)

    def journal_tally(self) -> Tally:
        """The revenue journals as a Reconciliation tally: scheduled against posted."""
        tally = Tally("revenue")
        for j in self.journals:
            tally.add(
                j.currency,
                j.scheduled,
                ZERO,
                j.sync_status == "synced" and j.posted == j.scheduled,
                synced_amount=ZERO if j.posted is None else j.posted,
            )
        return tally


# --- aggregated figures ------------------------------------------------------------------


def build_figures(
    billing: sa.Engine,
    state: sa.Engine,
    *,
    period: Period,
    entity: str | None,
    timezone: ZoneInfo,
    erp_target: str = "netsuite",
    tax_target: str = "avatax",
    mapping: MappingTables | None = None,
    left_out: LeftOut | None = None,
) -> Figures:
    """Aggregate revenue, deferred revenue, AR aging, credit balances, tax and sync health.

    ``left_out`` are the records validation rejected (``find_left_out`` when None): every
    figure leaves them out.
    """
    out = find_left_out(billing, mapping, state) if left_out is None else left_out
    revenue = revenue_figures(billing, period, entity, timezone, mapping, out)
    tax_totals, tax_variances = tax_figures(
        billing,
        state,
        period_start=period.start,
        period_end=period.end,
        entity=entity,
        target=tax_target,
        left_out=out.ids("invoice"),
    )
    aging, credit_balances = receivables_at_end(billing, period, entity, timezone, out)
    return Figures(
        period=period,
        entity=entity,
        revenue=revenue.lines,
        roll_forward=revenue.rolls,
        waterfall_months=revenue.months,
        waterfall=revenue.waterfall,
        later_reductions=revenue.later_reductions,
        journals=journals(state, erp_target, period, revenue.journal_entries),
        aging=aging,
        credit_balances=credit_balances,
        tax=tax_totals,
        tax_variances=tax_variances,
        sync_health=_sync_health(state, erp_target),
        exceptions_count=_count_exceptions(state),
        left_out=out,
    )


def _sync_health(state: sa.Engine, target: str) -> dict[str, dict[str, int]]:
    stmt = (
        sa.select(ledger.c.kind, ledger.c.status, sa.func.count())
        .where(ledger.c.target == target)
        .group_by(ledger.c.kind, ledger.c.status)
    )
    out: dict[str, dict[str, int]] = defaultdict(dict)
    with state.connect() as conn:
        for kind, status, count in conn.execute(stmt):
            out[kind][status] = int(count)
    return dict(out)


def _count_exceptions(state: sa.Engine) -> int:
    stmt = sa.select(sa.func.count()).where(ledger.c.status.in_(EXCEPTION_STATUSES))
    with state.connect() as conn:
        return int(conn.execute(stmt).scalar_one())
