"""The independent billing database (tests/independent_billing.py) synced to a real Tryton.

After one full sync, Tryton's own figures (party receivables, account debits and credits per
period, read back over JSON-RPC) equal what the dataset's rows imply by this test's arithmetic;
every move is balanced and no broken record reaches Tryton. Then October's workbook, built from
the same billing and state databases, ties with Tryton's trial balance per currency. Billing and
the state store run on SQLite and on PostgreSQL (``db_url``).

The dataset's entities are acme-us (USD), acme-jp (JPY) and acme-kw (KWD): the template's
companies 1, 4 and 5 (``[tryton.companies]`` of mapping.example.toml); its broken entity acme-zz
is rejected by validation and needs none.
"""

from __future__ import annotations

import tomllib
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import sqlalchemy as sa

from finsync.config import load_config
from finsync.db import make_engine
from mappings.tables import load_mapping_file
from reports import build_monthly_report
from reports.workbook import SUMMARY_FIGURES
from sandbox.tryton import TrytonServer
from sync.engine import SyncEngine
from sync.migrate import upgrade
from sync.state import ledger
from tests.independent_billing import PERIOD, PERIOD_END, PRODUCTS, Dataset
from tests.independent_billing import build_independent_billing as build_dataset
from tests.tryton_support import Figures, TrytonBooks, months_between, tryton_figures, write_setup

ZERO = Decimal(0)
TZ = ZoneInfo("America/New_York")
#: Tryton's fiscal years in the template: every move of the dataset lies within.
FIRST_DAY, LAST_MONTH = date(2025, 1, 1), date(2027, 12, 1)


def _month(day: date) -> date:
    return day.replace(day=1)


def _void_day(invoice: dict[str, Any]) -> date | None:
    stamp = invoice["voided_at"]
    return None if stamp is None else stamp.date()  # every void is at noon UTC


def expected_books(ds: Dataset, mapping: dict[str, Any]) -> Figures:
    """What Tryton must hold, per company, from the dataset's valid rows.

    An invoice counts in its issue month; one voided in a later month is reversed in the void's
    month (docs/accounting.md, Voids: the month it was issued keeps it); one voided in its own
    month counts nowhere. Ratable lines go to deferred revenue, point-in-time ones to revenue;
    the revenue journals move recognized ratable entries from deferred to revenue in their
    period.
    """
    companies = mapping["tryton"]["companies"]
    gl = mapping["tryton"]["accounts"]
    families = mapping["product_families"]
    pattern = {pid: spec[2] for pid, spec in PRODUCTS.items()}
    family = {pid: spec[1] for pid, spec in PRODUCTS.items()}

    def account(product: int) -> str:
        side = "deferred_revenue_account" if pattern[product] == "ratable" else "revenue_account"
        return str(gl[families[family[product]][side]])

    customers = {r["id"]: r for r in ds.valid("customers")}
    invoices = {r["id"]: r for r in ds.valid("invoices")}
    lines = {r["id"]: r for r in ds.rows["invoice_lines"]}
    out = Figures()
    for inv in invoices.values():
        company = companies[inv["billing_entity"]]
        party = customers[inv["customer_id"]]["account_number"]
        void = _void_day(inv)
        if void is not None and _month(void) == _month(inv["issue_date"]):
            continue
        booked = [(_month(inv["issue_date"]), 1)]
        if void is not None:
            booked.append((_month(void), -1))
        for month, sign in booked:
            out.add(out.receivable, (company, party), sign * inv["total"])
            out.add(out.tax, company, sign * inv["tax_total"])
            for line in (li for li in lines.values() if li["invoice_id"] == inv["id"]):
                product = line["product_id"]
                table = out.deferred if pattern[product] == "ratable" else out.revenue
                out.add(table, (company, account(product), month), sign * line["amount"])
    notes = {r["id"]: r for r in ds.valid("credit_notes") if r["status"] == "issued"}
    for note in notes.values():
        company = companies[invoices[note["invoice_id"]]["billing_entity"]]
        party = customers[note["customer_id"]]["account_number"]
        out.add(out.receivable, (company, party), -note["total"])
        out.add(out.tax, company, -note["tax_total"])
    for line in ds.rows["credit_note_lines"]:
        if line["credit_note_id"] not in notes:
            continue
        note = notes[line["credit_note_id"]]
        company = companies[invoices[note["invoice_id"]]["billing_entity"]]
        product = line["product_id"]
        table = out.deferred if pattern[product] == "ratable" else out.revenue
        out.add(table, (company, account(product), _month(note["issue_date"])), -line["amount"])
    for pay in ds.valid("payments"):
        if pay["status"] != "succeeded":
            continue
        customer = customers[pay["customer_id"]]
        company = companies[customer["billing_entity"]]
        out.add(out.receivable, (company, customer["account_number"]), -pay["amount"])
        out.add(out.cash_in, company, pay["amount"])
    for refund in ds.valid("refunds"):
        customer = customers[refund["customer_id"]]
        company = companies[customer["billing_entity"]]
        out.add(out.receivable, (company, customer["account_number"]), refund["amount"])
        out.add(out.cash_out, company, refund["amount"])
    for entry in ds.valid("revenue_schedule_entries"):
        line = lines[entry["invoice_line_id"]]
        product = line["product_id"]
        if entry["status"] != "recognized" or pattern[product] != "ratable":
            continue
        company = companies[invoices[line["invoice_id"]]["billing_entity"]]
        month = _month(entry["period"])
        revenue = str(gl[families[family[product]]["revenue_account"]])
        out.add(out.revenue, (company, revenue, month), entry["amount"])
        out.add(out.deferred, (company, account(product), month), -entry["amount"])
    return out.nonzero()


def summary_cells(path: Path) -> dict[str, dict[str, Decimal]]:
    """Per currency, per Summary figure attribute: the value written in the workbook."""
    ws = openpyxl.load_workbook(path, data_only=True)["Summary"]
    rows = [tuple(r) for r in ws.iter_rows(values_only=True)]
    header = next(r for r in rows if r and r[0] == "Figure")
    attribute = dict(SUMMARY_FIGURES)
    out: dict[str, dict[str, Decimal]] = {}
    for row in rows:
        if row and row[0] in attribute:
            for currency, value in zip(header[1:], row[1:], strict=False):
                if currency:
                    out.setdefault(str(currency), {})[attribute[str(row[0])]] = Decimal(str(value))
    return out


def trial_balance(books: TrytonBooks, company: int, first: date, last: date) -> dict[str, Decimal]:
    """Tryton's debit minus credit per account code for moves dated first..last."""
    return {
        code: debit - credit
        for code, (debit, credit) in books.account_totals(company, first, last).items()
    }


def test_independent_dataset_in_tryton_equals_its_figures_and_ties_with_the_workbook(
    tmp_path: Path, db_url: str, tryton_server: TrytonServer
) -> None:
    writer = make_engine(db_url)  # the billing system writes; finsync only reads
    dataset = build_dataset(writer)
    writer.dispose()
    config = write_setup(tmp_path, db_url, tryton_server)
    mapping = tomllib.loads((tmp_path / "mapping.toml").read_text())
    expected = expected_books(dataset, mapping)
    assert expected.deferred and expected.cash_out and len(expected.cash_in) == 3
    engine = SyncEngine(load_config(config), actor="test")
    upgrade(engine.state)
    books = TrytonBooks(tryton_server)
    try:
        run = engine.sync()
        assert not run.targets[0].error

        # The ledger: every valid record synced; the broken ones (and what depends on them)
        # rejected, never sent.
        with engine.state.connect() as conn:
            rows = list(conn.execute(sa.select(ledger)).mappings())
        kinds = {"customer", "invoice", "credit_note", "payment", "refund"}
        statuses = {
            (r["kind"], int(r["source_id"])): r["status"] for r in rows if r["kind"] in kinds
        }
        rejected = {key for key in dataset.rejected if key[0] in kinds}
        assert {k: s for k, s in statuses.items() if k in rejected} == dict.fromkeys(
            rejected, "failed"
        )
        assert Counter(s for k, s in statuses.items() if k not in rejected) == Counter(
            {"synced": len(statuses) - len(rejected)}
        )
        journals = Counter(r["status"] for r in rows if r["kind"] == "revenue")
        assert journals and set(journals) == {"synced"}

        # Tryton's own figures equal the dataset's.
        months = months_between(FIRST_DAY, LAST_MONTH)
        figures = tryton_figures(books, mapping, months)
        assert figures.receivable == expected.receivable
        assert figures.revenue == expected.revenue
        assert figures.deferred == expected.deferred
        assert figures.tax == expected.tax
        assert figures.cash_in == expected.cash_in
        assert figures.cash_out == expected.cash_out
        moves = books.moves()
        assert moves and all(m["state"] == "posted" for m in moves)
        assert [m["id"] for m in moves if m["debit"] != m["credit"]] == []

        # Broken records never reach Tryton: exactly the valid documents, each once.
        want_invoices = Counter(
            f"finsync:inv:{r['number']}"
            for r in dataset.valid("invoices")
            if r["status"] != "void"
            or _month(_void_day(r) or r["issue_date"]) != _month(r["issue_date"])
        )
        want_invoices.update(
            f"finsync:inv:{r['number']}:void"
            for r in dataset.valid("invoices")
            if r["status"] == "void"
            and _month(_void_day(r) or r["issue_date"]) != _month(r["issue_date"])
        )
        want_invoices.update(f"finsync:cn:{r['number']}" for r in dataset.valid("credit_notes"))
        held = books.invoices()
        assert Counter(i["reference"] for i in held) == want_invoices
        assert {i["state"] for i in held} <= {"posted", "paid"}
        totals = {i["reference"]: i["total_amount"] for i in held}
        assert totals["finsync:inv:IND-1002"] == Decimal("804.38")  # not its broken namesake
        cash = Counter(
            m["description"]
            for m in moves
            if (m["description"] or "").startswith(("finsync:pay:", "finsync:ref:"))
        )
        assert cash == Counter(
            [
                *(
                    f"finsync:pay:{r['reference']}"
                    for r in dataset.valid("payments")
                    if r["status"] == "succeeded"
                ),
                *(f"finsync:ref:{r['reference']}" for r in dataset.valid("refunds")),
            ]
        )
        parties = Counter(r["code"] for r in books.search_read("party.identifier", [], ["code"]))
        assert parties == Counter(
            f"finsync:cust:{r['account_number']}" for r in dataset.valid("customers")
        )

        # October's workbook from the same databases ties with Tryton's trial balance.
        result = build_monthly_report(
            engine.billing,
            engine.state,
            period=f"{PERIOD:%Y-%m}",
            entity=None,
            out_dir=tmp_path / "out",
            timezone=TZ,
            erp_target="tryton",
            mapping=load_mapping_file(tmp_path / "mapping.toml"),
        )
        workbook = summary_cells(result.path)
        tryton = mapping["tryton"]
        company_of = {
            r["currency"]: int(tryton["companies"][r["billing_entity"]])
            for r in dataset.valid("customers")
        }
        assert sorted(workbook) == sorted(company_of) == ["JPY", "KWD", "USD"]
        receivable, cash = tryton["receivable_account"], tryton["payment_methods"]["wire"]
        deferred = {c for c in tryton["accounts"].values() if c.startswith("2.2.2")}
        revenue = {c for c in tryton["accounts"].values() if c.startswith("4.")}
        for currency, company in company_of.items():
            w = workbook[currency]
            month = books.account_totals(company, PERIOD, PERIOD_END)
            closing = trial_balance(books, company, FIRST_DAY, PERIOD_END)
            opening = trial_balance(books, company, FIRST_DAY, PERIOD - timedelta(days=1))
            got = {
                "collected": month.get(cash, (ZERO, ZERO))[0],
                "refunded": month.get(cash, (ZERO, ZERO))[1],
                "recognized": -sum((v for c, v in month_net(month).items() if c in revenue), ZERO),
                "deferred_closing": -sum((closing.get(c, ZERO) for c in deferred), ZERO),
                "receivable_closing": closing.get(receivable, ZERO),
                "receivable_movement": closing.get(receivable, ZERO)
                - opening.get(receivable, ZERO),
            }
            want = {
                "collected": w["collected"],
                "refunded": w["refunded"],
                "recognized": w["recognized"],
                "deferred_closing": w["deferred_closing"],
                # The receivable account nets what customers owe and what is owed to them.
                "receivable_closing": w["open_receivable"] - w["credit_balance"],
                "receivable_movement": w["invoiced"]
                - w["voided"]
                - w["credited"]
                - w["collected"]
                + w["refunded"],
            }
            assert got == want, currency
            assert w["invoiced"] and w["collected"], currency  # a month with both
    finally:
        books.close()
        engine.close()


def month_net(totals: dict[str, tuple[Decimal, Decimal]]) -> dict[str, Decimal]:
    """Debit minus credit per account code."""
    return {code: debit - credit for code, (debit, credit) in totals.items()}
