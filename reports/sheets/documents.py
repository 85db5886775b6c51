"""The document sheets (Invoices, Credit notes, Payments, Refunds): rows streamed from
``reports.documents``, then per currency the totals of what counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any

from reports.common import ZERO
from reports.documents import CreditNoteRow, InvoiceRow, PaymentRow, RefundRow
from reports.sheets.writer import (
    PROGRESS_EVERY,
    TOTAL_BORDER,
    TOTAL_FONT,
    WRAP,
    Book,
    Progress,
    Sheet,
    SheetCell,
)

# --- document sheets ---------------------------------------------------------------------

INVOICE_COLUMNS = (
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


CREDIT_COLUMNS = (
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


PAYMENT_COLUMNS = (
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


REFUND_COLUMNS = (
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


def invoice_cells(s: Sheet, r: InvoiceRow) -> list[SheetCell]:
    """An Invoices row."""
    cur = r.currency
    return [
        s.text(r.number),
        s.text(r.entity),
        s.text(r.customer_account),
        s.text(r.customer_name, alignment=WRAP),
        s.date(r.issue_date),
        s.date(r.due_date),
        s.text(cur),
        s.money(r.net, cur),
        s.money(r.tax, cur),
        s.money(r.total, cur),
        s.text(r.status),
        s.date(r.voided_on),
        s.text(r.counted_as),
        s.text(r.memo, alignment=WRAP),
        s.text(r.erp_id),
        s.text(r.sync_status),
    ]


def credit_cells(s: Sheet, r: CreditNoteRow) -> list[SheetCell]:
    """A Credit notes row."""
    cur = r.currency
    return [
        s.text(r.number),
        s.text(r.invoice_number),
        s.text(r.entity),
        s.text(r.customer_account),
        s.text(r.customer_name, alignment=WRAP),
        s.date(r.issue_date),
        s.text(cur),
        s.money(r.net, cur),
        s.money(r.tax, cur),
        s.money(r.total, cur),
        s.text(r.status),
        s.text(r.counted_as),
        s.text(r.reason, alignment=WRAP),
        s.text(r.erp_id),
        s.text(r.sync_status),
    ]


def payment_cells(s: Sheet, r: PaymentRow) -> list[SheetCell]:
    """A Payments row."""
    cur = r.currency
    return [
        s.text(r.reference),
        s.text(r.entity),
        s.text(r.customer_account),
        s.text(r.customer_name, alignment=WRAP),
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


def refund_cells(s: Sheet, r: RefundRow) -> list[SheetCell]:
    """A Refunds row."""
    cur = r.currency
    return [
        s.text(r.reference),
        s.text(r.entity),
        s.text(r.customer_account),
        s.text(r.customer_name, alignment=WRAP),
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


def write_documents(
    wb: Book,
    title: str,
    columns: Sequence[tuple[str, float]],
    rows: Iterable[Any],
    to_cells: Callable[[Sheet, Any], list[SheetCell]],
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
    s = Sheet(wb, title, [w for _, w in columns])
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
            got = sums.setdefault((r.currency, r.counted_as), [ZERO] * len(total_cols))
            for k, col in enumerate(total_cols):
                got[k] += cells[col - 1].value
        if (s.row - 1) % PROGRESS_EVERY == 0:
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
            total_cells: list[SheetCell] = [
                s.text(f"Total {cur} {counted}", font=TOTAL_FONT, border=TOTAL_BORDER)
            ] + [s.text("", border=TOTAL_BORDER) for _ in range(_CURRENCY_COL - 2)]
            total_cells.append(s.text(cur, font=TOTAL_FONT, border=TOTAL_BORDER))
            for k in range(max(total_cols) - _CURRENCY_COL):
                col = _CURRENCY_COL + 1 + k
                amount = values[total_cols.index(col)] if values and col in total_cols else None
                total_cells.append(
                    s.money(
                        ZERO if amount is None and col in total_cols else amount,
                        cur,
                        font=TOTAL_FONT,
                        border=TOTAL_BORDER,
                    )
                )
            s.append(total_cells)
    s.note(note)
    return last
