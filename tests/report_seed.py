"""Hand-made billing and ledger rows for the report tests, with dates chosen for known aging.

The month under test is 2026-10. Amounts are small and round so a reader can check them, and
some customer text is hostile (formula injection) on purpose.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal as D
from typing import Any

import sqlalchemy as sa

from billing import schema as b
from sync import state

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PERIOD = "2026-10"
INJECTIONS = (
    '=HYPERLINK("http://evil.example/x","click")',
    "@SUM(1)",
    "+cmd|' /C calc'!A0",
    "-2+3",
    "=1+1",
    "\t=1",
)


def _month_end(month: date) -> date:
    following = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return date.fromordinal(following.toordinal() - 1)


def _ts(**extra: Any) -> dict[str, Any]:
    return {"updated_at": T0, **extra}


def seed_billing(engine: sa.Engine) -> None:
    """Create the billing tables and fill them with the report scenario."""
    b.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            b.customers.insert(),
            [
                _ts(
                    id=1,
                    account_number="C-001",
                    name="Northwind LLC",
                    billing_entity="acme-us",
                    currency="USD",
                    tax_exempt=False,
                    created_at=T0,
                ),
                _ts(
                    id=2,
                    account_number="C-002",
                    name="Sakura KK",
                    billing_entity="acme-jp",
                    currency="JPY",
                    tax_exempt=False,
                    created_at=T0,
                ),
                _ts(
                    id=3,
                    account_number="C-003",
                    name="Gulf Trading",
                    billing_entity="acme-kw",
                    currency="KWD",
                    tax_exempt=False,
                    created_at=T0,
                ),
                _ts(
                    id=4,
                    account_number=INJECTIONS[1],
                    name=INJECTIONS[0],
                    billing_entity="acme-us",
                    currency="USD",
                    tax_exempt=False,
                    created_at=T0,
                ),
            ],
        )
        conn.execute(
            b.products.insert(),
            [
                _ts(
                    id=1,
                    sku="plat-pro",
                    name="Platform Pro",
                    product_family="platform",
                    revenue_pattern="ratable",
                    tax_code="SW054000",
                ),
                _ts(
                    id=2,
                    sku="onboarding",
                    name="Onboarding",
                    product_family="services",
                    revenue_pattern="point_in_time",
                    tax_code="S0000000",
                ),
                _ts(
                    id=3,
                    sku="support-prem",
                    name="Premium support",
                    product_family="support",
                    revenue_pattern="ratable",
                    tax_code="SW054000",
                ),
            ],
        )
        inv = [
            # number, customer, entity, currency, status, issue, due, memo, voided_at
            (
                1,
                "INV-1",
                1,
                "acme-us",
                "USD",
                "open",
                date(2026, 10, 5),
                date(2026, 11, 4),
                None,
                None,
            ),
            (
                2,
                "INV-2",
                1,
                "acme-us",
                "USD",
                "open",
                date(2026, 8, 1),
                date(2026, 8, 31),
                None,
                None,
            ),
            (
                3,
                "INV-3",
                4,
                "acme-us",
                "USD",
                "open",
                date(2026, 10, 20),
                date(2026, 10, 25),
                INJECTIONS[2],
                None,
            ),
            (
                4,
                "INV-4",
                1,
                "acme-us",
                "USD",
                "void",
                date(2026, 10, 10),
                date(2026, 11, 9),
                None,
                datetime(2026, 10, 12, 9, tzinfo=UTC),
            ),
            (
                5,
                "INV-5",
                2,
                "acme-jp",
                "JPY",
                "open",
                date(2026, 10, 1),
                date(2026, 10, 31),
                None,
                None,
            ),
            (
                6,
                "INV-6",
                3,
                "acme-kw",
                "KWD",
                "open",
                date(2026, 9, 15),
                date(2026, 9, 30),
                None,
                None,
            ),
            (
                7,
                "INV-7",
                3,
                "acme-kw",
                "KWD",
                "open",
                date(2026, 5, 1),
                date(2026, 5, 31),
                None,
                None,
            ),
            # Paid in September, credited in October: a credit balance, partly refunded.
            (
                8,
                "INV-8",
                2,
                "acme-jp",
                "JPY",
                "paid",
                date(2026, 9, 1),
                date(2026, 9, 30),
                None,
                None,
            ),
            # Issued in September, voided on 3 October (after September's close).
            (
                9,
                "INV-9",
                1,
                "acme-us",
                "USD",
                "void",
                date(2026, 9, 20),
                date(2026, 10, 20),
                None,
                datetime(2026, 10, 3, 8, tzinfo=UTC),
            ),
        ]
        lines = [
            # id, invoice, product, amount, tax rate, tax, jurisdiction
            (11, 1, 1, D("1200.00"), D("0.08875"), D("106.50"), "US-NY"),
            (12, 1, 2, D("500.00"), D("0.08875"), D("44.38"), "US-NY"),
            (21, 2, 3, D("600.00"), D("0"), D("0.00"), "US-NY"),
            (31, 3, 2, D("100.00"), D("0.0725"), D("7.25"), "US-CA"),
            (41, 4, 2, D("900.00"), D("0.11"), D("99.00"), "US-CA"),
            (51, 5, 1, D("29800"), D("0.10"), D("2980"), "JP"),
            (61, 6, 2, D("460.000"), D("0"), D("0.000"), "KW"),
            (71, 7, 3, D("15.250"), D("0"), D("0.000"), "KW"),
            (81, 8, 2, D("8000"), D("0"), D("0"), "JP"),
            (91, 9, 1, D("600.00"), D("0"), D("0.00"), "US-NY"),
        ]
        # The service periods of the ratable lines (point-in-time lines have none).
        service = {
            11: (date(2026, 10, 1), date(2027, 9, 30)),
            21: (date(2026, 8, 1), date(2027, 1, 31)),
            51: (date(2026, 10, 1), date(2026, 12, 31)),
            71: (date(2026, 5, 1), date(2026, 5, 31)),
            91: (date(2026, 9, 1), date(2027, 8, 31)),
        }
        rows = []
        for iid, number, cust, ent, cur, status, issue, due, memo, voided in inv:
            mine = [ln for ln in lines if ln[1] == iid]
            sub = sum((ln[3] for ln in mine), D(0))
            tax = sum((ln[5] for ln in mine), D(0))
            rows.append(
                _ts(
                    id=iid,
                    number=number,
                    customer_id=cust,
                    billing_entity=ent,
                    currency=cur,
                    status=status,
                    issue_date=issue,
                    due_date=due,
                    subtotal=sub,
                    tax_total=tax,
                    total=sub + tax,
                    memo=memo,
                    voided_at=voided,
                    created_at=T0,
                )
            )
        conn.execute(b.invoices.insert(), rows)
        conn.execute(
            b.invoice_lines.insert(),
            [
                _ts(
                    id=lid,
                    invoice_id=iid,
                    line_no=1,
                    product_id=pid,
                    description="line",
                    quantity=D(1),
                    unit_price=amount,
                    discount=D(0),
                    amount=amount,
                    tax_rate=rate,
                    tax_amount=tax,
                    tax_jurisdiction=jur,
                    service_start=service.get(lid, (None, None))[0],
                    service_end=service.get(lid, (None, None))[1],
                )
                for lid, iid, pid, amount, rate, tax, jur in lines
            ],
        )
        entries: list[tuple[int, date, D]] = []
        entries += [
            (11, date(2026 + (9 + k) // 12, (9 + k) % 12 + 1, 1), D("100.00")) for k in range(12)
        ]  # 2026-10 .. 2027-09
        entries += [(12, date(2026, 10, 1), D("500.00"))]
        entries += [
            (21, date(2026 + (7 + k) // 12, (7 + k) % 12 + 1, 1), D("100.00")) for k in range(6)
        ]  # 2026-08 .. 2027-01
        entries += [(21, date(2027, 1, 1), D("-100.00"))]  # reversal after CN-3
        entries += [(31, date(2026, 10, 1), D("100.00")), (31, date(2026, 10, 1), D("-20.00"))]
        # INV-4 was voided in the month it was issued: its reversal cancels its entry.
        entries += [(41, date(2026, 10, 1), D("900.00")), (41, date(2026, 10, 1), D("-900.00"))]
        entries += [
            (51, date(2026, 10, 1), D("9934")),
            (51, date(2026, 11, 1), D("9933")),
            (51, date(2026, 12, 1), D("9933")),
        ]
        entries += [(61, date(2026, 9, 1), D("460.000")), (71, date(2026, 5, 1), D("15.250"))]
        entries += [(81, date(2026, 9, 1), D("8000")), (81, date(2026, 10, 1), D("-5000"))]
        # INV-9: 50.00 a month from September; the void reverses September's share in
        # October and every later month in its own month, so the line adds up to zero.
        entries += [
            (91, date(2026 + (8 + k) // 12, (8 + k) % 12 + 1, 1), D("50.00")) for k in range(12)
        ]
        entries += [(91, date(2026, 10, 1), D("-50.00"))]
        entries += [
            (91, date(2026 + (9 + k) // 12, (9 + k) % 12 + 1, 1), D("-50.00")) for k in range(11)
        ]
        conn.execute(
            b.revenue_schedule_entries.insert(),
            [
                _ts(
                    id=100 + n,
                    invoice_line_id=lid,
                    period=per,
                    amount=amount,
                    status="recognized" if per <= date(2026, 10, 1) else "scheduled",
                    recognized_on=_month_end(per) if per <= date(2026, 10, 1) else None,
                )
                for n, (lid, per, amount) in enumerate(entries)
            ],
        )
        conn.execute(
            b.credit_notes.insert(),
            [
                _ts(
                    id=1,
                    number="CN-1",
                    invoice_id=3,
                    customer_id=4,
                    currency="USD",
                    status="issued",
                    issue_date=date(2026, 10, 28),
                    reason=INJECTIONS[4],
                    subtotal=D("20.00"),
                    tax_total=D("0.00"),
                    total=D("20.00"),
                    created_at=T0,
                ),
                _ts(
                    id=2,
                    number="CN-2",
                    invoice_id=1,
                    customer_id=1,
                    currency="USD",
                    status="void",
                    issue_date=date(2026, 10, 30),
                    reason="typo",
                    subtotal=D("50.00"),
                    tax_total=D("0.00"),
                    total=D("50.00"),
                    created_at=T0,
                ),
                _ts(
                    id=3,
                    number="CN-3",
                    invoice_id=2,
                    customer_id=1,
                    currency="USD",
                    status="issued",
                    issue_date=date(2026, 10, 31),
                    reason="downgrade",
                    subtotal=D("100.00"),
                    tax_total=D("0.00"),
                    total=D("100.00"),
                    created_at=T0,
                ),
                _ts(
                    id=4,
                    number="CN-4",
                    invoice_id=8,
                    customer_id=2,
                    currency="JPY",
                    status="issued",
                    issue_date=date(2026, 10, 6),
                    reason="service credit",
                    subtotal=D("5000"),
                    tax_total=D("0"),
                    total=D("5000"),
                    created_at=T0,
                ),
            ],
        )
        conn.execute(
            b.credit_note_lines.insert(),
            [
                _ts(
                    id=1,
                    credit_note_id=1,
                    line_no=1,
                    invoice_line_id=31,
                    product_id=2,
                    description="x",
                    amount=D("20.00"),
                    tax_amount=D("0.00"),
                ),
                _ts(
                    id=2,
                    credit_note_id=2,
                    line_no=1,
                    invoice_line_id=11,
                    product_id=1,
                    description="x",
                    amount=D("50.00"),
                    tax_amount=D("0.00"),
                ),
                _ts(
                    id=3,
                    credit_note_id=3,
                    line_no=1,
                    invoice_line_id=21,
                    product_id=3,
                    description="x",
                    amount=D("100.00"),
                    tax_amount=D("0.00"),
                ),
                _ts(
                    id=4,
                    credit_note_id=4,
                    line_no=1,
                    invoice_line_id=81,
                    product_id=2,
                    description="x",
                    amount=D("5000"),
                    tax_amount=D("0"),
                ),
            ],
        )
        conn.execute(
            b.payments.insert(),
            [
                _ts(
                    id=1,
                    reference="PAY-1",
                    customer_id=1,
                    currency="USD",
                    amount=D("200.00"),
                    received_on=date(2026, 9, 10),
                    method="ach",
                    processor_fee=D("0.00"),
                    status="succeeded",
                    created_at=T0,
                ),
                _ts(
                    id=2,
                    reference="PAY-2",
                    customer_id=1,
                    currency="USD",
                    amount=D("300.00"),
                    received_on=date(2026, 10, 15),
                    method="card",
                    processor_fee=D("8.70"),
                    status="succeeded",
                    created_at=T0,
                ),
                _ts(
                    id=3,
                    reference="PAY-3",
                    customer_id=2,
                    currency="JPY",
                    amount=D("10000"),
                    received_on=date(2026, 10, 20),
                    method="wire",
                    processor_fee=D("0"),
                    status="succeeded",
                    created_at=T0,
                ),
                _ts(
                    id=4,
                    reference=INJECTIONS[3],
                    customer_id=1,
                    currency="USD",
                    amount=D("50.00"),
                    received_on=date(2026, 10, 18),
                    method="card",
                    processor_fee=D("0.00"),
                    status="failed",
                    created_at=T0,
                ),
                _ts(
                    id=5,
                    reference="PAY-5",
                    customer_id=2,
                    currency="JPY",
                    amount=D("8000"),
                    received_on=date(2026, 9, 25),
                    method="wire",
                    processor_fee=D("0"),
                    status="succeeded",
                    created_at=T0,
                ),
            ],
        )
        conn.execute(
            b.payment_applications.insert(),
            [
                _ts(
                    id=1,
                    payment_id=1,
                    invoice_id=2,
                    amount=D("200.00"),
                    applied_on=date(2026, 9, 10),
                ),
                _ts(
                    id=2,
                    payment_id=2,
                    invoice_id=2,
                    amount=D("100.00"),
                    applied_on=date(2026, 11, 5),
                ),  # after period end: still open at Oct 31
                _ts(
                    id=3,
                    payment_id=3,
                    invoice_id=5,
                    amount=D("10000"),
                    applied_on=date(2026, 10, 20),
                ),
                _ts(
                    id=5,
                    payment_id=5,
                    invoice_id=8,
                    amount=D("8000"),
                    applied_on=date(2026, 9, 25),
                ),
            ],
        )
        conn.execute(
            b.refunds.insert(),
            [
                # 50.00 of PAY-2's 300.00, unapplied on the day (its application is Nov 5).
                _ts(
                    id=1,
                    reference="RF-1",
                    customer_id=1,
                    payment_id=2,
                    credit_note_id=None,
                    currency="USD",
                    amount=D("50.00"),
                    refunded_on=date(2026, 10, 25),
                    created_at=T0,
                ),
                # 3,000 of CN-4's 5,000 credit on the paid INV-8.
                _ts(
                    id=2,
                    reference="RF-2",
                    customer_id=2,
                    payment_id=None,
                    credit_note_id=4,
                    currency="JPY",
                    amount=D("3000"),
                    refunded_on=date(2026, 10, 8),
                    created_at=T0,
                ),
            ],
        )


def seed_ledger(engine: sa.Engine) -> None:
    """Create the state tables with a few ledger rows in every status that matters."""
    state.metadata.create_all(engine)
    rows = [
        ("netsuite", "invoice", "1", "invoice INV-1", "synced", "NS-101", None, None),
        ("netsuite", "invoice", "2", "invoice INV-2", "synced", "NS-102", None, None),
        (
            "netsuite",
            "invoice",
            "3",
            "invoice INV-3",
            "failed",
            None,
            f"customer {INJECTIONS[1]} is missing in NetSuite",
            "mapping",
        ),
        ("netsuite", "invoice", "5", "invoice INV-5", "synced", "NS-105", None, None),
        (
            "netsuite",
            "credit_note",
            "1",
            "credit note CN-1",
            "dead",
            None,
            "WS_REQUEST_BLOCKED after 8 attempts",
            "retryable",
        ),
        ("netsuite", "credit_note", "3", "credit note CN-3", "synced", "NS-203", None, None),
        ("netsuite", "payment", "2", "payment PAY-2", "retry", None, "HTTP 503", "retryable"),
        ("netsuite", "payment", "3", "payment PAY-3", "synced", "NS-303", None, None),
        ("netsuite", "invoice", "9", "invoice INV-9", "synced", "NS-109", None, None),
        ("netsuite", "refund", "2", "refund RF-2", "synced", "NS-402", None, None),
        (
            "netsuite",
            "revenue",
            "2026-10:acme-us:USD",
            "journal 2026-10 acme-us USD",
            "synced",
            "NS-JE1",
            None,
            None,
        ),
        ("avatax", "invoice", "1", "invoice INV-1", "synced", "INV-1", None, None),
        ("avatax", "invoice", "5", "invoice INV-5", "synced", "INV-5", None, None),
    ]
    # What AvaTax computed: INV-1 in New York 0.01 below what billing charged, INV-5 exact.
    results = {
        ("avatax", "1"): {
            "totalTaxCalculated": "150.87",
            "summary": [{"country": "US", "region": "NY", "taxCalculated": "150.87"}],
        },
        ("avatax", "5"): {
            "totalTaxCalculated": "2980",
            "summary": [{"country": "JP", "region": "", "taxCalculated": "2980"}],
        },
    }
    # October's USD journal as sent: the 150.00 of ratable entries (100 + 100 + INV-9's -50).
    journal = {
        "lineList": [
            {"account": {"internalId": "2400"}, "debit": "150.00"},
            {"account": {"internalId": "4000"}, "credit": "150.00"},
        ]
    }
    extras: dict[tuple[str, str], dict[str, Any]] = {
        ("invoice", "9"): {"operation": "void"},
        ("revenue", "2026-10:acme-us:USD"): {"synced_payload": json.dumps(journal)},
    }
    with engine.begin() as conn:
        conn.execute(
            state.ledger.insert(),
            [
                {
                    "target": t,
                    "kind": k,
                    "source_id": sid,
                    "label": label,
                    "status": status,
                    "internal_id": iid,
                    "last_error": err,
                    "error_kind": ek,
                    "external_id": sid,
                    "created_at": T0,
                    "updated_at": T0,
                    "result": json.dumps(results[(t, sid)]) if (t, sid) in results else None,
                    "operation": "upsert",
                    "synced_payload": None,
                    **(extras.get((k, sid), {}) if t == "netsuite" else {}),
                }
                for t, k, sid, label, status, iid, err, ek in rows
            ],
        )
