"""The Tax sheet: tax billed against the tax engine's, per jurisdiction and currency, and the
invoices whose billed tax differs.
"""

from __future__ import annotations

from decimal import Decimal

from reports.common import ZERO
from reports.monthly import Figures
from reports.sheets.writer import TOTAL_BORDER, TOTAL_FONT, Book, Sheet


def write_tax(wb: Book, f: Figures) -> None:
    """The Tax sheet."""
    s = Sheet(wb, "Tax", [18, 9, 10, 17, 16, 16, 16, 16, 12])
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
        got = sums.setdefault(cur, [ZERO] * 5)
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
                s.text(f"Total {cur}", font=TOTAL_FONT, border=TOTAL_BORDER),
                s.text(cur, font=TOTAL_FONT, border=TOTAL_BORDER),
                s.count(counts[cur], font=TOTAL_FONT, border=TOTAL_BORDER),
                *(s.money(a, cur, font=TOTAL_FONT, border=TOTAL_BORDER) for a in sums[cur]),
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
