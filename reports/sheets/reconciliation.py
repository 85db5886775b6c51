"""The Reconciliation sheet: billing counts and amounts against the ERP, the revenue journals and
the ledger's sync exceptions.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import sqlalchemy as sa

from reports.common import ZERO, Tally
from reports.monthly import Figures
from reports.sheets.writer import DATETIME_FORMAT, PROGRESS_EVERY, WRAP, Book, Progress, Sheet
from reports.sync_exceptions import exception_rows

_KIND_LABELS = {
    "invoice": "Invoices",
    "invoice_void": "Invoice voids",
    "credit_note": "Credit notes",
    "payment": "Payments",
    "refund": "Refunds",
    "revenue": "Revenue journals",
}


def write_reconciliation(
    wb: Book,
    f: Figures,
    tallies: dict[str, Tally],
    state: sa.Engine,
    timezone: ZoneInfo,
    notify: Progress,
) -> None:
    """The Reconciliation sheet: tallies against the ERP, revenue journals, sync exceptions."""
    s = Sheet(wb, "Reconciliation", [18, 14, 16, 18, 16, 18, 14, 36, 40, 17])
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
        posted = j.posted if j.posted is not None else ZERO
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
    for e in exception_rows(state):
        changed = e.updated_at.astimezone(timezone).replace(tzinfo=None)
        s.append(
            [
                s.text(e.target),
                s.text(e.kind),
                s.text(e.label, alignment=WRAP),
                s.text(e.customer_account, alignment=WRAP),
                s.date(e.document_date),
                s.text(e.status),
                s.count(e.attempts),
                s.text(e.error, alignment=WRAP),
                s.text(e.action, alignment=WRAP),
                s.date(changed, DATETIME_FORMAT),
            ]
        )
        count += 1
        if count % PROGRESS_EVERY == 0:
            notify("Exceptions", count)
    if count == 0:
        s.note("No exceptions.")
    notify("Exceptions", count)
