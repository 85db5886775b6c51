"""The monthly finance workbook: figures from ``reports.monthly`` written with openpyxl.

The whole workbook is written in write-only mode, so the document sheets stream and a month of a
million invoice lines fits in modest memory. Every amount cell carries its currency's number
format (0 decimals for JPY, 3 for KWD); totals are SUMIFS/SUM formulas so finance can see where
they come from, and the Summary's last column checks its figures against the detail sheets.

Text from billing data is never a formula or a link: every string cell is written as text
(inline string), and one that starts like a formula (= + - @, tab, CR) also gets the quote
prefix, so a spreadsheet keeps it as text even when someone edits the cell.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.chart import BarChart, Reference
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.workbook.properties import CalcProperties
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from finsync.config import Config
from finsync.money import minor_units
from mappings.tables import MappingTables
from reports import monthly as m
from reports.delivery import atomic_write

_HEADER_FONT = Font(bold=True, color="FFFFFF")
_HEADER_FILL = PatternFill("solid", fgColor="1F4E78")
_SECTION_FONT = Font(bold=True, size=12, color="1F4E78")
_TITLE_FONT = Font(bold=True, size=14)
_TOTAL_FONT = Font(bold=True)
_TOTAL_BORDER = Border(top=Side(style="thin"))
_NOTE_FONT = Font(italic=True, color="7F7F7F")
_WRAP = Alignment(wrap_text=True, vertical="top")
_DATE_FORMAT = "yyyy-mm-dd"
_DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
_COUNT_FORMAT = "#,##0"
#: Strings that a spreadsheet would read as a formula (or DDE) when typed in.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_MAX_CELL_TEXT = 32767
_PROGRESS_EVERY = 10_000

Progress = Callable[[str, int], None]


def _decimals(currency: str) -> int:
    try:
        return minor_units(currency)
    except ValueError:  # an unknown code still gets a readable format; mapping flags it
        return 2


def money_format(currency: str) -> str:
    """Number format with the currency's decimals, negatives in red (JPY ``#,##0``)."""
    decimals = _decimals(currency)
    body = "#,##0" + ("." + "0" * decimals if decimals else "")
    return f"{body};[Red]-{body}"


def safe_text(ws: WriteOnlyWorksheet, value: str, **style: Any) -> WriteOnlyCell:
    """A cell that holds ``value`` as text, whatever it starts with."""
    value = ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)[:_MAX_CELL_TEXT]
    cell = WriteOnlyCell(ws, value)
    cell.data_type = "s"  # openpyxl would turn "=..." into a formula
    if value.startswith(_FORMULA_START):
        cell.quotePrefix = True
    _style(cell, **style)
    return cell


def _style(
    cell: WriteOnlyCell,
    *,
    font: Font | None = None,
    fill: PatternFill | None = None,
    fmt: str | None = None,
    border: Border | None = None,
    alignment: Alignment | None = None,
) -> WriteOnlyCell:
    if font is not None:
        cell.font = font
    if fill is not None:
        cell.fill = fill
    if fmt is not None:
        cell.number_format = fmt
    if border is not None:
        cell.border = border
    if alignment is not None:
        cell.alignment = alignment
    return cell


class _Sheet:
    """A write-only sheet with typed cell helpers; knows which row it is on."""

    def __init__(self, wb: Workbook, title: str, widths: Sequence[float]) -> None:
        self.ws: WriteOnlyWorksheet = wb.create_sheet(title)
        # Printed or exported to PDF: landscape, all columns on one page width.
        self.ws.page_setup.orientation = "landscape"
        self.ws.page_setup.fitToWidth = 1
        self.ws.page_setup.fitToHeight = 0
        self.ws.sheet_properties.pageSetUpPr.fitToPage = True
        for index, width in enumerate(widths, start=1):
            self.ws.column_dimensions[get_column_letter(index)].width = width
        self.row = 0

    def freeze(self, cell: str) -> None:
        self.ws.freeze_panes = cell

    def text(self, value: str | None, **style: Any) -> WriteOnlyCell:
        return safe_text(self.ws, value or "", **style)

    def money(self, value: Decimal | None, currency: str, **style: Any) -> WriteOnlyCell:
        return _style(WriteOnlyCell(self.ws, value), fmt=money_format(currency), **style)

    def date(self, value: date | None, fmt: str = _DATE_FORMAT) -> WriteOnlyCell:
        return _style(WriteOnlyCell(self.ws, value), fmt=fmt)

    def count(self, value: int, **style: Any) -> WriteOnlyCell:
        return _style(WriteOnlyCell(self.ws, value), fmt=_COUNT_FORMAT, **style)

    def money_formula(self, expr: str, currency: str, **style: Any) -> WriteOnlyCell:
        """``=ROUND(expr, decimals)``: spreadsheets add in binary floating point."""
        text = f"=ROUND({expr},{_decimals(currency)})"
        return self.formula(text, money_format(currency), **style)

    def formula(self, text: str, fmt: str | None = None, **style: Any) -> WriteOnlyCell:
        return _style(WriteOnlyCell(self.ws, text), fmt=fmt, **style)

    def append(self, cells: Iterable[Any]) -> int:
        self.ws.append(list(cells))
        self.row += 1
        return self.row

    def header(self, titles: Sequence[str]) -> int:
        return self.append(
            self.text(t, font=_HEADER_FONT, fill=_HEADER_FILL, alignment=_WRAP) for t in titles
        )

    def section(self, title: str) -> int:
        return self.append([self.text(title, font=_SECTION_FONT)])

    def blank(self) -> int:
        return self.append([])

    def autofilter(self, columns: int, last_row: int, first_row: int = 1) -> None:
        end = max(last_row, first_row)
        self.ws.auto_filter.ref = f"A{first_row}:{get_column_letter(columns)}{end}"


@dataclass(frozen=True)
class CurrencyTotals:
    """The Summary's figures for one currency."""

    currency: str
    invoiced: Decimal
    credited: Decimal
    collected: Decimal
    tax: Decimal
    recognized: Decimal
    deferred_closing: Decimal


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
        """A short plain-text summary (the e-mail body)."""
        scope = self.entity or (", ".join(self.entities) if self.entities else "all entities")
        lines = [
            f"finsync monthly report {self.period} ({scope})",
            f"Generated {self.generated_at:%Y-%m-%d %H:%M %Z}; file {self.path.name}",
            "",
            f"{'Currency':<8} {'Invoiced':>16} {'Credited':>14} {'Collected':>16} "
            f"{'Tax':>14} {'Recognized':>16} {'Deferred':>16}",
        ]
        for t in self.totals:
            lines.append(
                f"{t.currency:<8} {_fmt(t.invoiced, t.currency):>16} "
                f"{_fmt(t.credited, t.currency):>14} {_fmt(t.collected, t.currency):>16} "
                f"{_fmt(t.tax, t.currency):>14} {_fmt(t.recognized, t.currency):>16} "
                f"{_fmt(t.deferred_closing, t.currency):>16}"
            )
        lines += [
            "",
            "Documents: " + ", ".join(f"{k} {v}" for k, v in self.rows.items()),
            f"Sync exceptions needing attention: {self.exceptions}",
        ]
        return "\n".join(lines)


def _fmt(amount: Decimal, currency: str) -> str:
    return f"{amount:,.{_decimals(currency)}f}"


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
    per = m.parse_period(period)
    generated_at = datetime.now(UTC).astimezone(timezone)
    notify = progress or (lambda _stage, _n: None)
    figures = m.build_figures(
        billing_engine,
        state_engine,
        period=per,
        entity=entity,
        timezone=timezone,
        erp_target=erp_target,
        tax_target=tax_target,
        mapping=mapping,
    )
    notify("figures", 0)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / report_filename(per.label, entity)

    wb = Workbook(write_only=True)
    wb.calculation = CalcProperties(fullCalcOnLoad=True)
    summary = _Sheet(wb, "Summary", [22, 18, 18, 18, 18, 18, 18, 16])
    # Write-only sheets take their panes before the first row; the Summary is filled last.
    summary.freeze(f"B{_SUMMARY_HEADER_ROW + 1}")
    tallies = {k: m.Tally(k) for k in ("invoice", "credit_note", "payment")}
    ranges: dict[str, int] = {}

    def args(kind: str) -> tuple[Any, ...]:
        return billing_engine, state_engine, per, entity, erp_target, tallies[kind]

    ranges["Invoices"] = _write_documents(
        wb,
        "Invoices",
        _INVOICE_COLUMNS,
        m.invoice_rows(*args("invoice")),
        _invoice_cells,
        total_cols=(8, 9, 10),
        status_col=11,
        status_rule='"<>void"',
        notify=notify,
        note="Totals exclude void invoices.",
    )
    ranges["Credit notes"] = _write_documents(
        wb,
        "Credit notes",
        _CREDIT_COLUMNS,
        m.credit_note_rows(*args("credit_note")),
        _credit_cells,
        total_cols=(8, 9, 10),
        status_col=11,
        status_rule='"issued"',
        notify=notify,
        note="Totals include issued credit notes only.",
    )
    ranges["Payments"] = _write_documents(
        wb,
        "Payments",
        _PAYMENT_COLUMNS,
        m.payment_rows(*args("payment")),
        _payment_cells,
        total_cols=(8, 9, 10, 11),
        status_col=12,
        status_rule='"succeeded"',
        notify=notify,
        note="Totals include succeeded payments only.",
    )
    revenue_ranges = _write_revenue(wb, figures)
    _write_aging(wb, figures)
    _write_tax(wb, figures)
    _write_reconciliation(wb, figures, tallies, state_engine, timezone, notify)

    currencies = sorted(
        set().union(
            *(t.by_currency for t in tallies.values()),
            figures.recognized(),
            figures.deferred_closing(),
        )
    )
    inv, cn, pay = (tallies[k].by_currency for k in ("invoice", "credit_note", "payment"))
    zero = m.CurrencyTally()
    totals = tuple(
        CurrencyTotals(
            currency=cur,
            invoiced=inv.get(cur, zero).amount,
            credited=cn.get(cur, zero).amount,
            collected=pay.get(cur, zero).amount,
            tax=inv.get(cur, zero).tax,
            recognized=figures.recognized().get(cur, m.ZERO),
            deferred_closing=figures.deferred_closing().get(cur, m.ZERO),
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
    _write_summary(
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
        },
        exceptions=figures.exceptions_count,
        generated_at=generated_at,
        sync_health=figures.sync_health,
    )


# --- document sheets ---------------------------------------------------------------------

_INVOICE_COLUMNS = (
    ("Number", 16),
    ("Entity", 10),
    ("Customer account", 16),
    ("Customer name", 28),
    ("Issue date", 12),
    ("Due date", 12),
    ("Currency", 9),
    ("Net", 15),
    ("Tax", 13),
    ("Total", 15),
    ("Status", 12),
    ("Memo", 24),
    ("ERP id", 12),
    ("Sync status", 13),
)
_CREDIT_COLUMNS = (
    ("Number", 16),
    ("Invoice", 16),
    ("Entity", 10),
    ("Customer account", 16),
    ("Customer name", 28),
    ("Issue date", 12),
    ("Currency", 9),
    ("Net", 15),
    ("Tax", 13),
    ("Total", 15),
    ("Status", 10),
    ("Reason", 24),
    ("ERP id", 12),
    ("Sync status", 13),
)
_PAYMENT_COLUMNS = (
    ("Reference", 18),
    ("Entity", 10),
    ("Customer account", 16),
    ("Customer name", 28),
    ("Received on", 12),
    ("Method", 9),
    ("Currency", 9),
    ("Amount", 15),
    ("Applied", 15),
    ("Unapplied", 15),
    ("Fee", 12),
    ("Status", 11),
    ("ERP id", 12),
    ("Sync status", 13),
)
#: The currency column of the three document sheets (G).
_CURRENCY_COL = 7


def _invoice_cells(s: _Sheet, r: m.InvoiceRow) -> list[WriteOnlyCell]:
    cur = r.currency
    return [
        s.text(r.number),
        s.text(r.entity),
        s.text(r.customer_account),
        s.text(r.customer_name),
        s.date(r.issue_date),
        s.date(r.due_date),
        s.text(cur),
        s.money(r.net, cur),
        s.money(r.tax, cur),
        s.money(r.total, cur),
        s.text(r.status),
        s.text(r.memo),
        s.text(r.erp_id),
        s.text(r.sync_status),
    ]


def _credit_cells(s: _Sheet, r: m.CreditNoteRow) -> list[WriteOnlyCell]:
    cur = r.currency
    return [
        s.text(r.number),
        s.text(r.invoice_number),
        s.text(r.entity),
        s.text(r.customer_account),
        s.text(r.customer_name),
        s.date(r.issue_date),
        s.text(cur),
        s.money(r.net, cur),
        s.money(r.tax, cur),
        s.money(r.total, cur),
        s.text(r.status),
        s.text(r.reason),
        s.text(r.erp_id),
        s.text(r.sync_status),
    ]


def _payment_cells(s: _Sheet, r: m.PaymentRow) -> list[WriteOnlyCell]:
    cur = r.currency
    return [
        s.text(r.reference),
        s.text(r.entity),
        s.text(r.customer_account),
        s.text(r.customer_name),
        s.date(r.received_on),
        s.text(r.method),
        s.text(cur),
        s.money(r.amount, cur),
        s.money(r.applied, cur),
        s.money(r.unapplied, cur),
        s.money(r.fee, cur),
        s.text(r.status),
        s.text(r.erp_id),
        s.text(r.sync_status),
    ]


def _write_documents(
    wb: Workbook,
    title: str,
    columns: Sequence[tuple[str, float]],
    rows: Iterable[Any],
    to_cells: Callable[[_Sheet, Any], list[WriteOnlyCell]],
    *,
    total_cols: Sequence[int],
    status_col: int,
    status_rule: str,
    notify: Progress,
    note: str,
) -> int:
    """Stream one document sheet; below the rows, one SUMIFS total row per currency.

    Returns the last data row, which the Summary's cross-checks refer to.
    """
    s = _Sheet(wb, title, [w for _, w in columns])
    s.freeze("A2")
    s.header([t for t, _ in columns])
    currencies: list[str] = []
    for r in rows:
        s.append(to_cells(s, r))
        if r.currency not in currencies:
            currencies.append(r.currency)
        if (s.row - 1) % _PROGRESS_EVERY == 0:
            notify(title, s.row - 1)
    last = s.row
    notify(title, last - 1)
    s.autofilter(len(columns), last)
    s.blank()
    cur_col = get_column_letter(_CURRENCY_COL)
    status = get_column_letter(status_col)
    for cur in currencies:
        cells: list[WriteOnlyCell] = [
            s.text(f"Total {cur}", font=_TOTAL_FONT, border=_TOTAL_BORDER)
        ] + [s.text("", border=_TOTAL_BORDER) for _ in range(_CURRENCY_COL - 2)]
        cells.append(s.text(cur, font=_TOTAL_FONT, border=_TOTAL_BORDER))
        for col in range(_CURRENCY_COL + 1, max(total_cols) + 1):
            letter = get_column_letter(col)
            text = (
                f"SUMIFS({letter}$2:{letter}${last},${cur_col}$2:${cur_col}${last},"
                f'"{cur}",${status}$2:${status}${last},{status_rule})'
            )
            cells.append(s.money_formula(text, cur, font=_TOTAL_FONT, border=_TOTAL_BORDER))
        s.append(cells)
    s.append([s.text(note, font=_NOTE_FONT)])
    return last


# --- small sheets ------------------------------------------------------------------------


@dataclass(frozen=True)
class _RevenueRanges:
    recognized_last: int  # rows 2..recognized_last of the recognition table
    roll_first: int
    roll_last: int


def _write_revenue(wb: Workbook, f: m.Figures) -> _RevenueRanges:
    s = _Sheet(wb, "Revenue", [12, 18, 16, 17, 17, 17, 17, 17, 17, 17, 17, 17, 17, 17, 17])
    s.freeze("A2")
    s.header(["Currency", "Product family", "Revenue account", "Recognized"])
    for line in f.revenue:
        s.append(
            [
                s.text(line.currency),
                s.text(line.product_family),
                s.text(line.revenue_account or "(family only)"),
                s.money(line.amount, line.currency),
            ]
        )
    recognized_last = s.row
    s.autofilter(4, recognized_last)
    for cur in sorted({line.currency for line in f.revenue}):
        s.append(
            [
                s.text(cur, font=_TOTAL_FONT, border=_TOTAL_BORDER),
                s.text(f"Total {cur}", font=_TOTAL_FONT, border=_TOTAL_BORDER),
                s.text("", border=_TOTAL_BORDER),
                s.money_formula(
                    f'SUMIF($A$2:$A${recognized_last},"{cur}",D$2:D${recognized_last})',
                    cur,
                    font=_TOTAL_FONT,
                    border=_TOTAL_BORDER,
                ),
            ]
        )
    s.blank()
    s.section(f"Deferred revenue roll-forward, {f.period.label} (ratable lines)")
    s.header(["Entity", "Currency", "Opening", "Billed", "Credited", "Recognized", "Closing"])
    roll_first = s.row + 1
    for rf in f.roll_forward:
        row = s.row + 1
        cur = rf.currency
        s.append(
            [
                s.text(rf.entity),
                s.text(cur),
                s.money(rf.opening, cur),
                s.money(rf.billed, cur),
                s.money(rf.credited, cur),
                s.money(rf.recognized, cur),
                s.money_formula(f"C{row}+D{row}-E{row}-F{row}", cur),
            ]
        )
    roll_last = s.row
    s.append([s.text("Closing = opening + billed - credited - recognized.", font=_NOTE_FONT)])
    s.blank()
    s.section("Revenue still to recognize (scheduled entries by month)")
    months = [f"{d:%Y-%m}" for d in f.waterfall_months]
    header_row = s.header(["Currency", *months, "Later", "Total"])
    first = header_row + 1
    last_col = get_column_letter(len(months) + 2)
    for cur, amounts in f.waterfall.items():
        row = s.row + 1
        s.append(
            [
                s.text(cur),
                *(s.money(a, cur) for a in amounts),
                s.money_formula(f"SUM(B{row}:{last_col}{row})", cur),
            ]
        )
    anchor_row = s.row + 3
    for index in range(len(f.waterfall)):
        row = first + index
        cur = list(f.waterfall)[index]
        chart = BarChart()
        chart.type = "col"
        chart.title = f"Revenue to recognize by month ({cur})"
        chart.y_axis.title = cur
        chart.y_axis.numFmt = money_format(cur).split(";")[0]
        chart.legend = None
        chart.height, chart.width = 7, 18
        chart.add_data(
            Reference(s.ws, min_col=2, max_col=len(months) + 1, min_row=row),
            from_rows=True,
            titles_from_data=False,
        )
        chart.set_categories(
            Reference(s.ws, min_col=2, max_col=len(months) + 1, min_row=header_row)
        )
        s.ws.add_chart(chart, f"{'A' if index % 2 == 0 else 'I'}{anchor_row + 15 * (index // 2)}")
    return _RevenueRanges(recognized_last, roll_first, roll_last)


def _write_aging(wb: Workbook, f: m.Figures) -> None:
    s = _Sheet(wb, "AR aging", [16, 28, 9, 15, 15, 15, 15, 15, 16])
    s.freeze("A2")
    s.header(
        [
            "Customer account",
            "Customer name",
            "Currency",
            "Current",
            "1-30 days",
            "31-60 days",
            "61-90 days",
            "90+ days",
            "Total",
        ]
    )
    for a in f.aging:
        row = s.row + 1
        s.append(
            [
                s.text(a.customer_account),
                s.text(a.customer_name),
                s.text(a.currency),
                *(s.money(a.buckets[bucket], a.currency) for bucket in m.AGING_BUCKETS),
                s.money_formula(f"SUM(D{row}:H{row})", a.currency),
            ]
        )
    last = s.row
    s.autofilter(9, last)
    s.blank()
    for cur in sorted({a.currency for a in f.aging}):
        s.append(
            [
                s.text(f"Total {cur}", font=_TOTAL_FONT, border=_TOTAL_BORDER),
                s.text("", border=_TOTAL_BORDER),
                s.text(cur, font=_TOTAL_FONT, border=_TOTAL_BORDER),
                *(
                    s.money_formula(
                        f'SUMIF($C$2:$C${last},"{cur}",{c}$2:{c}${last})',
                        cur,
                        font=_TOTAL_FONT,
                        border=_TOTAL_BORDER,
                    )
                    for c in "DEFGHI"
                ),
            ]
        )
    s.append(
        [
            s.text(
                f"Open receivables at {f.period.end:%Y-%m-%d} by days past due; "
                "void invoices excluded.",
                font=_NOTE_FONT,
            )
        ]
    )


def _write_tax(wb: Workbook, f: m.Figures) -> None:
    s = _Sheet(wb, "Tax", [18, 9, 10, 17, 16, 16, 16, 16, 12])
    s.freeze("A2")
    s.header(
        [
            "Jurisdiction",
            "Currency",
            "Invoices",
            "Taxable",
            "Tax billed",
            "Tax billed (invoices in engine)",
            "Tax computed by engine",
            "Variance",
            "Invoices not in engine",
        ]
    )
    for t in f.tax:
        row = s.row + 1
        cur = t.currency
        s.append(
            [
                s.text(t.jurisdiction),
                s.text(cur),
                s.count(t.invoices),
                s.money(t.taxable, cur),
                s.money(t.tax_billed, cur),
                s.money(t.tax_billed_in_engine, cur),
                s.money(t.tax_computed, cur),
                s.money_formula(f"F{row}-G{row}", cur),
                s.count(t.not_in_engine),
            ]
        )
    last = s.row
    s.autofilter(9, last)
    s.blank()
    for cur in sorted({t.currency for t in f.tax}):
        s.append(
            [
                s.text(f"Total {cur}", font=_TOTAL_FONT, border=_TOTAL_BORDER),
                s.text(cur, font=_TOTAL_FONT, border=_TOTAL_BORDER),
                s.formula(
                    f'=SUMIF($B$2:$B${last},"{cur}",C$2:C${last})',
                    _COUNT_FORMAT,
                    font=_TOTAL_FONT,
                    border=_TOTAL_BORDER,
                ),
                *(
                    s.money_formula(
                        f'SUMIF($B$2:$B${last},"{cur}",{c}$2:{c}${last})',
                        cur,
                        font=_TOTAL_FONT,
                        border=_TOTAL_BORDER,
                    )
                    for c in "DEFGH"
                ),
            ]
        )
    s.append(
        [
            s.text(
                "Variance = tax billed - tax computed, over the invoices the tax engine "
                "holds; invoices not in the engine yet are counted on the right.",
                font=_NOTE_FONT,
            )
        ]
    )
    s.blank()
    s.section("Invoices whose billed tax differs from the engine's")
    s.header(
        [
            "Invoice",
            "Jurisdiction",
            "Currency",
            "Entity",
            "Issue date",
            "Tax billed",
            "Tax computed",
            "Variance",
        ]
    )
    for v in f.tax_variances:
        cur = v.currency
        s.append(
            [
                s.text(v.number),
                s.text(v.jurisdiction),
                s.text(cur),
                s.text(v.entity),
                s.date(v.issue_date),
                s.money(v.tax_billed, cur),
                s.money(v.tax_computed, cur),
                s.money(v.variance, cur),
            ]
        )
    if not f.tax_variances:
        s.append([s.text("None.", font=_NOTE_FONT)])


_SUMMARY_HEADER_ROW = 7
_KIND_LABELS = {
    "invoice": "Invoices",
    "credit_note": "Credit notes",
    "payment": "Payments",
    "revenue": "Revenue entries",
}


def _write_reconciliation(
    wb: Workbook,
    f: m.Figures,
    tallies: dict[str, m.Tally],
    state: sa.Engine,
    timezone: ZoneInfo,
    notify: Progress,
) -> None:
    s = _Sheet(wb, "Reconciliation", [16, 14, 16, 18, 40, 12, 14, 50, 50, 17])
    s.freeze("A2")
    s.header(
        [
            "Kind",
            "Currency",
            "Billing count",
            "Billing amount",
            "Synced to ERP (count)",
            "Synced amount",
            "Count not synced",
            "Amount not synced",
        ]
    )
    for kind, tally in [*tallies.items(), ("revenue", f.revenue_recon)]:
        for cur, t in sorted(tally.by_currency.items()):
            row = s.row + 1
            s.append(
                [
                    s.text(_KIND_LABELS[kind]),
                    s.text(cur),
                    s.count(t.count),
                    s.money(t.amount, cur),
                    s.count(t.synced_count),
                    s.money(t.synced_amount, cur),
                    s.formula(f"=C{row}-E{row}", _COUNT_FORMAT),
                    s.money_formula(f"D{row}-F{row}", cur),
                ]
            )
    s.autofilter(8, s.row)
    s.append(
        [
            s.text(
                "Billing counts documents of the period that count (no voids, issued "
                "credit notes, succeeded payments); synced = ledger status synced.",
                font=_NOTE_FONT,
            )
        ]
    )
    s.blank()
    s.section("Exceptions: ledger rows failed, dead or waiting for a retry (all targets)")
    s.header(
        [
            "Target",
            "Kind",
            "Record",
            "Customer",
            "Document date",
            "Status",
            "Attempts",
            "Error",
            "What to do",
            "Last change",
        ]
    )
    count = 0
    for e in m.exception_rows(state):
        changed = e.updated_at.astimezone(timezone).replace(tzinfo=None)
        s.append(
            [
                s.text(e.target),
                s.text(e.kind),
                s.text(e.label),
                s.text(e.customer_account),
                s.date(e.document_date),
                s.text(e.status),
                s.count(e.attempts),
                s.text(e.error, alignment=_WRAP),
                s.text(e.action, alignment=_WRAP),
                s.date(changed, _DATETIME_FORMAT),
            ]
        )
        count += 1
        if count % _PROGRESS_EVERY == 0:
            notify("Exceptions", count)
    if count == 0:
        s.append([s.text("No exceptions.", font=_NOTE_FONT)])
    notify("Exceptions", count)


def _write_summary(
    s: _Sheet,
    f: m.Figures,
    totals: Sequence[CurrencyTotals],
    entities: Sequence[str],
    generated_at: datetime,
    erp_target: str,
    ranges: dict[str, int],
    revenue: _RevenueRanges,
) -> None:
    s.append([s.text(f"Monthly finance report {f.period.label}", font=_TITLE_FONT)])
    s.append([s.text("Period"), s.date(f.period.start), s.date(f.period.end)])
    s.append([s.text("Entities"), s.text(", ".join(entities) or "(none)")])
    s.append(
        [s.text("Generated"), s.text(f"{generated_at:%Y-%m-%d %H:%M} {generated_at.tzname()}")]
    )
    s.append(
        [
            s.text("Exceptions"),
            s.count(f.exceptions_count),
            s.text("ledger rows failed, dead or in retry (Reconciliation sheet)"),
        ]
    )
    s.blank()
    s.header(
        [
            "Currency",
            "Invoiced",
            "Credited",
            "Collected",
            "Tax",
            "Recognized",
            "Deferred closing",
            "Ties to sheets",
        ]
    )
    assert s.row == _SUMMARY_HEADER_ROW
    inv, cn, pay = ranges["Invoices"], ranges["Credit notes"], ranges["Payments"]

    def sumifs(sheet: str, col: str, last: int, status_col: str, rule: str, row: int) -> str:
        return (
            f"SUMIFS('{sheet}'!${col}$2:${col}${last},'{sheet}'!$G$2:$G${last},$A{row},"
            f"'{sheet}'!${status_col}$2:${status_col}${last},{rule})"
        )

    for t in totals:
        row = s.row + 1
        rl, rf1, rf2 = revenue.recognized_last, revenue.roll_first, revenue.roll_last
        checks = [
            f"B{row}-{sumifs('Invoices', 'J', inv, 'K', chr(34) + '<>void' + chr(34), row)}",
            f"C{row}-{sumifs('Credit notes', 'J', cn, 'K', chr(34) + 'issued' + chr(34), row)}",
            f"D{row}-{sumifs('Payments', 'H', pay, 'L', chr(34) + 'succeeded' + chr(34), row)}",
            f"E{row}-{sumifs('Invoices', 'I', inv, 'K', chr(34) + '<>void' + chr(34), row)}",
            f"F{row}-SUMIF(Revenue!$A$2:$A${rl},$A{row},Revenue!$D$2:$D${rl})",
            f"G{row}-SUMIF(Revenue!$B${rf1}:$B${rf2},$A{row},Revenue!$G${rf1}:$G${rf2})",
        ]
        # Spreadsheets add in binary floating point: compare at well below one minor unit.
        check = "=IF(AND(" + ",".join(f"ROUND({c},6)=0" for c in checks) + '),"yes","NO")'
        cur = t.currency
        s.append(
            [
                s.text(cur),
                s.money(t.invoiced, cur),
                s.money(t.credited, cur),
                s.money(t.collected, cur),
                s.money(t.tax, cur),
                s.money(t.recognized, cur),
                s.money(t.deferred_closing, cur),
                s.formula(check),
            ]
        )
    s.append(
        [
            s.text(
                "Amounts per currency, never added across currencies. Invoiced and tax: "
                "invoices issued in the period (no voids); credited: issued credit notes; "
                "collected: succeeded payments received; deferred: ratable lines.",
                font=_NOTE_FONT,
            )
        ]
    )
    s.blank()
    s.section(f"Sync health: ledger of the ERP target '{erp_target}' at report time")
    statuses = ["synced", "pending", "sending", "retry", "failed", "dead"]
    s.header(["Kind", *statuses])
    for kind in sorted(f.sync_health):
        counts = f.sync_health[kind]
        s.append([s.text(kind), *(s.count(counts.get(st, 0)) for st in statuses)])
    if not f.sync_health:
        s.append([s.text("The ledger holds no rows for this target.", font=_NOTE_FONT)])


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
    """Record a built workbook in the state store's ``workbooks`` table; returns its id."""
    from sync.state import workbooks

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
