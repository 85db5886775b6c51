"""Tax reconciliation: billed tax against what the AvaTax sandbox computes, via the ledger.

Invoices go through the real mapping and connector into the sandbox; the ledger rows are
written the way the sync engine writes them (WriteResult.details as the ``result`` JSON).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from billing import schema as b
from billing.records import Customer, Invoice
from connectors.avatax import AvaTaxConnector, AvaTaxSettings
from finsync.config import Secret
from mappings import avatax
from reports.tax import tax_reconciliation
from sandbox.avatax import AvaTaxSandbox
from sync.state import ledger
from sync.state import metadata as state_metadata
from tests.avatax_records import PRODUCTS, customer, invoice, line, tables

D = Decimal
NOW = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def connector() -> Iterator[AvaTaxConnector]:
    with AvaTaxSandbox(account_id="1", license_key="k") as sandbox:
        settings = AvaTaxSettings(
            account_id=Secret("1"), license_key=Secret("k"), base_url=sandbox.url
        )
        conn = AvaTaxConnector(settings, sleep=lambda s: None)
        yield conn
        conn.close()


def _insert_billing(engine: sa.Engine, customers: list[Customer], invoices: list[Invoice]) -> None:
    with engine.begin() as conn:
        conn.execute(
            b.products.insert(),
            [
                {
                    "id": p.id,
                    "sku": p.sku,
                    "name": p.name,
                    "product_family": p.product_family,
                    "revenue_pattern": p.revenue_pattern,
                    "tax_code": p.tax_code,
                    "updated_at": p.updated_at,
                }
                for p in PRODUCTS.values()
            ],
        )
        conn.execute(
            b.customers.insert(),
            [
                {
                    "id": c.id,
                    "account_number": c.account_number,
                    "name": c.name,
                    "email": c.email,
                    "billing_entity": c.billing_entity,
                    "currency": c.currency,
                    "country": c.country,
                    "region": c.region,
                    "city": c.city,
                    "postal_code": c.postal_code,
                    "address_line1": c.address_line1,
                    "tax_exempt": c.tax_exempt,
                    "exemption_number": c.exemption_number,
                    "created_at": c.created_at,
                    "updated_at": c.updated_at,
                }
                for c in customers
            ],
        )
        for inv in invoices:
            conn.execute(
                b.invoices.insert().values(
                    id=inv.id,
                    number=inv.number,
                    customer_id=inv.customer_id,
                    billing_entity=inv.billing_entity,
                    currency=inv.currency,
                    status=inv.status,
                    issue_date=inv.issue_date,
                    due_date=inv.due_date,
                    subtotal=inv.subtotal,
                    tax_total=inv.tax_total,
                    total=inv.total,
                    memo=inv.memo,
                    voided_at=inv.voided_at,
                    created_at=inv.created_at,
                    updated_at=inv.updated_at,
                )
            )
            conn.execute(
                b.invoice_lines.insert(),
                [
                    {
                        "id": inv.id * 100 + li.line_no,
                        "invoice_id": inv.id,
                        "line_no": li.line_no,
                        "product_id": li.product_id,
                        "description": li.description,
                        "quantity": li.quantity,
                        "unit_price": li.unit_price,
                        "discount": li.discount,
                        "amount": li.amount,
                        "tax_rate": li.tax_rate,
                        "tax_amount": li.tax_amount,
                        "tax_jurisdiction": li.tax_jurisdiction,
                        "updated_at": inv.updated_at,
                    }
                    for li in inv.lines
                ],
            )


def _sync(engine: sa.Engine, conn: AvaTaxConnector, pairs: list[tuple[Invoice, Customer]]) -> None:
    """Send each invoice to the sandbox and record it in the ledger as the sync engine does."""
    docs = [avatax.map_invoice(inv, cust, tables()) for inv, cust in pairs]
    results = conn.send(docs)
    with engine.begin() as db:
        for doc, result in zip(docs, results, strict=True):
            assert result.ok, result.error
            db.execute(
                ledger.insert().values(
                    target="avatax",
                    kind=doc.kind,
                    source_id=doc.source_id,
                    label=doc.label,
                    external_id=doc.external_id,
                    record_type=doc.record_type,
                    operation=doc.operation,
                    status="synced",
                    payload_hash=doc.payload_hash,
                    synced_hash=doc.payload_hash,
                    internal_id=result.internal_id,
                    result=json.dumps(dict(result.details), sort_keys=True),
                    created_at=NOW,
                    updated_at=NOW,
                    synced_at=NOW,
                )
            )


def test_variance_shows_only_where_billing_charged_a_different_tax(
    db_engine: sa.Engine, connector: AvaTaxConnector
) -> None:
    state_metadata.create_all(db_engine)
    b.metadata.create_all(db_engine)
    ca = customer(1, "C-0001")
    ny = customer(2, "C-0002", region="NY")
    de = customer(3, "C-0003", entity="acme-de")
    jp = customer(4, "C-0004", entity="acme-jp")
    # California at the engine's 7.25%: no variance.
    inv_ca = invoice(10, "INV-10", cust=ca)
    # New York billed at 8% while the engine computes 8.875%: 80.00 billed, 88.75 computed.
    inv_ny = invoice(
        11,
        "INV-11",
        cust=ny,
        lines=(line(1, "onboarding", "1", "1000.00", "1000.00", "0.08", "80.00", "US-NY"),),
    )
    inv_de = invoice(
        12,
        "INV-12",
        cust=de,
        lines=(line(1, "plat-pro", "1", "185.00", "185.00", "0.19", "35.15", "DE"),),
    )
    inv_jp = invoice(
        13,
        "INV-13",
        cust=jp,
        lines=(line(1, "plat-pro", "1", "29800", "29800", "0.10", "2980", "JP"),),
    )
    # Never sent to the engine.
    inv_pending = invoice(
        14,
        "INV-14",
        cust=ca,
        lines=(line(1, "onboarding", "1", "100.00", "100.00", "0.0725", "7.25", "US-CA"),),
    )
    # Voided, and one outside the period: neither appears.
    inv_void = invoice(15, "INV-15", cust=ca, status="void")
    inv_april = invoice(16, "INV-16", cust=ca, issue_date=date(2026, 4, 2))
    _insert_billing(
        db_engine,
        [ca, ny, de, jp],
        [inv_ca, inv_ny, inv_de, inv_jp, inv_pending, inv_void, inv_april],
    )
    _sync(db_engine, connector, [(inv_ca, ca), (inv_ny, ny), (inv_de, de), (inv_jp, jp)])

    recon = tax_reconciliation(
        db_engine, db_engine, period_start=date(2026, 3, 1), period_end=date(2026, 3, 31)
    )

    rows = {(r.number, r.jurisdiction): r for r in recon.rows}
    assert set(rows) == {
        ("INV-10", "US-CA"),
        ("INV-11", "US-NY"),
        ("INV-12", "DE"),
        ("INV-13", "JP"),
        ("INV-14", "US-CA"),
    }
    assert [(r.number, r.variance) for r in recon.variances] == [("INV-11", D("-8.75"))]
    ny_row = rows[("INV-11", "US-NY")]
    assert (ny_row.tax_billed, ny_row.tax_computed) == (D("80.00"), D("88.75"))
    assert rows[("INV-10", "US-CA")].tax_computed == D("137.61")
    assert rows[("INV-13", "JP")].tax_computed == D("2980")
    pending = rows[("INV-14", "US-CA")]
    assert pending.tax_computed is None and pending.variance is None
    assert pending.engine_state == "not in engine" and pending.ledger_status is None

    totals = {(t.jurisdiction, t.currency): t for t in recon.totals}
    assert set(totals) == {("US-CA", "USD"), ("US-NY", "USD"), ("DE", "EUR"), ("JP", "JPY")}
    ca_total = totals[("US-CA", "USD")]
    assert (ca_total.invoices, ca_total.not_in_engine) == (2, 1)
    assert ca_total.tax_billed == D("144.86")
    assert ca_total.tax_computed == D("137.61") and ca_total.variance == D("0")
    assert totals[("US-NY", "USD")].variance == D("-8.75")
    assert all(isinstance(t.tax_computed, Decimal) for t in recon.totals)
    # Per currency, never across currencies.
    by_currency = {t.currency: t for t in recon.currency_totals}
    assert by_currency["USD"].tax_billed == D("224.86")
    assert by_currency["USD"].tax_computed == D("226.36")
    assert by_currency["EUR"].tax_computed == D("35.15")
    assert by_currency["JPY"].tax_computed == D("2980")
    assert recon.computed_by_jurisdiction()[("US-NY", "USD")] == D("88.75")


def test_entity_filter_and_an_empty_period(
    db_engine: sa.Engine, connector: AvaTaxConnector
) -> None:
    state_metadata.create_all(db_engine)
    b.metadata.create_all(db_engine)
    ca, de = customer(1, "C-0001"), customer(3, "C-0003", entity="acme-de")
    inv_ca = invoice(10, "INV-10", cust=ca)
    inv_de = invoice(
        12,
        "INV-12",
        cust=de,
        lines=(line(1, "plat-pro", "1", "185.00", "185.00", "0.19", "35.15", "DE"),),
    )
    _insert_billing(db_engine, [ca, de], [inv_ca, inv_de])
    _sync(db_engine, connector, [(inv_ca, ca), (inv_de, de)])

    only_de = tax_reconciliation(
        db_engine,
        db_engine,
        period_start=date(2026, 3, 1),
        period_end=date(2026, 3, 31),
        entity="acme-de",
    )
    assert [(r.number, r.entity, r.currency) for r in only_de.rows] == [
        ("INV-12", "acme-de", "EUR")
    ]
    assert only_de.variances == ()

    february = tax_reconciliation(
        db_engine, db_engine, period_start=date(2026, 2, 1), period_end=date(2026, 2, 28)
    )
    assert february.rows == () and february.totals == ()
