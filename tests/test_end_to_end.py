"""The whole slice: seeded billing data -> ledger -> NetSuite and AvaTax sandboxes over real
HTTP, checked against the billing tables; then billing edits records and only those move.
Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from billing import schema as b
from billing.generator import apply_edits, seed_billing
from finsync.config import load_config
from finsync.db import make_engine
from finsync.demo import MAPPING_EXAMPLE, running_sandboxes, sandbox_config, sandbox_secrets
from sync.engine import SyncEngine
from sync.migrate import upgrade
from sync.state import ledger


@pytest.fixture
def slice_(tmp_path, db_url, monkeypatch):
    for name, value in sandbox_secrets().items():
        monkeypatch.setenv(name, value)
    shutil.copy(MAPPING_EXAMPLE, tmp_path / "mapping.toml")
    with running_sandboxes() as (netsuite, avatax):
        path = tmp_path / "finsync.toml"
        path.write_text(
            sandbox_config(billing_url=db_url, state_url=db_url, netsuite=netsuite, avatax=avatax)
        )
        config = load_config(path)
        # The test plays the billing system: its billing engine writes (finsync's is read-only).
        engine = SyncEngine(config, billing=make_engine(config.billing_url), actor="test")
        upgrade(engine.state)
        seed_billing(engine.billing, customers=8, months=3, seed=11)
        yield engine, netsuite, avatax
        engine.close()


def billing_invoices(engine) -> dict[str, dict]:
    with engine.billing.connect() as conn:
        return {r["number"]: dict(r) for r in conn.execute(sa.select(b.invoices)).mappings()}


def netsuite_invoices(netsuite) -> dict[str, dict]:
    return {r["tranId"]: r for r in netsuite.records("invoice")}


def avatax_documents(avatax) -> dict[tuple[str, str], dict]:
    return {(d["type"], d["code"]): d for d in avatax.transactions()}


def test_seeded_billing_reaches_both_systems_to_the_cent_and_edits_follow(slice_):
    engine, netsuite, avatax = slice_

    first = engine.sync()

    assert first.ok
    with engine.state.connect() as conn:
        statuses = conn.execute(
            sa.select(ledger.c.target, ledger.c.status, sa.func.count()).group_by(
                ledger.c.target, ledger.c.status
            )
        ).all()
    assert {(t, s) for t, s, _ in statuses} == {("netsuite", "synced"), ("avatax", "synced")}

    invoices = billing_invoices(engine)
    held = netsuite_invoices(netsuite)
    assert set(held) == set(invoices)
    for number, invoice in invoices.items():
        expected = Decimal(0) if invoice["status"] == "void" else invoice["total"]
        assert held[number]["total"] == expected, number

    with engine.billing.connect() as conn:
        payments = {r["reference"]: r for r in conn.execute(sa.select(b.payments)).mappings()}
        applied: dict[int, Decimal] = defaultdict(Decimal)
        for app in conn.execute(sa.select(b.payment_applications)).mappings():
            applied[app["payment_id"]] += app["amount"]
    held_payments = {r["externalId"]: r for r in netsuite.records("customerPayment")}
    for reference, payment in payments.items():
        record = held_payments[f"finsync:pay:{reference}"]
        if payment["status"] == "succeeded":
            assert record["payment"] == payment["amount"], reference
            assert record["applied"] == applied[payment["id"]], reference
        else:
            assert record["applied"] == 0, reference
    with engine.billing.connect() as conn:
        refunds = dict(
            conn.execute(sa.select(b.refunds.c.reference, b.refunds.c.amount)).tuples().all()
        )
    held_refunds = {r["tranId"]: r["total"] for r in netsuite.records("customerRefund")}
    assert held_refunds == refunds and refunds

    documents = avatax_documents(avatax)
    for number, invoice in invoices.items():
        if invoice["status"] == "void":  # voided before its first sync: nothing to record
            assert ("SalesInvoice", number) not in documents
            continue
        document = documents[("SalesInvoice", number)]
        assert document["status"] == "Committed", number
        assert document["totalAmount"] == invoice["subtotal"], number
        assert document["totalTax"] == invoice["tax_total"], number

    edits = apply_edits(engine.billing, seed=11, at=datetime(2026, 3, 1, tzinfo=UTC), count=3)
    second = engine.sync()

    by_target = {t.target: t for t in second.targets}
    assert by_target["netsuite"].pushed.failed == by_target["avatax"].pushed.failed == 0
    invoices = billing_invoices(engine)
    held = netsuite_invoices(netsuite)
    documents = avatax_documents(avatax)
    for number in edits.changed_invoices + edits.new_invoices:
        assert held[number]["total"] == invoices[number]["total"], number
        assert documents[("SalesInvoice", number)]["totalTax"] == invoices[number]["tax_total"]
    for number in edits.voided_invoices:
        assert held[number]["total"] == 0, number
        assert documents[("SalesInvoice", number)]["status"] != "Committed", number
    customers = {r["entityId"]: r for r in netsuite.records("customer")}
    with engine.billing.connect() as conn:
        names = dict(
            conn.execute(sa.select(b.customers.c.account_number, b.customers.c.name)).tuples().all()
        )
    for account in edits.renamed_customers:
        assert customers[account]["companyName"] == names[account]

    third = engine.sync()
    assert sum(t.pushed.sent for t in third.targets) == 0
