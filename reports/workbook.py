"""The monthly finance workbook: figures from ``reports.monthly`` written with openpyxl.

The whole workbook is written in write-only mode, so the document sheets stream and a month of a
million invoice lines fits in modest memory. Every amount cell carries its currency's number
format (0 decimals for JPY, 3 for KWD). Every figure and total is a value computed here exactly,
so a reader that does not recalculate (pandas, openpyxl ``data_only``, a mail preview) reads it;
checking formulas beside them ("Ties to sheets" on the Summary, "Ties" on the Revenue sheet)
recompute the figures from the detail rows and say ``yes`` when they agree.

Text from billing data is never a formula or a link: every string cell is written as text
(inline string), and one that starts like a formula (= + - @, tab, CR) also gets the quote
prefix, so a spreadsheet keeps it as text even when someone edits the cell.
"""

from __future__ import annotations

import re
import textwrap
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
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

from core.money import is_known_currency, minor_units
from finsync.config import Config
from mappings.tables import MappingTables
from reports import monthly as m
from reports.files import atomic_write

_HEADER_FONT = Font(bold=True, color="FFFFFF")
_HEADER_FILL = PatternFill("solid", fgColor="1F4E78")
_SECTION_FONT = Font(bold=True, size=12, color="1F4E78")
_TITLE_FONT = Font(bold=True, size=14)
_TOTAL_FONT = Font(bold=True)
_TOTAL_BORDER = Border(top=Side(style="thin"))
_NOTE_FONT = Font(italic=True, color="7F7F7F")
_WRAP = Alignment(wrap_text=True, vertical="top", indent=1)
#: Text a little away from the number on its left (a right-aligned amount, then a status).
_TEXT = Alignment(indent=1)
_CENTER = Alignment(horizontal="center")
_HEADER_LEFT = Alignment(wrap_text=True, vertical="bottom")
_HEADER_RIGHT = Alignment(wrap_text=True, vertical="bottom", horizontal="right")
_LINE_HEIGHT = 15
_DEFAULT_WIDTH = 8.43
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


def _lines_needed(text: str, width: float) -> int:
    """Lines a wrapped ``text`` takes in a column ``width`` characters wide (bold, padded)."""
    usable = max(int(width) - 1, 1)
    lines, used = 1, 0
    for word in text.split():
        size = int(len(word) * 1.1) + 1
        if used and used + size > usable:
            lines, used = lines + 1, 0
        used += size
    return lines


def money_format(currency: str) -> str:
    """Number format with the currency's decimals, negatives in red (JPY ``#,##0``)."""
    decimals = _decimals(currency)
    body = "#,##0" + ("." + "0" * decimals if decimals else "")
    return f"{body};[Red]-{body}"


def clean_text(value: str) -> str:
    """``value`` as a cell can hold it: characters XML forbids replaced, cut to Excel's limit.

    Almost every text is printable, which ``str.isprintable`` tells in C; only the rest (a
    control character, a line break, a non-ASCII space) pays for the regular expression.
    """
    if not value.isprintable():
        value = ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)
    return value[:_MAX_CELL_TEXT]


class _Cell:
    """One cell ready to write: its value, openpyxl data type and workbook style id.

    openpyxl's own cells resolve their font, fill, format and alignment objects one by one for
    every cell (hashing each); here a style is resolved once per workbook (``_Styles``) and the
    cell only carries its id. It has exactly what openpyxl's write-only row writer reads.
    """

    __slots__ = ("_value", "column", "data_type", "has_style", "parent", "row", "style_id", "wrap")
    _comment = None
    hyperlink = None

    def __init__(self, ws: WriteOnlyWorksheet, value: Any, data_type: str, style: _Style) -> None:
        self.parent = ws
        self._value = value
        self.data_type = data_type
        self.style_id, self.has_style, self.wrap = style
        self.row = self.column = 1

    @property
    def value(self) -> Any:
        """The value written."""
        return self._value

    @property
    def coordinate(self) -> str:
        """``A1``-style address, once the row is appended."""
        return f"{get_column_letter(self.column)}{self.row}"


#: A resolved style: workbook style id, whether it is not the default, whether text wraps.
_Style = tuple[int, bool, bool]


class _StreamSheet(WriteOnlyWorksheet):  # type: ignore[misc]
    """A write-only worksheet whose rows are lists of ready ``_Cell`` objects.

    openpyxl's ``append`` would re-type every value and take a cell through an exception to
    tell it from a value; these rows only need their coordinates.
    """

    def _values_to_row(self, values: Iterable[_Cell], row_idx: int) -> Iterator[_Cell]:
        for column, cell in enumerate(values, 1):
            cell.row = row_idx
            cell.column = column
            yield cell


class _Styles:
    """The workbook's cell styles, each resolved once and then known by its id.

    Keys hold the style objects themselves (module constants) by identity: hashing openpyxl
    style objects is what made per-cell styling slow.
    """

    def __init__(self, wb: _Workbook) -> None:
        self.wb = wb
        self._ids: dict[tuple[Any, ...], tuple[_Style, tuple[Any, ...]]] = {}

    def get(
        self,
        ws: WriteOnlyWorksheet,
        *,
        font: Font | None = None,
        fill: PatternFill | None = None,
        fmt: str | None = None,
        border: Border | None = None,
        alignment: Alignment | None = None,
        quote: bool = False,
    ) -> _Style:
        """The style with these attributes (None: the default)."""
        objects = (font, fill, border, alignment)
        key = (*map(id, objects), fmt, quote)
        found = self._ids.get(key)
        if found is None:
            cell = WriteOnlyCell(ws)
            _style(cell, font=font, fill=fill, fmt=fmt, border=border, alignment=alignment)
            if quote:
                cell.quotePrefix = True
            wrap = bool(alignment is not None and alignment.wrap_text)
            # The objects stay referenced here, so their ids are never reused.
            found = ((cell.style_id, cell.has_style, wrap), objects)
            self._ids[key] = found
        return found[0]


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


class _Workbook(Workbook):  # type: ignore[misc]
    """A write-only workbook of ``_StreamSheet`` sheets and the styles its cells share."""

    def __init__(self) -> None:
        super().__init__(write_only=True)
        self.styles = _Styles(self)

    def create_sheet(self, title: str | None = None, index: int | None = None) -> _StreamSheet:
        """A new streaming sheet at the end (or at ``index``)."""
        ws = _StreamSheet(parent=self, title=title)
        self._add_sheet(sheet=ws, index=index)
        return ws


class _Sheet:
    """A write-only sheet with typed cell helpers; knows which row it is on."""

    def __init__(self, wb: _Workbook, title: str, widths: Sequence[float]) -> None:
        self.ws: WriteOnlyWorksheet = wb.create_sheet(title)
        self.styles = wb.styles
        # Printed or exported to PDF: landscape, all columns on one page width.
        self.ws.page_setup.orientation = "landscape"
        self.ws.page_setup.fitToWidth = 1
        self.ws.page_setup.fitToHeight = 0
        self.ws.sheet_properties.pageSetUpPr.fitToPage = True
        for index, width in enumerate(widths, start=1):
            self.ws.column_dimensions[get_column_letter(index)].width = width
        self.widths = list(widths)
        self.row = 0
        # The commonest cells' styles, looked up without building a key.
        self._plain_text = self.styles.get(self.ws, alignment=_TEXT)
        self._quoted_text = self.styles.get(self.ws, alignment=_TEXT, quote=True)
        self._money: dict[str, _Style] = {}
        self._dates: dict[str, _Style] = {}

    def freeze(self, cell: str) -> None:
        self.ws.freeze_panes = cell

    def text(self, value: str | None, **style: Any) -> _Cell:
        """A cell that holds ``value`` as text, whatever it starts with (never a formula)."""
        value = clean_text(value) if value else ""
        quote = value.startswith(_FORMULA_START)
        if not style:
            return _Cell(self.ws, value, "s", self._quoted_text if quote else self._plain_text)
        style.setdefault("alignment", _TEXT)
        return _Cell(self.ws, value, "s", self.styles.get(self.ws, quote=quote, **style))

    def money(self, value: Decimal | None, currency: str, **style: Any) -> _Cell:
        if style:
            found = self.styles.get(self.ws, fmt=money_format(currency), **style)
        else:
            found = self._money.get(currency) or self._money.setdefault(
                currency, self.styles.get(self.ws, fmt=money_format(currency))
            )
        return _Cell(self.ws, value, "n", found)

    def date(self, value: date | None, fmt: str = _DATE_FORMAT) -> _Cell:
        found = self._dates.get(fmt) or self._dates.setdefault(
            fmt, self.styles.get(self.ws, fmt=fmt)
        )
        return _Cell(self.ws, value, "n" if value is None else "d", found)

    def count(self, value: int, **style: Any) -> _Cell:
        return _Cell(self.ws, value, "n", self.styles.get(self.ws, fmt=_COUNT_FORMAT, **style))

    def formula(self, text: str, fmt: str | None = None, **style: Any) -> _Cell:
        """A checking formula (its "yes"/"NO" centred in its column)."""
        style.setdefault("alignment", _CENTER)
        return _Cell(self.ws, text, "f", self.styles.get(self.ws, fmt=fmt, **style))

    def append(self, cells: Iterable[_Cell]) -> int:
        """Append a row; a row with wrapped text gets the height its longest cell needs."""
        row = list(cells)
        lines = 1
        for index, cell in enumerate(row):
            if cell.wrap and isinstance(cell.value, str):
                width = self.widths[index] if index < len(self.widths) else _DEFAULT_WIDTH
                needed = sum(_lines_needed(part, width) for part in cell.value.split("\n"))
                lines = max(lines, needed)
        if lines > 1 and self.row + 1 not in self.ws.row_dimensions:
            self.ws.row_dimensions[self.row + 1].height = _LINE_HEIGHT * lines + 3
        self.ws.append(row)
        self.row += 1
        return self.row

    def note(self, text: str) -> int:
        """A footnote, wrapped into rows no wider than the sheet's first columns, so it never
        widens the printed page."""
        width = max(int(sum(self.widths[:8]) * 1.1), 60)
        for line in textwrap.wrap(text, width):
            self.append([self.text(line, font=_NOTE_FONT)])
        return self.row

    def header(self, titles: Sequence[str], numeric: Collection[int] = ()) -> int:
        """A header row tall enough for its wrapped titles; ``numeric`` (0-based) columns are
        right-aligned like their numbers."""
        lines = 1
        for index, title in enumerate(titles):
            width = self.widths[index] if index < len(self.widths) else _DEFAULT_WIDTH
            lines = max(lines, _lines_needed(title, width))
        self.ws.row_dimensions[self.row + 1].height = _LINE_HEIGHT * lines + 3
        return self.append(
            self.text(
                t,
                font=_HEADER_FONT,
                fill=_HEADER_FILL,
                alignment=_HEADER_RIGHT if index in numeric else _HEADER_LEFT,
            )
            for index, t in enumerate(titles)
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
    """The Summary's figures for one currency (docs/accounting.md defines each)."""

    currency: str
    invoiced: Decimal
    tax: Decimal
    voided: Decimal
    credited: Decimal
    collected: Decimal
    refunded: Decimal
    recognized: Decimal
    deferred_closing: Decimal
    open_receivable: Decimal
    credit_balance: Decimal
    left_out_records: int = 0
    left_out_money: Decimal = Decimal(0)

    @property
    def net_collected(self) -> Decimal:
        """Collected less refunded."""
        return self.collected - self.refunded


#: The Summary's figure rows, in order: label, CurrencyTotals attribute.
SUMMARY_FIGURES = (
    ("Invoiced", "invoiced"),
    ("Tax", "tax"),
    ("Voided (issued earlier)", "voided"),
    ("Credited", "credited"),
    ("Collected", "collected"),
    ("Refunded", "refunded"),
    ("Net collected", "net_collected"),
    ("Recognized", "recognized"),
    ("Deferred revenue, closing", "deferred_closing"),
    ("Open receivable", "open_receivable"),
    ("Customer credit balances", "credit_balance"),
)
#: The Summary's rows of what validation left out (count, then money).
LEFT_OUT_FIGURES = (
    ("Left out: records failing validation", "left_out_records"),
    ("Left out: their money", "left_out_money"),
)


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
    return f"{amount:,.{_decimals(currency)}f}"


def period_text(period: m.Period) -> str:
    """``1 Oct 2026 to 31 Oct 2026``."""
    return f"{period.start.day} {period.start:%b %Y} to {period.end.day} {period.end:%b %Y}"


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

    wb = _Workbook()
    wb.calculation = CalcProperties(fullCalcOnLoad=True)
    summary = _Sheet(wb, "Summary", [27, 17, 17, 17, 17, 17, 17])
    # Write-only sheets take their panes before the first row; the Summary is filled last.
    summary.freeze(f"B{_SUMMARY_HEADER_ROW + 1}")
    tallies = {k: m.Tally(k) for k in ("invoice", "invoice_void", "credit_note", "payment")}
    tallies["refund"] = m.Tally("refund")
    ranges: dict[str, int] = {}
    common = (billing_engine, state_engine, per, entity, erp_target)

    ranges["Invoices"] = _write_documents(
        wb,
        "Invoices",
        _INVOICE_COLUMNS,
        m.invoice_rows(
            *common,
            tallies["invoice"],
            voids=tallies["invoice_void"],
            timezone=timezone,
            left_out=figures.left_out,
        ),
        _invoice_cells,
        total_cols=(8, 9, 10),
        counted_col=13,
        totals_of=(m.INVOICED, m.VOIDED),
        notify=notify,
        note=(
            "Totals: invoiced = issued in the month and not voided in it; voided = issued "
            "earlier and voided in the month (docs/accounting.md)."
        ),
    )
    ranges["Credit notes"] = _write_documents(
        wb,
        "Credit notes",
        _CREDIT_COLUMNS,
        m.credit_note_rows(*common, tallies["credit_note"], left_out=figures.left_out),
        _credit_cells,
        total_cols=(8, 9, 10),
        counted_col=12,
        totals_of=(m.CREDITED,),
        notify=notify,
        note="Totals include issued credit notes only; a void credit note counts for nothing.",
    )
    ranges["Payments"] = _write_documents(
        wb,
        "Payments",
        _PAYMENT_COLUMNS,
        m.payment_rows(*common, tallies["payment"], left_out=figures.left_out),
        _payment_cells,
        total_cols=(8, 9, 10, 11),
        counted_col=13,
        totals_of=(m.COLLECTED,),
        notify=notify,
        note="Totals include succeeded payments only; failed and reversed ones count nowhere.",
    )
    ranges["Refunds"] = _write_documents(
        wb,
        "Refunds",
        _REFUND_COLUMNS,
        m.refund_rows(*common, tallies["refund"], left_out=figures.left_out),
        _refund_cells,
        total_cols=(8,),
        counted_col=9,
        totals_of=(m.REFUNDED,),
        notify=notify,
        note="Refunds of payments and of credit notes, by refund date.",
    )
    revenue_ranges = _write_revenue(wb, figures)
    ranges["AR aging"] = _write_aging(wb, figures)
    ranges["Credit balances"] = _write_credit_balances(wb, figures)
    _write_tax(wb, figures)
    _write_reconciliation(wb, figures, tallies, state_engine, timezone, notify)
    ranges["Exceptions"] = _write_exceptions(wb, figures.left_out)

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
    left_out = figures.left_out.per_currency()
    # A code that is not a currency (XXX, usd) never gets a column: its records are all left
    # out, and the Summary names them below the figures.
    currencies = sorted(
        c for c in set().union(*figure_sets.values(), left_out) if is_known_currency(c)
    )
    totals = tuple(
        CurrencyTotals(
            currency=cur,
            **{name: got.get(cur, m.ZERO) for name, got in figure_sets.items()},
            left_out_records=left_out.get(cur, (0, m.ZERO))[0],
            left_out_money=left_out.get(cur, (0, m.ZERO))[1],
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
            "refunds": tallies["refund"].rows,
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
    ("Status", 10),
    ("Voided on", 12),
    ("Counted as", 16),
    ("Memo", 28),
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
    ("Counted as", 18),
    ("Reason", 28),
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
    ("Counted as", 22),
    ("ERP id", 12),
    ("Sync status", 13),
)
_REFUND_COLUMNS = (
    ("Reference", 18),
    ("Entity", 10),
    ("Customer account", 16),
    ("Customer name", 28),
    ("Refunded on", 12),
    ("Refund of", 24),
    ("Currency", 9),
    ("Amount", 15),
    ("Counted as", 12),
    ("ERP id", 12),
    ("Sync status", 13),
)
#: The currency column of the document sheets (G).
_CURRENCY_COL = 7


def _invoice_cells(s: _Sheet, r: m.InvoiceRow) -> list[_Cell]:
    cur = r.currency
    return [
        s.text(r.number),
        s.text(r.entity),
        s.text(r.customer_account),
        s.text(r.customer_name, alignment=_WRAP),
        s.date(r.issue_date),
        s.date(r.due_date),
        s.text(cur),
        s.money(r.net, cur),
        s.money(r.tax, cur),
        s.money(r.total, cur),
        s.text(r.status),
        s.date(r.voided_on),
        s.text(r.counted_as),
        s.text(r.memo, alignment=_WRAP),
        s.text(r.erp_id),
        s.text(r.sync_status),
    ]


def _credit_cells(s: _Sheet, r: m.CreditNoteRow) -> list[_Cell]:
    cur = r.currency
    return [
        s.text(r.number),
        s.text(r.invoice_number),
        s.text(r.entity),
        s.text(r.customer_account),
        s.text(r.customer_name, alignment=_WRAP),
        s.date(r.issue_date),
        s.text(cur),
        s.money(r.net, cur),
        s.money(r.tax, cur),
        s.money(r.total, cur),
        s.text(r.status),
        s.text(r.counted_as),
        s.text(r.reason, alignment=_WRAP),
        s.text(r.erp_id),
        s.text(r.sync_status),
    ]


def _payment_cells(s: _Sheet, r: m.PaymentRow) -> list[_Cell]:
    cur = r.currency
    return [
        s.text(r.reference),
        s.text(r.entity),
        s.text(r.customer_account),
        s.text(r.customer_name, alignment=_WRAP),
        s.date(r.received_on),
        s.text(r.method),
        s.text(cur),
        s.money(r.amount, cur),
        s.money(r.applied, cur),
        s.money(r.unapplied, cur),
        s.money(r.fee, cur),
        s.text(r.status),
        s.text(r.counted_as),
        s.text(r.erp_id),
        s.text(r.sync_status),
    ]


def _refund_cells(s: _Sheet, r: m.RefundRow) -> list[_Cell]:
    cur = r.currency
    return [
        s.text(r.reference),
        s.text(r.entity),
        s.text(r.customer_account),
        s.text(r.customer_name, alignment=_WRAP),
        s.date(r.refunded_on),
        s.text(r.refund_of),
        s.text(cur),
        s.money(r.amount, cur),
        s.text(r.counted_as),
        s.text(r.erp_id),
        s.text(r.sync_status),
    ]


def _numeric_columns(columns: Sequence[tuple[str, float]]) -> set[int]:
    return {
        index
        for index, (title, _) in enumerate(columns)
        if title in ("Net", "Tax", "Total", "Amount", "Applied", "Unapplied", "Fee", "Voided on")
        or title.endswith((" date", " on"))
    }


def _write_documents(
    wb: _Workbook,
    title: str,
    columns: Sequence[tuple[str, float]],
    rows: Iterable[Any],
    to_cells: Callable[[_Sheet, Any], list[_Cell]],
    *,
    total_cols: Sequence[int],
    counted_col: int,
    totals_of: Sequence[str],
    notify: Progress,
    note: str,
) -> int:
    """Stream one document sheet; below the rows, per currency and per ``totals_of`` value of
    the "Counted as" column, one row of totals (values summed here, exactly).

    Returns the last data row, which the Summary's checking formulas refer to.
    """
    s = _Sheet(wb, title, [w for _, w in columns])
    s.freeze("A2")
    s.header([t for t, _ in columns], numeric=_numeric_columns(columns))
    sums: dict[tuple[str, str], list[Decimal]] = {}
    currencies: list[str] = []
    for r in rows:
        cells = to_cells(s, r)
        s.append(cells)
        if r.currency not in currencies:
            currencies.append(r.currency)
        if r.counted_as in totals_of:
            got = sums.setdefault((r.currency, r.counted_as), [m.ZERO] * len(total_cols))
            for k, col in enumerate(total_cols):
                got[k] += cells[col - 1].value
        if (s.row - 1) % _PROGRESS_EVERY == 0:
            notify(title, s.row - 1)
    last = s.row
    notify(title, last - 1)
    s.autofilter(len(columns), last)
    s.blank()
    for cur in currencies:
        for counted in totals_of:
            values = sums.get((cur, counted))
            if values is None and counted != totals_of[0]:
                continue
            total_cells: list[_Cell] = [
                s.text(f"Total {cur} {counted}", font=_TOTAL_FONT, border=_TOTAL_BORDER)
            ] + [s.text("", border=_TOTAL_BORDER) for _ in range(_CURRENCY_COL - 2)]
            total_cells.append(s.text(cur, font=_TOTAL_FONT, border=_TOTAL_BORDER))
            for k in range(max(total_cols) - _CURRENCY_COL):
                col = _CURRENCY_COL + 1 + k
                amount = values[total_cols.index(col)] if values and col in total_cols else None
                total_cells.append(
                    s.money(
                        m.ZERO if amount is None and col in total_cols else amount,
                        cur,
                        font=_TOTAL_FONT,
                        border=_TOTAL_BORDER,
                    )
                )
            s.append(total_cells)
    s.note(note)
    return last


# --- small sheets ------------------------------------------------------------------------


@dataclass(frozen=True)
class _RevenueRanges:
    recognized_last: int  # rows 2..recognized_last of the recognition table
    roll_first: int
    roll_last: int


def _write_revenue(wb: _Workbook, f: m.Figures) -> _RevenueRanges:
    s = _Sheet(wb, "Revenue", [12, 18, 16, 17, 17, 17, 17, 17, 17, 17, 17, 17, 17, 17, 17, 17, 17])
    s.freeze("A2")
    s.header(["Currency", "Product family", "Revenue account", "Recognized"], numeric={3})
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
    per_currency = f.recognized()
    for cur in sorted(per_currency):
        s.append(
            [
                s.text(cur, font=_TOTAL_FONT, border=_TOTAL_BORDER),
                s.text(f"Total {cur}", font=_TOTAL_FONT, border=_TOTAL_BORDER),
                s.text("", border=_TOTAL_BORDER),
                s.money(per_currency[cur], cur, font=_TOTAL_FONT, border=_TOTAL_BORDER),
            ]
        )
    s.note("Schedule entries of the month, ratable and point-in-time, reversals included.")
    s.blank()
    s.section(f"Deferred revenue roll-forward, {f.period.label} (ratable lines)")
    s.header(
        [
            "Entity",
            "Currency",
            "Opening",
            "Billed",
            "Credited",
            "Voided",
            "Recognized",
            "Closing",
            "Ties",
        ],
        numeric={2, 3, 4, 5, 6, 7},
    )
    roll_first = s.row + 1
    for rf in f.roll_forward:
        row = s.row + 1
        cur = rf.currency
        check = f"ROUND(C{row}+D{row}-E{row}-F{row}-G{row}-H{row},6)=0"
        s.append(
            [
                s.text(rf.entity),
                s.text(cur),
                s.money(rf.opening, cur),
                s.money(rf.billed, cur),
                s.money(rf.credited, cur),
                s.money(rf.voided, cur),
                s.money(rf.recognized, cur),
                s.money(rf.closing, cur),
                s.formula(f'=IF({check},"yes","NO")'),
            ]
        )
    roll_last = s.row
    s.note("Closing = opening + billed - credited - voided - recognized; Ties recomputes it.")
    s.blank()
    s.section(
        "Revenue still to recognize (ratable schedule entries by month, invoices issued by "
        f"{f.period.end:%Y-%m-%d})"
    )
    months = [f"{d:%Y-%m}" for d in f.waterfall_months]
    after = f"Credits and voids after {f.period.end:%Y-%m-%d}"
    titles = ["Currency", *months, "Later", "Total", after, "Deferred closing", "Ties"]
    header_row = s.header(titles, numeric=set(range(1, len(titles) - 1)))
    first = header_row + 1
    total_col = get_column_letter(len(months) + 3)
    after_col = get_column_letter(len(months) + 4)
    closing_col = get_column_letter(len(months) + 5)
    closing = f.deferred_closing()
    for cur, amounts in f.waterfall.items():
        row = s.row + 1
        check = (
            f"ROUND({total_col}{row}+{after_col}{row}-{closing_col}{row},6)=0,"
            f"ROUND(SUM(B{row}:{get_column_letter(len(months) + 2)}{row})-{total_col}{row},6)=0"
        )
        s.append(
            [
                s.text(cur),
                *(s.money(a, cur) for a in amounts),
                s.money(sum(amounts, m.ZERO), cur),
                s.money(f.later_reductions.get(cur, m.ZERO), cur),
                s.money(closing.get(cur, m.ZERO), cur),
                s.formula(f'=IF(AND({check}),"yes","NO")'),
            ]
        )
    s.note(
        "Deferred closing = revenue still to recognize + the credits and voids dated "
        "after the month's end (their reversals fall in later months)."
    )
    anchor_row = s.row + 3
    for index, cur in enumerate(f.waterfall):
        row = first + index
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


def _write_aging(wb: _Workbook, f: m.Figures) -> int:
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
        ],
        numeric={3, 4, 5, 6, 7, 8},
    )
    totals: dict[str, list[Decimal]] = {}
    for a in f.aging:
        buckets = [a.buckets[bucket] for bucket in m.AGING_BUCKETS]
        s.append(
            [
                s.text(a.customer_account),
                s.text(a.customer_name, alignment=_WRAP),
                s.text(a.currency),
                *(s.money(v, a.currency) for v in buckets),
                s.money(a.total, a.currency),
            ]
        )
        got = totals.setdefault(a.currency, [m.ZERO] * (len(buckets) + 1))
        for k, v in enumerate([*buckets, a.total]):
            got[k] += v
    last = s.row
    s.autofilter(9, last)
    s.blank()
    for cur in sorted(totals):
        s.append(
            [
                s.text(f"Total {cur}", font=_TOTAL_FONT, border=_TOTAL_BORDER),
                s.text("", border=_TOTAL_BORDER),
                s.text(cur, font=_TOTAL_FONT, border=_TOTAL_BORDER),
                *(s.money(v, cur, font=_TOTAL_FONT, border=_TOTAL_BORDER) for v in totals[cur]),
            ]
        )
    s.note(
        f"What customers owe at {f.period.end:%Y-%m-%d} by days past due: invoices not "
        "voided by that day, less payments applied and credit notes issued by it. "
        "Credit balances are on their own sheet."
    )
    return last


def _write_credit_balances(wb: _Workbook, f: m.Figures) -> int:
    s = _Sheet(wb, "Credit balances", [16, 28, 9, 16, 16, 16, 16])
    s.freeze("A2")
    s.header(
        [
            "Customer account",
            "Customer name",
            "Currency",
            "Unapplied cash",
            "Over-credited invoices",
            "Refunded",
            "Credit balance",
        ],
        numeric={3, 4, 5, 6},
    )
    totals: dict[str, Decimal] = defaultdict(lambda: m.ZERO)
    for c in f.credit_balances:
        cur = c.currency
        s.append(
            [
                s.text(c.customer_account),
                s.text(c.customer_name, alignment=_WRAP),
                s.text(cur),
                s.money(c.unapplied_cash, cur),
                s.money(c.over_credit, cur),
                s.money(c.refunded, cur),
                s.money(c.balance, cur),
            ]
        )
        totals[cur] += c.balance
    last = s.row
    s.autofilter(7, last)
    if not f.credit_balances:
        s.note("No customer has a credit balance.")
    s.blank()
    for cur in sorted(totals):
        s.append(
            [
                s.text(f"Total {cur}", font=_TOTAL_FONT, border=_TOTAL_BORDER),
                s.text("", border=_TOTAL_BORDER),
                s.text(cur, font=_TOTAL_FONT, border=_TOTAL_BORDER),
                *(s.text("", border=_TOTAL_BORDER) for _ in range(3)),
                s.money(totals[cur], cur, font=_TOTAL_FONT, border=_TOTAL_BORDER),
            ]
        )
    s.note(
        f"What the company owes customers at {f.period.end:%Y-%m-%d}: unapplied cash + "
        "invoices credited or paid beyond their total - refunds paid by that day."
    )
    return last


def _write_exceptions(wb: _Workbook, left_out: m.LeftOut) -> int:
    """Every record validation rejected, with its amount and each reason with its fix; then the
    records and money left out per currency code as billing holds it."""
    s = _Sheet(wb, "Exceptions", [14, 30, 10, 15, 15, 22, 70])
    s.freeze("A2")
    s.header(
        [
            "Kind",
            "Record",
            "Currency",
            "Amount",
            "Money left out",
            "Field",
            "What is wrong and what to do",
        ],
        numeric={3, 4},
    )
    for r in left_out.rejections:
        code = r.currency if r.currency is not None else "(none)"
        fmt_code = code if is_known_currency(code) else "USD"
        money = r.amount if r.kind in m.MONEY_KINDS else None
        s.append(
            [
                s.text(r.kind.replace("_", " ")),
                s.text(r.label, alignment=_WRAP),
                s.text(code),
                s.money(r.amount, fmt_code),
                s.money(money, fmt_code),
                s.text(", ".join(p.field for p in r.problems), alignment=_WRAP),
                s.text("\n".join(str(p) for p in r.problems), alignment=_WRAP),
            ]
        )
    s.autofilter(7, s.row)
    if not left_out.rejections:
        s.note("Every billing record passed validation.")
    last = max(s.row, 2)  # checking formulas need a range below the header, even an empty one
    s.blank()
    s.section("Left out per currency code (as billing holds it)")
    s.header(["Currency", "Records", "Money", "Ties"], numeric={1, 2})
    for code, (count, money) in left_out.per_currency().items():
        row = s.row + 1
        fmt_code = code if is_known_currency(code) else "USD"
        exact = f'EXACT($C$2:$C${last},"{code}")'  # COUNTIF would count "usd" as USD
        check = (
            f"SUMPRODUCT({exact}*1)=B{row},"
            f"ABS(SUMPRODUCT({exact}*$E$2:$E${last})-C{row})<=MAX(1E-6,ABS(C{row})*1E-13)"
        )
        s.append(
            [
                s.text(code),
                s.count(count),
                s.money(money, fmt_code),
                s.formula(f'=IF(AND({check}),"yes","NO")'),
            ]
        )
    s.note(
        "These records break the billing contract (docs/billing-contract.md): they "
        "are in no figure of this workbook and are not sent to any target. Fix them in "
        "billing as each line says; the next sync and workbook take them in."
    )
    return last


def _write_tax(wb: _Workbook, f: m.Figures) -> None:
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
        ],
        numeric={2, 3, 4, 5, 6, 7, 8},
    )
    sums: dict[str, list[Decimal]] = {}
    counts: dict[str, int] = {}
    for t in f.tax:
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
                s.money(t.tax_billed_in_engine - t.tax_computed, cur),
                s.count(t.not_in_engine),
            ]
        )
        got = sums.setdefault(cur, [m.ZERO] * 5)
        for k, amount in enumerate(
            (
                t.taxable,
                t.tax_billed,
                t.tax_billed_in_engine,
                t.tax_computed,
                t.tax_billed_in_engine - t.tax_computed,
            )
        ):
            got[k] += amount
        counts[cur] = counts.get(cur, 0) + t.invoices
    last = s.row
    s.autofilter(9, last)
    s.blank()
    for cur in sorted(sums):
        s.append(
            [
                s.text(f"Total {cur}", font=_TOTAL_FONT, border=_TOTAL_BORDER),
                s.text(cur, font=_TOTAL_FONT, border=_TOTAL_BORDER),
                s.count(counts[cur], font=_TOTAL_FONT, border=_TOTAL_BORDER),
                *(s.money(a, cur, font=_TOTAL_FONT, border=_TOTAL_BORDER) for a in sums[cur]),
            ]
        )
    s.note(
        "Variance = tax billed - tax computed, over the invoices the tax engine "
        "holds; invoices not in the engine yet are counted on the right."
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
        ],
        numeric={4, 5, 6, 7},
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
        s.note("None.")


_SUMMARY_HEADER_ROW = 7
_KIND_LABELS = {
    "invoice": "Invoices",
    "invoice_void": "Invoice voids",
    "credit_note": "Credit notes",
    "payment": "Payments",
    "refund": "Refunds",
    "revenue": "Revenue journals",
}


def _write_reconciliation(
    wb: _Workbook,
    f: m.Figures,
    tallies: dict[str, m.Tally],
    state: sa.Engine,
    timezone: ZoneInfo,
    notify: Progress,
) -> None:
    s = _Sheet(wb, "Reconciliation", [18, 14, 16, 18, 16, 18, 14, 36, 40, 17])
    s.freeze("A2")
    s.header(
        [
            "Kind",
            "Currency",
            "Billing count",
            "Billing amount",
            "Synced to ERP (count)",
            "Amount in ERP",
            "Count not synced",
            "Amount not synced",
        ],
        numeric={2, 3, 4, 5, 6, 7},
    )
    for kind, tally in [*tallies.items(), ("revenue", f.journal_tally())]:
        for cur, t in sorted(tally.by_currency.items()):
            s.append(
                [
                    s.text(_KIND_LABELS[kind]),
                    s.text(cur),
                    s.count(t.count),
                    s.money(t.amount, cur),
                    s.count(t.synced_count),
                    s.money(t.synced_amount, cur),
                    s.count(t.count - t.synced_count),
                    s.money(t.amount - t.synced_amount, cur),
                ]
            )
    s.autofilter(8, s.row)
    s.note(
        "Billing counts the documents in the month's figures (invoiced, voided, "
        "credited, collected, refunded); synced = the ledger holds them synced (a void: "
        "the void itself). Revenue journals: one per entity and currency, the ratable "
        "schedule entries of the month against the journal and its adjustments as sent."
    )
    s.blank()
    s.section(f"Revenue journals of {f.period.label}: schedule entries against the ERP")
    s.header(
        [
            "Entity",
            "Currency",
            "Schedule entries",
            "Scheduled amount",
            "Recognized by billing",
            "Posted to ERP",
            "Difference",
            "Journal status",
        ],
        numeric={2, 3, 4, 5, 6},
    )
    for j in f.journals:
        cur = j.currency
        posted = j.posted if j.posted is not None else m.ZERO
        s.append(
            [
                s.text(j.entity),
                s.text(cur),
                s.count(j.entries),
                s.money(j.scheduled, cur),
                s.money(j.recognized, cur),
                s.money(posted, cur),
                s.money(j.scheduled - posted, cur),
                s.text(j.sync_status),
            ]
        )
    if not f.journals:
        s.note("No ratable revenue in this month.")
    s.note(
        "A journal posts what billing has recognized; entries still scheduled are "
        "posted once billing closes the month. Point-in-time revenue is posted by the "
        "invoices themselves."
    )
    s.blank()
    s.section("Sync exceptions: ledger rows failed, dead or waiting for a retry (all targets)")
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
        ],
        numeric={4, 6, 9},
    )
    count = 0
    for e in m.exception_rows(state):
        changed = e.updated_at.astimezone(timezone).replace(tzinfo=None)
        s.append(
            [
                s.text(e.target),
                s.text(e.kind),
                s.text(e.label, alignment=_WRAP),
                s.text(e.customer_account, alignment=_WRAP),
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
        s.note("No exceptions.")
    notify("Exceptions", count)


def _summary_checks(
    col: str, ranges: dict[str, int], revenue: _RevenueRanges
) -> dict[str, list[str]]:
    """Per figure, the expressions that recompute it from the detail sheets' rows (0 = ties).

    ``col`` is the currency's Summary column; its header cell holds the currency code.
    """
    code = f"{col}${_SUMMARY_HEADER_ROW}"

    def sumifs(sheet: str, amount: str, counted: str, value: str) -> str:
        last = ranges[sheet]
        return (
            f"SUMIFS('{sheet}'!${amount}$2:${amount}${last},'{sheet}'!$G$2:$G${last},{code},"
            f"'{sheet}'!${counted}$2:${counted}${last},\"{value}\")"
        )

    def sumif(sheet: str, key: str, amount: str, first: int, last: int) -> str:
        return (
            f"SUMIF('{sheet}'!${key}${first}:${key}${last},{code},"
            f"'{sheet}'!${amount}${first}:${amount}${last})"
        )

    rl, rf1, rf2 = revenue.recognized_last, revenue.roll_first, revenue.roll_last
    return {
        "invoiced": [sumifs("Invoices", "J", "M", m.INVOICED)],
        "tax": [sumifs("Invoices", "I", "M", m.INVOICED)],
        "voided": [sumifs("Invoices", "J", "M", m.VOIDED)],
        "credited": [sumifs("Credit notes", "J", "L", m.CREDITED)],
        "collected": [sumifs("Payments", "H", "M", m.COLLECTED)],
        "refunded": [sumifs("Refunds", "H", "I", m.REFUNDED)],
        "recognized": [sumif("Revenue", "A", "D", 2, rl)],
        "deferred_closing": [sumif("Revenue", "B", "H", rf1, rf2)],
        "open_receivable": [sumif("AR aging", "C", "I", 2, ranges["AR aging"])],
        "credit_balance": [sumif("Credit balances", "C", "G", 2, ranges["Credit balances"])],
    }


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
    month = f"{f.period.start:%B %Y}"
    s.append([s.text(f"Monthly finance report, {month}", font=_TITLE_FONT)])
    s.append([s.text("Period"), s.text(period_text(f.period))])
    s.append([s.text("Entities"), s.text(", ".join(entities) or "(none)")])
    s.append(
        [s.text("Generated"), s.text(f"{generated_at:%Y-%m-%d %H:%M} {generated_at.tzname()}")]
    )
    s.append(
        [
            s.text("Sync exceptions"),
            s.count(f.exceptions_count),
            s.text("ledger rows failed, dead or in retry (Reconciliation sheet)"),
        ]
    )
    s.blank()
    currencies = [t.currency for t in totals]
    s.header(["Figure", *currencies], numeric=set(range(1, len(currencies) + 1)))
    assert s.row == _SUMMARY_HEADER_ROW
    rows: dict[str, int] = {}
    for label, attr in SUMMARY_FIGURES:
        rows[attr] = s.row + 1
        s.append([s.text(label), *(s.money(getattr(t, attr), t.currency) for t in totals)])
    rows["left_out_records"] = s.row + 1
    s.append([s.text(LEFT_OUT_FIGURES[0][0]), *(s.count(t.left_out_records) for t in totals)])
    rows["left_out_money"] = s.row + 1
    s.append(
        [
            s.text(LEFT_OUT_FIGURES[1][0]),
            *(s.money(t.left_out_money, t.currency) for t in totals),
        ]
    )
    checks: list[_Cell] = []
    for index, _ in enumerate(totals):
        col = get_column_letter(index + 2)
        pairs = [
            (f"{col}{rows[attr]}", expr)
            for attr, found in _summary_checks(col, ranges, revenue).items()
            for expr in found
        ]
        pairs.append(
            (f"{col}{rows['net_collected']}", f"{col}{rows['collected']}-{col}{rows['refunded']}")
        )
        last = ranges["Exceptions"]
        code = f"{col}${_SUMMARY_HEADER_ROW}"
        # EXACT, not COUNTIF/SUMIF: those ignore case, and billing's "usd" is not USD.
        exact = f"EXACT(Exceptions!$C$2:$C${last},{code})"
        pairs.append((f"{col}{rows['left_out_records']}", f"SUMPRODUCT({exact}*1)"))
        pairs.append(
            (f"{col}{rows['left_out_money']}", f"SUMPRODUCT({exact}*Exceptions!$E$2:$E${last})")
        )
        # Spreadsheets add in binary floating point: compare well below one minor unit, and
        # relative to the figure for amounts beyond a double's 15 digits (a broken record's).
        text = (
            "=IF(AND("
            + ",".join(f"ABS({cell}-({expr}))<=MAX(1E-6,ABS({cell})*1E-13)" for cell, expr in pairs)
            + '),"yes","NO")'
        )
        checks.append(s.formula(text, font=_TOTAL_FONT, border=_TOTAL_BORDER))
    s.append([s.text("Ties to sheets", font=_TOTAL_FONT, border=_TOTAL_BORDER), *checks])
    for note in (
        "Amounts per currency, never added across currencies; policy in docs/accounting.md.",
        "Invoiced and tax: invoices issued in the month, except those voided in it. Voided: "
        "invoices issued earlier and voided in the month.",
        "Credited: issued credit notes. Collected: succeeded payments received. Refunded: "
        "refunds of payments and credit notes. Net collected = collected - refunded.",
        "Recognized: schedule entries of the month, reversals included. Deferred: ratable "
        "lines. Open receivable and credit balances: at the month's last day.",
        "Left out: billing records that fail validation, whatever their date, and the money "
        "of those that carry some (Exceptions sheet); they are in no figure above.",
        "Ties to sheets: a formula recomputes every figure from the detail sheets' rows.",
    ):
        s.note(note)
    invalid = [
        f"{code} {count} record{'s' if count != 1 else ''} ({money})"
        for code, (count, money) in f.left_out.per_currency().items()
        if not is_known_currency(code)
    ]
    if invalid:
        s.note("Also left out, in codes that are not currencies: " + "; ".join(invalid) + ".")
    s.blank()
    s.section(f"Sync health: ledger of the ERP target '{erp_target}' at report time")
    statuses = ["synced", "pending", "sending", "retry", "failed", "dead"]
    s.header(["Kind", *statuses], numeric=set(range(1, len(statuses) + 1)))
    for kind in sorted(f.sync_health):
        counts = f.sync_health[kind]
        s.append([s.text(kind), *(s.count(counts.get(st, 0)) for st in statuses)])
    if not f.sync_health:
        s.note("The ledger holds no rows for this target.")


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
