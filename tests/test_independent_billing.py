"""The independent billing database (tests/independent_billing.py) through validation and a
sync to the NetSuite (SOAP) and AvaTax sandboxes, on SQLite and PostgreSQL: every broken record
is rejected with one message naming its field and the fix, and the sandboxes hold exactly the
valid records the builder expects, with billing's amounts."""

from __future__ import annotations

import re
import shutil
from decimal import Decimal

import pytest

from billing.validation import validate_billing
from finsync.config import load_config
from finsync.demo import MAPPING_EXAMPLE, running_sandboxes, sandbox_config, sandbox_secrets
from sync.engine import SyncEngine
from sync.extract import BillingReader
from sync.migrate import upgrade
from tests.independent_billing import build_independent_billing

FIXES = re.compile(
    r"\b(correct|set|give|point|round|add|apply|remove|reduce|credit|refund|"
    r"delete|date|fix)\b"
)


@pytest.fixture
def synced(tmp_path, db_url, monkeypatch):
    for name, value in sandbox_secrets().items():
        monkeypatch.setenv(name, value)
    shutil.copy(MAPPING_EXAMPLE, tmp_path / "mapping.toml")
    with running_sandboxes() as (netsuite, avatax):
        path = tmp_path / "finsync.toml"
        path.write_text(
            sandbox_config(billing_url=db_url, state_url=db_url, netsuite=netsuite, avatax=avatax)
        )
        engine = SyncEngine(load_config(path), actor="test")
        upgrade(engine.state)
        dataset = build_independent_billing(engine.billing)
        yield engine, dataset, netsuite, avatax
        engine.close()


def test_every_broken_record_gets_one_message_with_its_field_and_fix(synced):
    engine, dataset, _, _ = synced
    with engine.billing.connect() as conn:
        verdicts = validate_billing(BillingReader(conn), entities=engine.tables.entities)

    assert {(r.kind, r.record_id) for r in verdicts.rejections} == set(dataset.rejected)
    for rejection in verdicts.rejections:
        fields = [p.field for p in rejection.problems]
        assert dataset.rejected[(rejection.kind, rejection.record_id)] in fields, rejection
        assert rejection.message.startswith(rejection.label + ": ")
        for problem in rejection.problems:
            assert FIXES.search(problem.message), problem
        assert not re.search(r"\.\d*0000\b", rejection.message), rejection.message  # 12.000000


def test_the_sandboxes_hold_exactly_the_valid_records(synced):
    engine, dataset, netsuite, avatax = synced

    engine.sync()

    expected = dataset.netsuite_expectation()
    invoices = {r["tranId"]: r["total"] for r in netsuite.records("invoice")}
    assert invoices == expected["invoice"]
    notes = {r["tranId"]: r["total"] for r in netsuite.records("creditMemo")}
    assert notes == expected["creditMemo"]
    payments = {r["tranId"]: r["payment"] for r in netsuite.records("customerPayment")}
    assert payments == expected["customerPayment"]  # no failed payment, no broken one
    assert "P-1008" not in payments
    customers = {r["entityId"] for r in netsuite.records("customer")}
    assert customers == set(expected["customer"])
    sales = {
        d["code"]: (d["totalAmount"], d["totalTax"])
        for d in avatax.transactions()
        if d["type"] == "SalesInvoice" and d["status"] == "Committed"
    }
    want = {
        r["number"]: (r["subtotal"], r["tax_total"])
        for r in dataset.valid("invoices")
        if r["status"] != "void"
    }
    assert {k: (Decimal(a), Decimal(t)) for k, (a, t) in sales.items()} == want
