"""The monthly finance workbook: figures from ``reports.monthly`` written sheet by sheet
(``reports.sheets``) with openpyxl.

The whole workbook is written in write-only mode, so the document sheets stream and a month of a
million invoice lines fits in modest memory. Every figure and total is a value computed here
exactly, so a reader that does not recalculate (pandas, openpyxl ``data_only``, a mail preview)
reads it; checking formulas beside them ("Ties to sheets" on the Summary, "Ties" on the Revenue
sheet) recompute the figures from the detail rows and say ``yes`` when they agree.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from openpyxl.workbook.properties import CalcProperties

from core.money import is_known_currency
from finsync.config import Config
from mappings.tables import MappingTables
from reports.common import (
    COLLECTED,
    CREDITED,
    INVOICED,
    REFUNDED,
    VOIDED,
    ZERO,
    Tally,
    parse_period,
)
from reports.documents import credit_note_rows, invoice_rows, payment_rows, refund_rows
from reports.files import atomic_write
from reports.monthly import build_figures, find_left_out
from reports.sheets.balances import write_aging, write_credit_balances
from reports.sheets.documents import (
    CREDIT_COLUMNS,
    INVOICE_COLUMNS,
    PAYMENT_COLUMNS,
    REFUND_COLUMNS,
    credit_cells,
    invoice_cells,
    payment_cells,
    refund_cells,
    write_documents,
)
from reports.sheets.exceptions import write_exceptions
from reports.sheets.reconciliation import write_reconciliation
from reports.sheets.revenue import write_revenue
from reports.sheets.summary import (
    LEFT_OUT_FIGURES,
    SUMMARY_FIGURES,
    SUMMARY_HEADER_ROW,
    CurrencyTotals,
    write_summary,
)
from reports.sheets.tax import write_tax
from reports.sheets.writer import Book, Progress, Sheet, currency_decimals, money_format

__all__ = [
    "LEFT_OUT_FIGURES",
    "SUMMARY_FIGURES",
    "CurrencyTotals",
    "ReportResult",
    "build_configured_report",
    "build_monthly_report",
    "money_format",
    "record_workbook",
    "report_filename",
]


@dataclass(frozen=True)
class ReportResult:
    """A written workbook and the figures its e-mail body and the CLI table show."""

    path: Path
    period: str
    entity: str | None
    entities: tuple[str, ...]
    totals: tuple[CurrencyTotals, ...]
    rows: dict[str, int]
    exceptions: int
    generated_at: datetime
    sync_health: dict[str, dict[str, int]] = field(default_factory=dict)

    def summary_text(self) -> str:
        """A short plain-text summary (the e-mail body): one line per figure, one column per
        currency."""
        scope = self.entity or (", ".join(self.entities) if self.entities else "all entities")
        lines = [
            f"finsync monthly report {self.period} ({scope})",
            f"Generated {self.generated_at:%Y-%m-%d %H:%M %Z}; file {self.path.name}",
            "",
            f"{'':<26}" + "".join(f"{t.currency:>17}" for t in self.totals),
        ]
        for label, attr in SUMMARY_FIGURES:
            lines.append(
                f"{label:<26}"
                + "".join(f"{_fmt(getattr(t, attr), t.currency):>17}" for t in self.totals)
            )
        lines.append(
            f"{'Left out (validation)':<26}"
            + "".join(
                f"{f'{t.left_out_records} / {_fmt(t.left_out_money, t.currency)}':>17}"
                for t in self.totals
            )
        )
        lines += [
            "",
            "Documents: " + ", ".join(f"{k} {v}" for k, v in self.rows.items()),
            f"Sync exceptions needing attention: {self.exceptions}",
        ]
        return "\n".join(lines)


def _fmt(amount: Decimal, currency: str) -> str:
    return f"{amount:,.{currency_decimals(currency)}f}"


def report_filename(period: str, entity: str | None) -> str:
    """``finsync-monthly-2026-10.xlsx``, or ``finsync-monthly-2026-10-acme-us.xlsx``."""
    suffix = ""
    if entity:
        suffix = "-" + (re.sub(r"[^a-z0-9]+", "-", entity.lower()).strip("-") or "entity")
    return f"finsync-monthly-{period}{suffix}.xlsx"


def build_monthly_report(
    billing_engine: sa.Engine,
    state_engine: sa.Engine,
    *,
    period: str,
    entity: str | None,
    out_dir: Path,
    timezone: ZoneInfo,
    erp_target: str = "netsuite",
    tax_target: str = "avatax",
    progress: Progress | None = None,
    mapping: MappingTables | None = None,
) -> ReportResult:
    """Build the month's workbook in ``out_dir`` (written atomically) and return its figures.

    ``mapping`` adds revenue accounts to the Revenue sheet. Raises ConfigError for a bad
    ``period``; database errors propagate.
    """
    per = parse_period(period)
    generated_at = datetime.now(UTC).astimezone(timezone)
    notify = progress or (lambda _stage, _n: None)
    left_out = find_left_out(billing_engine, mapping, state_engine)
    # The aggregated figures are mostly the databases' work: they are built in a thread while
    # this one writes the document sheets, which are mostly Python's.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="finsync-figures") as pool:
        pending = pool.submit(
            build_figures,
            billing_engine,
            state_engine,
            period=per,
            entity=entity,
            timezone=timezone,
            erp_target=erp_target,
            tax_target=tax_target,
            mapping=mapping,
            left_out=left_out,
        )
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / report_filename(per.label, entity)

        wb = Book()
        wb.calculation = CalcProperties(fullCalcOnLoad=True)
        summary = Sheet(wb, "Summary", [27, 17, 17, 17, 17, 17, 17])
        # Write-only sheets take their panes before the first row; the Summary is filled last.
        summary.freeze(f"B{SUMMARY_HEADER_ROW + 1}")
        tallies = {k: Tally(k) for k in ("invoice", "invoice_void", "credit_note", "payment")}
        tallies["refund"] = Tally("refund")
        ranges: dict[str, int] = {}
        common = (billing_engine, state_engine, per, entity, erp_target)

        ranges["Invoices"] = write_documents(
            wb,
            "Invoices",
            INVOICE_COLUMNS,
            invoice_rows(
                *common,
                tallies["invoice"],
                voids=tallies["invoice_void"],
                timezone=timezone,
                left_out=left_out,
            ),
            invoice_cells,
            total_cols=(8, 9, 10),
            counted_col=13,
            totals_of=(INVOICED, VOIDED),
            notify=notify,
            note=(
                "Totals: invoiced = issued in the month and not voided in it; voided = issued "
                "earlier and voided in the month (docs/accounting.md)."
            ),
        )
        ranges["Credit notes"] = write_documents(
            wb,
            "Credit notes",
            CREDIT_COLUMNS,
            credit_note_rows(*common, tallies["credit_note"], left_out=left_out),
            credit_cells,
            total_cols=(8, 9, 10),
            counted_col=12,
            totals_of=(CREDITED,),
            notify=notify,
            note="Totals include issued credit notes only; a void credit note counts for nothing.",
        )
        ranges["Payments"] = write_documents(
            wb,
            "Payments",
            PAYMENT_COLUMNS,
            payment_rows(*common, tallies["payment"], left_out=left_out),
            payment_cells,
            total_cols=(8, 9, 10, 11),
            counted_col=13,
            totals_of=(COLLECTED,),
            notify=notify,
            note="Totals include succeeded payments only; failed and reversed ones count nowhere.",
        )
        ranges["Refunds"] = write_documents(
            wb,
            "Refunds",
            REFUND_COLUMNS,
            refund_rows(*common, tallies["refund"], left_out=left_out),
            refund_cells,
            total_cols=(8,),
            counted_col=9,
            totals_of=(REFUNDED,),
            notify=notify,
            note="Refunds of payments and of credit notes, by refund date.",
        )
        figures = pending.result()
    notify("figures", 0)
    revenue_ranges = write_revenue(wb, figures)
    ranges["AR aging"] = write_aging(wb, figures)
    ranges["Credit balances"] = write_credit_balances(wb, figures)
    write_tax(wb, figures)
    write_reconciliation(wb, figures, tallies, state_engine, timezone, notify)
    ranges["Exceptions"] = write_exceptions(wb, figures.left_out)

    def amounts(kind: str) -> dict[str, Decimal]:
        return {cur: t.amount for cur, t in tallies[kind].by_currency.items()}

    figure_sets = {
        "invoiced": amounts("invoice"),
        "tax": {cur: t.tax for cur, t in tallies["invoice"].by_currency.items()},
        "voided": amounts("invoice_void"),
        "credited": amounts("credit_note"),
        "collected": amounts("payment"),
        "refunded": amounts("refund"),
        "recognized": figures.recognized(),
        "deferred_closing": figures.deferred_closing(),
        "open_receivable": figures.open_receivable(),
        "credit_balance": figures.credit_balance(),
    }
    left_out_by_currency = figures.left_out.per_currency()
    # A code that is not a currency (XXX, usd) never gets a column: its records are all left
    # out, and the Summary names them below the figures.
    currencies = sorted(
        c for c in set().union(*figure_sets.values(), left_out_by_currency) if is_known_currency(c)
    )
    totals = tuple(
        CurrencyTotals(
            currency=cur,
            **{name: got.get(cur, ZERO) for name, got in figure_sets.items()},
            left_out_records=left_out_by_currency.get(cur, (0, ZERO))[0],
            left_out_money=left_out_by_currency.get(cur, (0, ZERO))[1],
        )
        for cur in currencies
    )
    entities = (
        (entity,)
        if entity
        else tuple(
            sorted(
                set().union(
                    *(t.entities for t in tallies.values()),
                    {rf.entity for rf in figures.roll_forward},
                )
            )
        )
    )
    write_summary(
        summary, figures, totals, entities, generated_at, erp_target, ranges, revenue_ranges
    )
    atomic_write(path, wb.save)
    notify("saved", 1)
    return ReportResult(
        path=path,
        period=per.label,
        entity=entity,
        entities=entities,
        totals=totals,
        rows={
            "invoices": tallies["invoice"].rows,
            "credit notes": tallies["credit_note"].rows,
            "payments": tallies["payment"].rows,
            "refunds": tallies["refund"].rows,
        },
        exceptions=figures.exceptions_count,
        generated_at=generated_at,
        sync_health=figures.sync_health,
    )


def build_configured_report(
    config: Config,
    billing: sa.Engine,
    state: sa.Engine,
    period: str,
    *,
    entity: str | None = None,
    out_dir: Path | None = None,
    progress: Progress | None = None,
) -> ReportResult:
    """Build the workbook of ``period`` as a configuration says: its folder, time zone and
    mapping file; the ERP and tax targets are the first configured of their systems."""
    from mappings.tables import load_mapping_file

    erp = next(
        (n for n, t in config.targets.items() if t.system in ("netsuite", "scripted")), "netsuite"
    )
    tax = next((n for n, t in config.targets.items() if t.system == "avatax"), "avatax")
    return build_monthly_report(
        billing,
        state,
        period=period,
        entity=entity,
        out_dir=out_dir or config.report.out_dir,
        timezone=config.timezone,
        erp_target=erp,
        tax_target=tax,
        progress=progress,
        mapping=load_mapping_file(config.mapping_file),
    )


def record_workbook(
    conn: sa.Connection, result: ReportResult, *, built_at: datetime, run_id: int | None = None
) -> int:
    """Record a built workbook in the state store's ``workbooks`` table; returns its id.

    A rebuild of a period (and entity) writes the same file again, so it updates that file's
    row (built again, not delivered yet) instead of adding a second row for the same download.
    """
    from sync.state import workbooks

    entity = (
        workbooks.c.entity.is_(None)
        if result.entity is None
        else workbooks.c.entity == result.entity
    )
    existing = (
        conn.execute(
            sa.select(workbooks.c.id)
            .where(
                workbooks.c.period == result.period, entity, workbooks.c.path == str(result.path)
            )
            .order_by(workbooks.c.id)
        )
        .scalars()
        .all()
    )
    if existing:
        keep, *duplicates = existing
        conn.execute(
            workbooks.update()
            .where(workbooks.c.id == keep)
            .values(built_at=built_at, run_id=run_id, delivered_at=None, delivery_error=None)
        )
        if duplicates:
            conn.execute(workbooks.delete().where(workbooks.c.id.in_(duplicates)))
        return int(keep)
    inserted = conn.execute(
        workbooks.insert().values(
            period=result.period,
            entity=result.entity,
            path=str(result.path),
            built_at=built_at,
            run_id=run_id,
        )
    )
    return int(inserted.inserted_primary_key[0])  # type: ignore[index]
