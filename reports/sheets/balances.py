"""The AR aging and Credit balances sheets: what customers owe, and what the company owes them,
at the month's end.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from reports.common import ZERO
from reports.monthly import Figures
from reports.receivables import AGING_BUCKETS
from reports.sheets.writer import TOTAL_BORDER, TOTAL_FONT, WRAP, Book, Sheet


def write_aging(wb: Book, f: Figures) -> int:
    """The AR aging sheet; returns its last data row (for the Summary's formulas)."""
    s = Sheet(wb, "AR aging", [16, 28, 9, 15, 15, 15, 15, 15, 16])
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
        buckets = [a.buckets[bucket] for bucket in AGING_BUCKETS]
        s.append(
            [
                s.text(a.customer_account),
                s.text(a.customer_name, alignment=WRAP),
                s.text(a.currency),
                *(s.money(v, a.currency) for v in buckets),
                s.money(a.total, a.currency),
            ]
        )
        got = totals.setdefault(a.currency, [ZERO] * (len(buckets) + 1))
        for k, v in enumerate([*buckets, a.total]):
            got[k] += v
    last = s.row
    s.autofilter(9, last)
    s.blank()
    for cur in sorted(totals):
        s.append(
            [
                s.text(f"Total {cur}", font=TOTAL_FONT, border=TOTAL_BORDER),
                s.text("", border=TOTAL_BORDER),
                s.text(cur, font=TOTAL_FONT, border=TOTAL_BORDER),
                *(s.money(v, cur, font=TOTAL_FONT, border=TOTAL_BORDER) for v in totals[cur]),
            ]
        )
    s.note(
        f"What customers owe at {f.period.end:%Y-%m-%d} by days past due: invoices not "
        "voided by that day, less payments applied and credit notes issued by it. "
        "Credit balances are on their own sheet."
    )
    return last


def write_credit_balances(wb: Book, f: Figures) -> int:
    """The Credit balances sheet; returns its last data row."""
    s = Sheet(wb, "Credit balances", [16, 28, 9, 16, 16, 16, 16])
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
    totals: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for c in f.credit_balances:
        cur = c.currency
        s.append(
            [
                s.text(c.customer_account),
                s.text(c.customer_name, alignment=WRAP),
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
                s.text(f"Total {cur}", font=TOTAL_FONT, border=TOTAL_BORDER),
                s.text("", border=TOTAL_BORDER),
                s.text(cur, font=TOTAL_FONT, border=TOTAL_BORDER),
                *(s.text("", border=TOTAL_BORDER) for _ in range(3)),
                s.money(totals[cur], cur, font=TOTAL_FONT, border=TOTAL_BORDER),
            ]
        )
    s.note(
        f"What the company owes customers at {f.period.end:%Y-%m-%d}: unapplied cash + "
        "invoices credited or paid beyond their total - refunds paid by that day."
    )
    return last
