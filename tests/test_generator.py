"""The billing data generator: invariants, hard cases, determinism and later edits.

Every invariant is checked here with the test's own arithmetic over full table dumps, never with
the generator's helpers, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from billing import schema
from billing.catalog import TAX_RATES
from billing.generator import apply_edits, seed_billing
from finsync.db import make_engine
from tests.conftest import fresh_pg_schema

MINOR = {"USD": 2, "EUR": 2, "GBP": 2, "JPY": 0, "KWD": 3}
START = date(2025, 11, 1)
MONTHS = 4
BOUNDARY = date(2026, 3, 1)  # the month after the last seeded one
CUSTOMERS = 40
TABLES = [t.name for t in schema.metadata.sorted_tables]

Dump = dict[str, dict[int, dict[str, Any]]]


def rnd(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(Decimal(1).scaleb(-MINOR[currency]), rounding=ROUND_HALF_UP)


def dump(engine: sa.Engine) -> Dump:
    out: Dump = {}
    with engine.connect() as conn:
        for table in schema.metadata.sorted_tables:
            rows = conn.execute(sa.select(table).order_by(table.c.id)).mappings()
            out[table.name] = {row["id"]: dict(row) for row in rows}
    return out


def month_end(day: date) -> date:
    nxt = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return date.fromordinal(nxt.toordinal() - 1)


def months_spanned(start: date, end: date) -> list[date]:
    out = []
    cursor = date(start.year, start.month, 1)
    while cursor <= end:
        out.append(cursor)
        cursor = date(cursor.year + cursor.month // 12, cursor.month % 12 + 1, 1)
    return out


def check_invariants(db: Dump) -> None:
    """Every invariant of the billing contract, over a full dump."""
    customers, products, invoices = db["customers"], db["products"], db["invoices"]
    lines_of: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for line in db["invoice_lines"].values():
        lines_of[line["invoice_id"]].append(line)
    apps_of_payment: dict[int, list[dict[str, Any]]] = defaultdict(list)
    applied_to: dict[int, Decimal] = defaultdict(Decimal)
    for app in db["payment_applications"].values():
        apps_of_payment[app["payment_id"]].append(app)
        applied_to[app["invoice_id"]] += app["amount"]
    notes_of: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for note in db["credit_notes"].values():
        notes_of[note["invoice_id"]].append(note)
    note_lines_of: dict[int, list[dict[str, Any]]] = defaultdict(list)
    credited_line: dict[int, Decimal] = defaultdict(Decimal)
    for nl in db["credit_note_lines"].values():
        note_lines_of[nl["credit_note_id"]].append(nl)
        if db["credit_notes"][nl["credit_note_id"]]["status"] == "issued":
            credited_line[nl["invoice_line_id"]] += nl["amount"]
    entries_of: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for entry in db["revenue_schedule_entries"].values():
        entries_of[entry["invoice_line_id"]].append(entry)

    for c in customers.values():
        assert c["currency"] in MINOR
        assert c["updated_at"] >= c["created_at"]
        if c["tax_exempt"]:
            assert c["exemption_number"], c
        assert (c["region"] is not None) == (c["country"] == "US")

    for inv in invoices.values():
        cur = inv["currency"]
        cust = customers[inv["customer_id"]]
        assert cur == cust["currency"] and inv["billing_entity"] == cust["billing_entity"]
        lines = lines_of[inv["id"]]
        assert lines, inv["number"]
        assert inv["subtotal"] == sum(li["amount"] for li in lines), inv["number"]
        assert inv["tax_total"] == sum(li["tax_amount"] for li in lines), inv["number"]
        assert inv["total"] == inv["subtotal"] + inv["tax_total"]
        assert inv["due_date"] >= inv["issue_date"]
        assert inv["updated_at"] >= inv["created_at"]
        assert inv["updated_at"] >= max(li["updated_at"] for li in lines)
        jurisdiction = f"US-{cust['region']}" if cust["country"] == "US" else cust["country"]
        for li in lines:
            assert li["discount"] >= 0 and li["amount"] >= 0
            assert li["amount"] == rnd(li["quantity"] * li["unit_price"] - li["discount"], cur)
            assert li["tax_amount"] == rnd(li["amount"] * li["tax_rate"], cur)
            assert li["tax_jurisdiction"] == jurisdiction
            expected_rate = Decimal(0) if cust["tax_exempt"] else TAX_RATES[jurisdiction]
            assert li["tax_rate"] == expected_rate
            if cust["tax_exempt"]:
                assert li["tax_amount"] == 0
            assert (li["service_start"] is None) == (li["service_end"] is None)
            if li["service_start"] is not None:
                assert li["service_end"] >= li["service_start"]

        applied = applied_to[inv["id"]]
        issued = [n for n in notes_of[inv["id"]] if n["status"] == "issued"]
        credited = sum((n["total"] for n in issued), Decimal(0))
        assert applied <= inv["total"], inv["number"]
        if inv["status"] == "void":
            assert inv["voided_at"] is not None and inv["voided_at"] >= inv["created_at"]
            assert applied == 0 and not issued, inv["number"]
        else:
            assert inv["voided_at"] is None
        if inv["status"] == "paid":
            assert applied + credited >= inv["total"], inv["number"]
        elif inv["status"] in ("open", "uncollectible"):
            assert applied + credited < inv["total"], inv["number"]
        else:
            assert inv["status"] == "void"

        # Each credit note is at most what earlier ones left of the invoice.
        left = inv["total"]
        for note in sorted(issued, key=lambda n: (n["issue_date"], n["id"])):
            assert note["total"] <= left, note["number"]
            left -= note["total"]

    for note in db["credit_notes"].values():
        nls = note_lines_of[note["id"]]
        inv = invoices[note["invoice_id"]]
        assert nls and note["currency"] == inv["currency"]
        assert note["customer_id"] == inv["customer_id"]
        assert note["subtotal"] == sum(n["amount"] for n in nls)
        assert note["tax_total"] == sum(n["tax_amount"] for n in nls)
        assert note["total"] == note["subtotal"] + note["tax_total"]
        assert note["issue_date"] >= inv["issue_date"]
        for nl in nls:
            line = db["invoice_lines"][nl["invoice_line_id"]]
            assert line["invoice_id"] == inv["id"] and nl["product_id"] == line["product_id"]
    for line_id, amount in credited_line.items():
        assert 0 < amount <= db["invoice_lines"][line_id]["amount"]

    for pay in db["payments"].values():
        apps = apps_of_payment[pay["id"]]
        assert sum((a["amount"] for a in apps), Decimal(0)) <= pay["amount"], pay["reference"]
        assert pay["processor_fee"] >= 0 and pay["amount"] > 0
        if pay["status"] != "succeeded":
            assert not apps, pay["reference"]
        for app in apps:
            assert app["amount"] > 0
            assert invoices[app["invoice_id"]]["customer_id"] == pay["customer_id"]
            assert invoices[app["invoice_id"]]["currency"] == pay["currency"]

    for refund in db["refunds"].values():
        assert (refund["payment_id"] is None) != (refund["credit_note_id"] is None)
        if refund["credit_note_id"] is not None:
            assert refund["amount"] <= db["credit_notes"][refund["credit_note_id"]]["total"]
        else:
            pay = db["payments"][refund["payment_id"]]
            unapplied = pay["amount"] - sum(a["amount"] for a in apps_of_payment[pay["id"]])
            assert 0 < refund["amount"] <= unapplied

    for line in db["invoice_lines"].values():
        inv = invoices[line["invoice_id"]]
        entries = entries_of[line["id"]]
        credited = credited_line[line["id"]]
        total = sum((e["amount"] for e in entries), Decimal(0))
        if inv["status"] == "void":
            assert total == 0, line["id"]
        else:
            assert total == line["amount"] - credited, line["id"]
        originals = [e for e in entries if e["amount"] >= 0]
        negatives = [e for e in entries if e["amount"] < 0]
        if negatives:
            assert credited or inv["status"] == "void", line["id"]
        pattern = products[line["product_id"]]["revenue_pattern"]
        if pattern == "point_in_time":
            issue_month = inv["issue_date"].replace(day=1)
            assert [(e["period"], e["amount"]) for e in originals] == [
                (issue_month, line["amount"])
            ], line["id"]
        else:
            assert pattern == "ratable"
            spanned = months_spanned(line["service_start"], line["service_end"])
            assert sorted(e["period"] for e in originals) == spanned, line["id"]

    for entry in db["revenue_schedule_entries"].values():
        assert entry["period"].day == 1
        if entry["status"] == "recognized":
            assert entry["period"] < BOUNDARY
            assert entry["recognized_on"] == month_end(entry["period"])
        else:
            assert entry["status"] == "scheduled" and entry["period"] >= BOUNDARY
            assert entry["recognized_on"] is None

    # Every amount is rounded to its row's currency.
    line_currency = {
        li["id"]: invoices[li["invoice_id"]]["currency"] for li in db["invoice_lines"].values()
    }
    money: list[tuple[Decimal, str]] = []
    for inv in invoices.values():
        money += [(inv[k], inv["currency"]) for k in ("subtotal", "tax_total", "total")]
    for li in db["invoice_lines"].values():
        money += [(li[k], line_currency[li["id"]]) for k in ("discount", "amount", "tax_amount")]
    for note in db["credit_notes"].values():
        money += [(note[k], note["currency"]) for k in ("subtotal", "tax_total", "total")]
    for nl in db["credit_note_lines"].values():
        cur = db["credit_notes"][nl["credit_note_id"]]["currency"]
        money += [(nl["amount"], cur), (nl["tax_amount"], cur)]
    for pay in db["payments"].values():
        money += [(pay["amount"], pay["currency"]), (pay["processor_fee"], pay["currency"])]
    for app in db["payment_applications"].values():
        money.append((app["amount"], db["payments"][app["payment_id"]]["currency"]))
    for refund in db["refunds"].values():
        money.append((refund["amount"], refund["currency"]))
    for entry in db["revenue_schedule_entries"].values():
        money.append((entry["amount"], line_currency[entry["invoice_line_id"]]))
    unrounded = [(a, c) for a, c in money if a != rnd(a, c)]
    assert not unrounded, unrounded[:5]


def hard_cases(db: Dump) -> dict[str, int]:
    """How often each hard case occurs in a dump."""
    invoices, lines = db["invoices"], db["invoice_lines"]
    apps_per_payment: dict[int, list[Decimal]] = defaultdict(list)
    for app in db["payment_applications"].values():
        apps_per_payment[app["payment_id"]].append(app["amount"])
    lines_per_invoice: dict[int, int] = defaultdict(int)
    for li in lines.values():
        lines_per_invoice[li["invoice_id"]] += 1
    products = db["products"]

    def pit(li: dict[str, Any]) -> bool:
        return products[li["product_id"]]["revenue_pattern"] == "point_in_time"

    def created(li: dict[str, Any]) -> datetime:
        return invoices[li["invoice_id"]]["created_at"]

    paid_or_credited = {a["invoice_id"] for a in db["payment_applications"].values()} | {
        n["invoice_id"] for n in db["credit_notes"].values()
    }
    succeeded = [p for p in db["payments"].values() if p["status"] == "succeeded"]
    counts = {
        "exempt customers": sum(c["tax_exempt"] for c in db["customers"].values()),
        "void invoices": sum(i["status"] == "void" for i in invoices.values()),
        "paid invoices": sum(i["status"] == "paid" for i in invoices.values()),
        "open invoices": sum(i["status"] == "open" for i in invoices.values()),
        "uncollectible invoices": sum(i["status"] == "uncollectible" for i in invoices.values()),
        "credit notes": len(db["credit_notes"]),
        "multi-line credit notes": sum(
            1
            for n in db["credit_notes"].values()
            if sum(nl["credit_note_id"] == n["id"] for nl in db["credit_note_lines"].values()) > 1
        ),
        "credit note refunds": sum(r["credit_note_id"] is not None for r in db["refunds"].values()),
        "payment refunds": sum(r["payment_id"] is not None for r in db["refunds"].values()),
        "over-payments": sum(p["amount"] > sum(apps_per_payment[p["id"]]) for p in succeeded),
        "multi-invoice payments": sum(len(apps_per_payment[p["id"]]) > 1 for p in succeeded),
        "partial applications": sum(
            a["amount"] < invoices[a["invoice_id"]]["total"]
            for a in db["payment_applications"].values()
        ),
        "failed payments": sum(p["status"] == "failed" for p in db["payments"].values()),
        "reversed payments": sum(p["status"] == "reversed" for p in db["payments"].values()),
        "processor fees": sum(p["processor_fee"] > 0 for p in succeeded),
        "discounts": sum(li["discount"] > 0 for li in lines.values()),
        "multi-line invoices": sum(n > 1 for n in lines_per_invoice.values()),
        "annual lines": sum(
            li["service_start"] is not None and (li["service_end"] - li["service_start"]).days > 300
            for li in lines.values()
        ),
        "prorated lines": sum(
            not pit(li) and li["service_start"].day != 1 for li in lines.values()
        ),
        "point-in-time lines without period": sum(
            pit(li) and li["service_start"] is None for li in lines.values()
        ),
        "one-day lines": sum(
            li["service_start"] is not None and li["service_start"] == li["service_end"]
            for li in lines.values()
        ),
        "fractional quantities": sum(
            li["quantity"] != li["quantity"].to_integral_value() for li in lines.values()
        ),
        "unit prices finer than the currency": sum(
            li["unit_price"] != rnd(li["unit_price"], invoices[li["invoice_id"]]["currency"])
            for li in lines.values()
        ),
        "negative schedule entries": sum(
            e["amount"] < 0 for e in db["revenue_schedule_entries"].values()
        ),
        "edited customers": sum(
            c["updated_at"] > c["created_at"] for c in db["customers"].values()
        ),
        # Changed after issue with no payment, credit or void behind it: a memo edit.
        "edited invoices": sum(
            i["updated_at"] > i["created_at"]
            and i["status"] == "open"
            and i["id"] not in paid_or_credited
            for i in invoices.values()
        ),
        "edited lines": sum(li["updated_at"] > created(li) for li in lines.values()),
        "edited payments": sum(p["updated_at"] > p["created_at"] for p in db["payments"].values()),
    }
    for currency in MINOR:
        counts[f"{currency} invoices"] = sum(i["currency"] == currency for i in invoices.values())
    return counts


@pytest.fixture
def other_engine(
    db_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[sa.Engine]:
    """A second empty database of the same kind as ``db_engine``."""
    if db_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'other.db'}"
    else:
        url = fresh_pg_schema(request.getfixturevalue("pg_database"))
    engine = make_engine(url)
    yield engine
    engine.dispose()


def _seed(engine: sa.Engine, seed: int = 11, **kwargs: Any) -> Any:
    return seed_billing(
        engine, customers=CUSTOMERS, months=MONTHS, seed=seed, start=START, **kwargs
    )


def test_seed_keeps_every_invariant_and_holds_every_hard_case(db_engine: sa.Engine) -> None:
    calls: list[tuple[int, int]] = []
    summary = _seed(db_engine, progress=lambda done, total: calls.append((done, total)))
    db = dump(db_engine)

    assert summary.rows() == [
        (t.name, len(db[t.name]))
        for t in (
            schema.customers,
            schema.products,
            schema.invoices,
            schema.invoice_lines,
            schema.credit_notes,
            schema.credit_note_lines,
            schema.payments,
            schema.payment_applications,
            schema.refunds,
            schema.revenue_schedule_entries,
        )
    ]
    assert summary.customers == CUSTOMERS and summary.products == 7
    assert (summary.first_period, summary.last_period) == (START, date(2026, 2, 1))
    assert {i["issue_date"].replace(day=1) for i in db["invoices"].values()} == {
        date(2025, 11, 1),
        date(2025, 12, 1),
        date(2026, 1, 1),
        date(2026, 2, 1),
    }
    assert calls[-1] == (CUSTOMERS, CUSTOMERS)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)

    check_invariants(db)
    missing = [case for case, n in hard_cases(db).items() if n == 0]
    assert not missing, missing
    entities = {c["billing_entity"]: c["currency"] for c in db["customers"].values()}
    assert entities == {
        "acme-us": "USD",
        "acme-de": "EUR",
        "acme-uk": "GBP",
        "acme-jp": "JPY",
        "acme-kw": "KWD",
    }
    timestamps = [
        row[k]
        for rows in db.values()
        for row in rows.values()
        for k in ("created_at", "updated_at", "voided_at")
        if row.get(k)
    ]
    assert all(
        ts.utcoffset() is not None and ts.utcoffset().total_seconds() == 0 for ts in timestamps
    )


def test_same_arguments_give_identical_rows_and_other_seeds_differ(
    db_engine: sa.Engine, other_engine: sa.Engine, tmp_path: Path
) -> None:
    _seed(db_engine)
    _seed(other_engine)
    first, second = dump(db_engine), dump(other_engine)
    # repr keeps a Decimal's exponent and a datetime's zone: identical down to the digits.
    assert repr(first) == repr(second)

    different = make_engine(f"sqlite:///{tmp_path / 'different.db'}")
    _seed(different, seed=12)
    third = dump(different)
    different.dispose()
    assert first["customers"] != third["customers"]
    assert first["invoice_lines"] != third["invoice_lines"]


def test_refuses_to_seed_over_rows_unless_replacing(db_engine: sa.Engine) -> None:
    _seed(db_engine, seed=5)
    before = dump(db_engine)
    with pytest.raises(ValueError, match=r"already hold rows.*replace=True"):
        _seed(db_engine, seed=11)
    assert dump(db_engine) == before

    _seed(db_engine, seed=11, replace=True)
    replaced = dump(db_engine)
    assert replaced != before
    check_invariants(replaced)


def test_apply_edits_keeps_invariants_and_moves_exactly_the_edited_rows(
    db_engine: sa.Engine, other_engine: sa.Engine
) -> None:
    _seed(db_engine)
    before = dump(db_engine)
    at = datetime(2026, 3, 5, 14, 30, tzinfo=UTC)

    edits = apply_edits(db_engine, seed=3, at=at, count=4)
    after = dump(db_engine)
    check_invariants(after)

    assert len(edits.changed_invoices) == len(edits.voided_invoices) == 4
    assert len(edits.new_invoices) == len(edits.renamed_customers) == 4
    number_to_id = {i["number"]: i["id"] for i in after["invoices"].values()}
    account_to_id = {c["account_number"]: c["id"] for c in after["customers"].values()}
    expected = {name: set() for name in TABLES}
    expected["invoices"] = {number_to_id[n] for n in edits.invoice_numbers}
    expected["customers"] = {account_to_id[a] for a in edits.renamed_customers}
    expected["invoice_lines"] = set(edits.invoice_lines)
    expected["revenue_schedule_entries"] = set(edits.revenue_schedule_entries)
    for name in TABLES:
        changed = {i for i, row in after[name].items() if before[name].get(i) != row}
        assert changed == expected[name], name
        assert before[name].keys() <= after[name].keys(), name
        stamped = {i for i, row in after[name].items() if row["updated_at"] == at}
        assert stamped == changed, name

    for number in edits.voided_invoices:
        inv = after["invoices"][number_to_id[number]]
        assert (inv["status"], inv["voided_at"]) == ("void", at)
    for number in edits.changed_invoices:
        invoice_id = number_to_id[number]
        assert after["invoices"][invoice_id]["total"] > before["invoices"][invoice_id]["total"]
    for number in edits.new_invoices:
        assert number_to_id[number] not in before["invoices"]
        assert after["invoices"][number_to_id[number]]["status"] == "open"
    for account in edits.renamed_customers:
        cid = account_to_id[account]
        assert after["customers"][cid]["name"] != before["customers"][cid]["name"]

    # The same edits on an identical database give identical results.
    _seed(other_engine)
    assert apply_edits(other_engine, seed=3, at=at, count=4) == edits
    assert repr(dump(other_engine)) == repr(after)


def test_apply_edits_refuses_a_naive_timestamp(db_engine: sa.Engine) -> None:
    _seed(db_engine)
    with pytest.raises(ValueError, match="timezone-aware"):
        apply_edits(db_engine, seed=1, at=datetime(2026, 3, 5), count=1)
