"""The sync engine end to end: billing rows -> ledger -> scripted target (SQLite, PostgreSQL)."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from connectors.scripted import ScriptedConnector
from sync.engine import Selection
from sync.state import audit_log, cursors, ledger
from tests.builders import BillingBuilder
from tests.engine_support import Clock, make_engine, write_config


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def setup(tmp_path, db_url):
    return write_config(tmp_path, db_url)


@pytest.fixture
def engine(setup, clock):
    eng = make_engine(setup, clock)
    yield eng
    eng.close()


@pytest.fixture
def billing(engine):
    return BillingBuilder(engine.billing)


def target(engine) -> ScriptedConnector:
    connector = engine.connector("erp")
    assert isinstance(connector, ScriptedConnector)
    return connector


def records_by_external_id(engine) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for record in target(engine).records():
        assert record["external_id"] not in found, f"duplicate {record['external_id']}"
        found[record["external_id"]] = record
    return found


def statuses(engine) -> dict[tuple[str, str], str]:
    with engine.state.connect() as conn:
        rows = conn.execute(sa.select(ledger.c.kind, ledger.c.label, ledger.c.status))
        return {(kind, label): status for kind, label, status in rows}


def ledger_row(engine, label: str) -> dict:
    with engine.state.connect() as conn:
        return dict(conn.execute(sa.select(ledger).where(ledger.c.label == label)).mappings().one())


def test_first_sync_sends_every_record_in_dependency_order(engine, billing):
    c1 = billing.customer("ACME-1")
    c2 = billing.customer("ACME-2")
    inv1 = billing.invoice(
        c1,
        number="INV-1",
        lines=[
            {"quantity": "3", "unit_price": "99.99"},
            {"sku": "onboarding", "unit_price": "1500", "service_start": None, "service_end": None},
        ],
    )
    inv2 = billing.invoice(c2, number="INV-2")
    billing.payment(c1, "500.00", applications=[(inv1, "400.00")], reference="PAY-1")
    billing.credit_note(inv2, c2, "10.00", number="CN-1")

    summary = engine.sync()

    assert summary.ok
    erp = summary.targets[0]
    assert (erp.extracted.new, erp.extracted.failed) == (6, 0)
    assert (erp.pushed.sent, erp.pushed.created, erp.pushed.failed) == (6, 6, 0)
    stored = records_by_external_id(engine)
    assert set(stored) == {
        "finsync:cust:ACME-1",
        "finsync:cust:ACME-2",
        "finsync:inv:INV-1",
        "finsync:inv:INV-2",
        "finsync:pay:PAY-1",
        "finsync:cn:CN-1",
    }
    invoice = stored["finsync:inv:INV-1"]["payload"]
    # 3 x 99.99 = 299.97 at 7.25% = 21.75; 1500.00 at 7.25% = 108.75
    assert [line["amount"] for line in invoice["itemList"]] == ["299.97", "1500.00"]
    assert [line["tax1Amt"] for line in invoice["itemList"]] == ["21.75", "108.75"]
    payment = stored["finsync:pay:PAY-1"]["payload"]
    assert payment["payment"] == "500.00"
    assert [(a["doc"], a["amount"]) for a in payment["applyList"]] == [
        ({"externalId": "finsync:inv:INV-1"}, "400.00")
    ]
    # customers were written before their invoices, invoices before payments and credit notes
    order = [ext for op, exts in target(engine).calls if op == "send" for ext in exts]
    assert (
        order.index("finsync:cust:ACME-1")
        < order.index("finsync:inv:INV-1")
        < order.index("finsync:pay:PAY-1")
    )
    assert set(statuses(engine).values()) == {"synced"}
    assert ledger_row(engine, "invoice INV-1")["internal_id"] == str(
        stored["finsync:inv:INV-1"]["internal_id"]
    )


def test_second_sync_without_changes_sends_nothing(engine, billing):
    c1 = billing.customer()
    billing.invoice(c1)
    engine.sync()
    calls_before = len(target(engine).calls)

    summary = engine.sync()

    erp = summary.targets[0]
    assert erp.extracted.new == erp.extracted.changed == 0
    assert erp.pushed.sent == 0
    assert len(target(engine).calls) == calls_before


def test_edited_invoice_is_sent_again_as_an_update(engine, billing, clock):
    c1 = billing.customer()
    inv = billing.invoice(c1, number="INV-9", lines=[{"unit_price": "100.00"}])
    engine.sync()
    internal_id = ledger_row(engine, "invoice INV-9")["internal_id"]

    billing.set_line_amount(inv, 1, "120.00")
    clock.advance(60)
    summary = engine.sync()

    erp = summary.targets[0]
    assert (erp.extracted.changed, erp.pushed.sent, erp.pushed.updated) == (1, 1, 1)
    stored = records_by_external_id(engine)["finsync:inv:INV-9"]
    assert stored["payload"]["itemList"][0]["amount"] == "120.00"
    assert stored["payload"]["itemList"][0]["tax1Amt"] == "8.70"
    assert stored["writes"] == 2
    assert ledger_row(engine, "invoice INV-9")["internal_id"] == internal_id


def test_void_propagates(engine, billing, clock):
    c1 = billing.customer()
    inv = billing.invoice(c1, number="INV-V")
    engine.sync()

    billing.update_invoice(inv, status="void", voided_at=billing.now)
    clock.advance(60)
    engine.sync()

    stored = records_by_external_id(engine)["finsync:inv:INV-V"]
    assert stored["operation"] == "void"
    assert all(Decimal(line["amount"]) == 0 for line in stored["payload"]["itemList"])
    assert ledger_row(engine, "invoice INV-V")["status"] == "synced"


def test_late_commit_with_older_timestamp_is_not_missed(engine, billing):
    c1 = billing.customer()
    billing.invoice(c1, number="INV-A")
    engine.sync()
    cursor_time = billing.now
    # A row committed after the sync, stamped 2 minutes before the cursor (within look-back).
    billing.invoice(c1, number="INV-LATE", updated_at=cursor_time - timedelta(minutes=2))

    engine.sync()

    assert "finsync:inv:INV-LATE" in records_by_external_id(engine)


def test_rows_sharing_one_timestamp_across_pages_are_all_read(tmp_path, db_url, clock):
    setup = write_config(tmp_path, db_url, sync={"page_size": 2})
    engine = make_engine(setup, clock)
    billing = BillingBuilder(engine.billing)
    c1 = billing.customer()
    stamp = billing.tick()
    for n in range(7):
        billing.invoice(c1, number=f"INV-SAME-{n}", updated_at=stamp)

    engine.sync()

    stored = records_by_external_id(engine)
    assert {f"finsync:inv:INV-SAME-{n}" for n in range(7)} <= set(stored)
    with engine.state.connect() as conn:
        cursor = conn.execute(sa.select(cursors).where(cursors.c.kind == "invoice")).one()
    assert cursor.updated_at == stamp
    engine.close()


def test_retryable_failure_is_retried_later_and_then_synced(engine, billing, clock):
    c1 = billing.customer()
    billing.invoice(c1, number="INV-R")
    engine.sync(kinds=["customer"])
    target(engine).fail_next(1, error="retryable")

    summary = engine.sync(kinds=["invoice"])

    assert summary.targets[0].pushed.retrying == 1
    row = ledger_row(engine, "invoice INV-R")
    assert row["status"] == "retry"
    assert "503" in row["last_error"]
    delay = row["next_attempt_at"] - clock.now
    assert timedelta(seconds=15) <= delay <= timedelta(seconds=30)

    engine.sync(kinds=["invoice"])  # not due yet: nothing sent
    assert ledger_row(engine, "invoice INV-R")["status"] == "retry"
    clock.advance(31)
    engine.sync(kinds=["invoice"])
    assert ledger_row(engine, "invoice INV-R")["status"] == "synced"
    assert "finsync:inv:INV-R" in records_by_external_id(engine)


def test_record_goes_dead_after_max_attempts(engine, billing, clock):
    c1 = billing.customer()
    billing.invoice(c1, number="INV-D")
    engine.sync(kinds=["customer"])
    target(engine).fail_next(3, error="retryable")
    for _ in range(3):
        engine.sync(kinds=["invoice"])
        clock.advance(3600)

    row = ledger_row(engine, "invoice INV-D")
    assert row["status"] == "dead"
    assert row["attempts"] == 3
    assert "gave up after 3 attempts" in row["last_error"]


def test_rejected_record_fails_with_the_systems_message_and_the_rest_sync(engine, billing):
    c1 = billing.customer()
    for n in range(4):
        billing.invoice(c1, number=f"INV-B{n}")
    engine.sync(kinds=["customer"])
    target(engine).reject("finsync:inv:INV-B2", "Invalid tax code reference key 99")

    summary = engine.sync()

    assert summary.targets[0].pushed.failed == 1
    row = ledger_row(engine, "invoice INV-B2")
    assert row["status"] == "failed"
    assert "Invalid tax code reference key 99" in row["last_error"]
    assert {s for (k, label), s in statuses(engine).items() if label != "invoice INV-B2"} == {
        "synced"
    }


def test_timeout_after_commit_is_looked_up_not_sent_twice(tmp_path, db_url, clock):
    setup = write_config(tmp_path, db_url, mode="create")  # every send would duplicate
    engine = make_engine(setup, clock)
    billing = BillingBuilder(engine.billing)
    c1 = billing.customer()
    billing.invoice(c1, number="INV-T")
    engine.sync(kinds=["customer"])
    target(engine).timeout_after_commit(1)

    engine.sync(kinds=["invoice"])
    row = ledger_row(engine, "invoice INV-T")
    assert (row["status"], row["error_kind"]) == ("retry", "unknown")
    clock.advance(3600)
    summary = engine.sync(kinds=["invoice"])

    assert summary.targets[0].pushed.recovered == 1
    copies = [r for r in target(engine).records() if r["external_id"] == "finsync:inv:INV-T"]
    assert len(copies) == 1
    assert ledger_row(engine, "invoice INV-T")["status"] == "synced"
    assert ledger_row(engine, "invoice INV-T")["internal_id"] == str(copies[0]["internal_id"])
    engine.close()


def test_invoice_of_a_rejected_customer_is_rejected_naming_it(engine, billing):
    c1 = billing.customer("BAD-0", name="")  # breaks the billing contract: no name
    billing.invoice(c1, number="INV-R")

    engine.sync()

    assert "name" in ledger_row(engine, "customer BAD-0")["last_error"]
    invoice = ledger_row(engine, "invoice INV-R")
    assert invoice["status"] == "failed"
    assert "customer BAD-0 is rejected" in invoice["last_error"]
    assert "finsync:inv:INV-R" not in records_by_external_id(engine)


def test_invoice_waits_for_its_customer_and_names_it(engine, billing, clock):
    c1 = billing.customer("BAD-1", country="ZZ")  # valid billing, but NetSuite has no ZZ
    billing.invoice(c1, number="INV-W")

    engine.sync()

    customer = ledger_row(engine, "customer BAD-1")
    assert customer["status"] == "failed"
    assert "country" in customer["last_error"]
    invoice = ledger_row(engine, "invoice INV-W")
    assert invoice["status"] == "pending"
    assert "waiting for customer BAD-1 (failed)" in invoice["last_error"]
    assert "finsync:inv:INV-W" not in records_by_external_id(engine)


def test_dry_run_writes_nothing(engine, billing):
    c1 = billing.customer()
    billing.invoice(c1)

    summary = engine.sync(dry_run=True)

    assert summary.targets[0].extracted.new == 2
    with engine.state.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(ledger)).scalar() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(cursors)).scalar() == 0
    assert target(engine).records() == []


def test_resync_after_mapping_fix_syncs_and_is_audited(setup, engine, billing, clock):
    c1 = billing.customer()
    billing.invoice(c1, number="INV-SKU", lines=[{"sku": "cdn-pro"}])
    engine.sync()
    row = ledger_row(engine, "invoice INV-SKU")
    assert row["status"] == "failed"
    assert "no item mapped for SKU 'cdn-pro'" in row["last_error"]

    setup.mapping_path.write_text(
        setup.mapping_path.read_text().replace(
            'plat-pro = "102"', 'plat-pro = "102"\ncdn-pro = "105"'
        )
    )
    fixed = make_engine(setup, clock)
    preview = fixed.resync(Selection(statuses=("failed",)), reason="preview", dry_run=True)
    assert [(i.label, i.outcome) for i in preview.items] == [("invoice INV-SKU", "queued")]
    assert ledger_row(fixed, "invoice INV-SKU")["status"] == "failed"  # dry run changed nothing

    result = fixed.resync(
        Selection(numbers=("INV-SKU",)), reason="added cdn-pro item", actor="jane@finance"
    )
    fixed.push("erp")

    assert result.queued == 1
    assert ledger_row(fixed, "invoice INV-SKU")["status"] == "synced"
    stored = records_by_external_id(fixed)["finsync:inv:INV-SKU"]
    assert stored["payload"]["itemList"][0]["item"] == {"internalId": "105"}
    with fixed.state.connect() as conn:
        entry = conn.execute(sa.select(audit_log)).mappings().one()
    assert (entry["actor"], entry["action"], entry["reason"]) == (
        "jane@finance",
        "resync",
        "added cdn-pro item",
    )
    details = json.loads(entry["details"])
    assert details["selection"] == {"numbers": ["INV-SKU"]}
    assert details["queued"] == 1
    assert details["records"][0]["label"] == "invoice INV-SKU"
    fixed.close()


def test_resync_of_a_synced_record_sends_it_again_with_its_diff(engine, billing, clock):
    c1 = billing.customer("ACME-9")
    inv = billing.invoice(c1, number="INV-DIFF", lines=[{"unit_price": "100.00"}])
    engine.sync()
    billing.set_line_amount(inv, 1, "90.00")

    preview = engine.resync(
        Selection(customer="ACME-9", kinds=("invoice",)), reason="x", dry_run=True
    )

    changes = {c.path: (c.old, c.new) for c in preview.items[0].changes}
    assert changes["itemList[0].amount"] == ("100.00", "90.00")
    engine.resync(Selection(customer="ACME-9"), reason="customer disputed amounts")
    summary_counts = engine.push("erp")
    assert summary_counts.sent == 2  # the customer and the invoice, both re-sent
    assert (
        records_by_external_id(engine)["finsync:inv:INV-DIFF"]["payload"]["itemList"][0]["amount"]
        == "90.00"
    )


def test_a_full_batch_of_waiting_documents_does_not_hold_up_the_rest(tmp_path, db_url, clock):
    setup = write_config(tmp_path, db_url, extra="batch_size = 2")
    engine = make_engine(setup, clock)
    billing = BillingBuilder(engine.billing)
    bad = billing.customer("BAD-9", country="ZZ")  # fails to map: its invoices wait
    good = billing.customer("GOOD-9")
    for n in range(5):
        billing.invoice(bad, number=f"INV-WAIT-{n}")
    for n in range(3):
        billing.invoice(good, number=f"INV-GO-{n}")

    engine.sync()

    stored = records_by_external_id(engine)
    assert {f"finsync:inv:INV-GO-{n}" for n in range(3)} <= set(stored)
    assert not any(e.startswith("finsync:inv:INV-WAIT") for e in stored)
    assert {ledger_row(engine, f"invoice INV-WAIT-{n}")["status"] for n in range(5)} == {"pending"}
    engine.close()


def test_full_pages_validate_beside_extraction_and_every_rejection_holds(
    tmp_path, db_url, clock, monkeypatch
):
    # Full pages: on PostgreSQL billing validation runs in a worker process while the pages
    # are read and mapped; the pages wait for its verdicts before anything is enqueued.
    import sync.verdicts
    from sync.verdicts import BackgroundValidation

    answers: list[object] = []

    class Watched(BackgroundValidation):
        def result(self):
            answers.append(super().result())
            return answers[-1]

    monkeypatch.setattr(sync.verdicts, "BackgroundValidation", Watched)
    setup = write_config(tmp_path, db_url, sync={"page_size": 2})
    engine = make_engine(setup, clock)
    billing = BillingBuilder(engine.billing)
    good = billing.customer("GOOD-0")
    bad = billing.customer("BAD-0", name="")  # breaks the billing contract: no name
    for n in range(5):
        billing.invoice(good, number=f"INV-G{n}")
    billing.invoice(bad, number="INV-X")

    engine.sync()

    assert "name" in ledger_row(engine, "customer BAD-0")["last_error"]
    invoice = ledger_row(engine, "invoice INV-X")
    assert invoice["status"] == "failed"
    assert "customer BAD-0 is rejected" in invoice["last_error"]
    stored = records_by_external_id(engine)
    assert "finsync:inv:INV-X" not in stored
    assert {f"finsync:inv:INV-G{n}" for n in range(5)} <= set(stored)
    assert statuses(engine)[("invoice", "invoice INV-G4")] == "synced"
    with engine.state.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(ledger)).scalar() == 8
    on_postgres = engine.billing.dialect.name == "postgresql"
    engine.close()
    # PostgreSQL: one worker answered; SQLite validates in-process.
    assert [a is not None for a in answers] == ([True] if on_postgres else [])


def test_validation_in_a_worker_gives_the_verdicts_of_validation_in_process(engine, billing):
    from billing.validation import validate_billing
    from sync.extract import BillingReader
    from sync.verdicts import BackgroundValidation

    c1 = billing.customer("BAD-2", name="")
    billing.invoice(c1, number="INV-Y")
    billing.invoice(billing.customer("OK-2"), number="INV-Z")
    with engine.billing.connect() as conn:
        here = validate_billing(BillingReader(conn), entities=engine.tables.entities)

    there = BackgroundValidation(engine.billing, engine.state, engine.tables.entities).result()

    assert there is not None
    assert [(r.kind, r.record_id, r.problems) for r in there.rejections] == [
        (r.kind, r.record_id, r.problems) for r in here.rejections
    ]
    assert {r.label for r in there.rejections} == {"customer BAD-2", "invoice INV-Y"}


def test_outcome_of_a_payload_changed_in_flight_keeps_what_was_sent(engine, billing, clock):
    from sync import ledger as outbox

    c1 = billing.customer()
    billing.invoice(c1, number="INV-F1")
    billing.invoice(c1, number="INV-F2")
    engine.sync(kinds=["customer"])
    engine.extract("erp", ["invoice"])
    with engine.state.begin() as conn:
        batch = outbox.claim(
            conn,
            target="erp",
            kind="invoice",
            worker="w",
            now=clock.now,
            limit=10,
            lease=timedelta(minutes=5),
            wait=timedelta(seconds=30),
        )
    sent = {c.document.label: c for c in batch.items}
    assert set(sent) == {"invoice INV-F1", "invoice INV-F2"}
    with engine.state.begin() as conn:  # billing changed INV-F2 while it was in flight
        conn.execute(
            ledger.update()
            .where(ledger.c.id == sent["invoice INV-F2"].ledger_id)
            .values(payload='{"changed": true}', payload_hash="0" * 64)
        )
        outbox.record_successes(
            conn,
            [outbox.Success(c, f"id-{i}") for i, c in enumerate(batch.items)],
            now=clock.now,
            run_id=None,
        )

    first, second = ledger_row(engine, "invoice INV-F1"), ledger_row(engine, "invoice INV-F2")
    assert (first["status"], second["status"]) == ("synced", "pending")
    for row, claimed in ((first, sent["invoice INV-F1"]), (second, sent["invoice INV-F2"])):
        assert row["synced_hash"] == claimed.payload_hash
        assert row["synced_payload"] == claimed.payload_text
    assert second["payload"] == '{"changed": true}'
