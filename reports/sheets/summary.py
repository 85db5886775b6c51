"""The Summary sheet: the month's figures per currency, the formulas that tie them to the detail
sheets, and the sync health.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from openpyxl.utils import get_column_letter

from core.money import is_known_currency
from reports.common import COLLECTED, CREDITED, INVOICED, REFUNDED, VOIDED, Period
from reports.monthly import Figures
from reports.sheets.revenue import RevenueRanges
from reports.sheets.writer import TITLE_FONT, TOTAL_BORDER, TOTAL_FONT, Sheet, SheetCell


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


def period_text(period: Period) -> str:
    """``1 Oct 2026 to 31 Oct 2026``."""
    return f"{period.start.day} {period.start:%b %Y} to {period.end.day} {period.end:%b %Y}"


SUMMARY_HEADER_ROW = 7


def _summary_checks(
    col: str, ranges: dict[str, int], revenue: RevenueRanges
) -> dict[str, list[str]]:
    """Per figure, the expressions that recompute it from the detail sheets' rows (0 = ties).

    ``col`` is the currency's Summary column; its header cell holds the currency code.
    """
    code = f"{col}${SUMMARY_HEADER_ROW}"

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
        "invoiced": [sumifs("Invoices", "J", "M", INVOICED)],
        "tax": [sumifs("Invoices", "I", "M", INVOICED)],
        "voided": [sumifs("Invoices", "J", "M", VOIDED)],
        "credited": [sumifs("Credit notes", "J", "L", CREDITED)],
        "collected": [sumifs("Payments", "H", "M", COLLECTED)],
        "refunded": [sumifs("Refunds", "H", "I", REFUNDED)],
        "recognized": [sumif("Revenue", "A", "D", 2, rl)],
        "deferred_closing": [sumif("Revenue", "B", "H", rf1, rf2)],
        "open_receivable": [sumif("AR aging", "C", "I", 2, ranges["AR aging"])],
        "credit_balance": [sumif("Credit balances", "C", "G", 2, ranges["Credit balances"])],
    }


def write_summary(
    s: Sheet,
    f: Figures,
    totals: Sequence[CurrencyTotals],
    entities: Sequence[str],
    generated_at: datetime,
    erp_target: str,
    ranges: dict[str, int],
    revenue: RevenueRanges,
) -> None:
    """Fill the Summary sheet (created first, written last, when every range is known)."""
    month = f"{f.period.start:%B %Y}"
    s.append([s.text(f"Monthly finance report, {month}", font=TITLE_FONT)])
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
    assert s.row == SUMMARY_HEADER_ROW
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
    checks: list[SheetCell] = []
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
        code = f"{col}${SUMMARY_HEADER_ROW}"
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
        checks.append(s.formula(text, font=TOTAL_FONT, border=TOTAL_BORDER))
    s.append([s.text("Ties to sheets", font=TOTAL_FONT, border=TOTAL_BORDER), *checks])
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
