"""The Revenue sheet: recognition by product family, the deferred roll-forward, the waterfall of
revenue still to recognize and its charts.
"""

from __future__ import annotations

from dataclasses import dataclass

from openpyxl.chart import BarChart, Reference
from openpyxl.utils import get_column_letter

from reports.common import ZERO
from reports.monthly import Figures
from reports.sheets.writer import TOTAL_BORDER, TOTAL_FONT, Book, Sheet, money_format

# --- small sheets ------------------------------------------------------------------------


@dataclass(frozen=True)
class RevenueRanges:
    """Where the Revenue sheet's tables are, for the Summary's formulas."""

    recognized_last: int  # rows 2..recognized_last of the recognition table
    roll_first: int
    roll_last: int


def write_revenue(wb: Book, f: Figures) -> RevenueRanges:
    """The Revenue sheet; returns where its tables are."""
    s = Sheet(wb, "Revenue", [12, 18, 16, 17, 17, 17, 17, 17, 17, 17, 17, 17, 17, 17, 17, 17, 17])
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
                s.text(cur, font=TOTAL_FONT, border=TOTAL_BORDER),
                s.text(f"Total {cur}", font=TOTAL_FONT, border=TOTAL_BORDER),
                s.text("", border=TOTAL_BORDER),
                s.money(per_currency[cur], cur, font=TOTAL_FONT, border=TOTAL_BORDER),
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
                s.money(sum(amounts, ZERO), cur),
                s.money(f.later_reductions.get(cur, ZERO), cur),
                s.money(closing.get(cur, ZERO), cur),
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
    return RevenueRanges(recognized_last, roll_first, roll_last)
