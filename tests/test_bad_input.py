"""Malformed billing records are quarantined with a message naming record, field and fix,
and every valid record of the same batch still syncs (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from sync.state import ledger
from tests.builders import BillingBuilder
from tests.engine_support import Clock, make_engine, write_config

# (label of the bad record, what its message must contain), built in ``_build``.
EXPECTED: list[tuple[str, list[str]]] = [
    ("invoice BAD-NOCUST", ["customer_id", "customer 999999 does not exist"]),
    ("invoice BAD-CUR", ["currency", "'XYZ' is not an ISO 4217 currency code"]),
    ("invoice BAD-NEGQTY", ["line 1.quantity", "negative"]),
    ("invoice BAD-SUM", ["subtotal", "differs from the sum of the lines"]),
    ("invoice BAD-TOTAL", ["total", "is not subtotal"]),
    ("invoice BAD-NODATE", ["issue_date", "is empty"]),
    ("invoice BAD-PERIOD", ["line 1.service_end", "before service_start"]),
    ("invoice BAD-SKU", ["line 1", "no item mapped for SKU 'cdn-pro'", "[items]"]),
    ("invoice BAD-JPY", ["line 1.amount", "more decimals than JPY allows"]),
    ("customer BAD-LONGNAME", ["name", "300 characters", "at most 83"]),
    ("invoice BAD-ENTITY", ["acme-mars", "[entities]"]),
    ("payment BAD-OVERAPPLIED", ["applications", "exceeds the payment amount"]),
    ("payment BAD-APPINV", ["invoice_id", "invoice 888888 does not exist"]),
    ("credit note BAD-CNINV", ["invoice_id", "invoice 777777 does not exist"]),
    ("invoice BAD-PRODUCT", ["line 1.product_id", "product 555555 does not exist"]),
    ("customer BAD-EXEMPT", ["exemption_number", "tax-exempt"]),
    ("payment BAD-NEGPAY", ["amount", "negative"]),
    ("invoice BAD-NODUE", ["due_date", "is empty"]),
    ("invoice BAD-NOLINES", ["lines", "no lines"]),
    ("invoice BAD-KWD", ["line 1.amount", "more decimals than KWD allows"]),
]
GOOD = [
    "customer GOOD-1",
    "invoice GOOD-INV-1",
    "invoice GOOD-INV-2",
    "payment GOOD-PAY-1",
    "credit note GOOD-CN-1",
    "invoice GOOD-JPY",
    "invoice GOOD-KWD",
]


def _build(b: BillingBuilder) -> None:
    good = b.customer("GOOD-1")
    g1 = b.invoice(good, number="GOOD-INV-1")
    b.invoice(
        good,
        number="GOOD-INV-2",
        lines=[{"quantity": "2.5", "unit_price": "19.99", "discount": "5.00"}],
    )
    b.payment(good, "50.00", applications=[(g1, "50.00")], reference="GOOD-PAY-1")
    b.credit_note(g1, good, "5.00", "0.36", number="GOOD-CN-1")
    b.invoice(
        b.customer("GOOD-JP", entity="acme-jp", currency="JPY", country="JP", region=None),
        number="GOOD-JPY",
        currency="JPY",
        entity="acme-jp",
        lines=[{"unit_price": "7400", "tax_rate": "0.10", "tax_jurisdiction": "JP"}],
    )
    b.invoice(
        b.customer("GOOD-KW", entity="acme-kw", currency="KWD", country="KW", region=None),
        number="GOOD-KWD",
        currency="KWD",
        entity="acme-kw",
        lines=[{"unit_price": "15.250", "tax_rate": "0", "tax_jurisdiction": "KW"}],
    )

    b.invoice(999999, number="BAD-NOCUST")
    b.invoice(
        good, number="BAD-CUR", currency="XYZ", lines=[{"amount": "100.00", "tax_amount": "0"}]
    )
    b.invoice(good, number="BAD-NEGQTY", lines=[{"quantity": "-2"}])
    sum_id = b.invoice(good, number="BAD-SUM")
    with b.engine.begin() as conn:
        from billing import schema as s

        conn.execute(
            s.invoices.update()
            .where(s.invoices.c.id == sum_id)
            .values(
                subtotal=sa.literal("150.00", s.invoices.c.subtotal.type),
                total=sa.literal("157.25", s.invoices.c.total.type),
            )
        )
    total_id = b.invoice(good, number="BAD-TOTAL")
    b.update_invoice(total_id, total=__import__("decimal").Decimal("1.00"))
    b.invoice(good, number="BAD-NODATE", issue_date=None)
    b.invoice(
        good,
        number="BAD-PERIOD",
        lines=[{"service_start": date(2026, 1, 31), "service_end": date(2026, 1, 1)}],
    )
    b.invoice(good, number="BAD-SKU", lines=[{"sku": "cdn-pro"}])
    b.invoice(
        good,
        number="BAD-JPY",
        currency="JPY",
        entity="acme-jp",
        lines=[{"amount": "7400.5", "tax_amount": "740", "unit_price": "7400.5"}],
    )
    b.customer("BAD-LONGNAME", name="N" * 300)
    b.invoice(good, number="BAD-ENTITY", entity="acme-mars")
    over = b.invoice(good, number="GOOD-FOR-OVER")
    b.payment(
        good, "10.00", applications=[(over, "8.00"), (over, "7.00")], reference="BAD-OVERAPPLIED"
    )
    b.payment(good, "10.00", applications=[(888888, "10.00")], reference="BAD-APPINV")
    b.credit_note(777777, good, "5.00", number="BAD-CNINV")
    b.invoice(good, number="BAD-PRODUCT", lines=[{"product_id": 555555}])
    b.customer("BAD-EXEMPT", tax_exempt=True, exemption_number=None)
    b.payment(good, "-5.00", reference="BAD-NEGPAY")
    b.invoice(good, number="BAD-NODUE", due_date=None)
    b.invoice(good, number="BAD-NOLINES", lines=[])
    b.invoice(
        good,
        number="BAD-KWD",
        currency="KWD",
        entity="acme-kw",
        lines=[{"amount": "15.2505", "tax_amount": "0", "unit_price": "15.2505"}],
    )


def test_each_malformed_record_is_quarantined_and_the_rest_sync(tmp_path, db_url):
    setup = write_config(tmp_path, db_url)
    engine = make_engine(setup, Clock())
    _build(BillingBuilder(engine.billing))

    summary = engine.sync()

    with engine.state.connect() as conn:
        rows = {r["label"]: r for r in conn.execute(sa.select(ledger)).mappings()}
    problems = []
    for label, fragments in EXPECTED:
        row = rows.get(label)
        if row is None:
            problems.append(f"{label}: not in the ledger")
            continue
        if row["status"] != "failed" or row["error_kind"] != "mapping":
            problems.append(f"{label}: status {row['status']}/{row['error_kind']}")
        message = row["last_error"] or ""
        if not message.startswith(label):
            problems.append(f"{label}: message does not name the record: {message}")
        problems += [
            f"{label}: {f!r} missing in {message!r}" for f in fragments if f not in message
        ]
    for label in GOOD:
        if rows[label]["status"] != "synced":
            problems.append(
                f"{label}: valid record not synced ({rows[label]['status']}: "
                f"{rows[label]['last_error']})"
            )
    assert not problems, "\n".join(problems)
    assert len(EXPECTED) >= 15
    assert summary.targets[0].extracted.failed == len(EXPECTED)
    stored = {r["external_id"] for r in engine.connector("erp").records()}
    assert "finsync:inv:GOOD-JPY" in stored and "finsync:inv:BAD-JPY" not in stored
    engine.close()


def test_a_full_re_read_keeps_every_quarantine_and_sends_nothing(tmp_path, db_url):
    """Validation runs only when a page differs from the ledger: a re-read of unchanged
    billing must still hold every rejected record back with its message."""
    setup = write_config(tmp_path, db_url)
    engine = make_engine(setup, Clock())
    builder = BillingBuilder(engine.billing)
    _build(builder)
    # Sound on its own; only validation across records rejects it (its customer is rejected).
    builder.invoice(builder.customer("BAD-NONAME", name=""), number="BAD-OF-BAD-CUSTOMER")
    engine.sync()

    def ledger_now() -> dict[str, tuple[str, str | None]]:
        with engine.state.connect() as conn:
            return {
                r["label"]: (r["status"], r["last_error"])
                for r in conn.execute(sa.select(ledger)).mappings()
            }

    before = ledger_now()
    again = engine.sync(full=True)

    assert ledger_now() == before
    assert sum(1 for status, _ in before.values() if status == "failed") == len(EXPECTED) + 2
    status, message = before["invoice BAD-OF-BAD-CUSTOMER"]
    assert status == "failed" and "customer BAD-NONAME is rejected" in (message or "")
    extracted = again.targets[0].extracted
    assert (extracted.new, extracted.changed, extracted.failed) == (0, 0, 0)
    assert again.targets[0].pushed.sent == 0
    engine.close()
