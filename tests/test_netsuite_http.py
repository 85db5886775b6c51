"""Both NetSuite connectors over real HTTP (zeep + httpx, nothing patched) against the sandbox.

What a user relies on: documents land with exact amounts in every currency, with their
applications and references; outages, concurrency faults and lost answers end synced exactly
once; one bad record fails alone; the account's concurrency limit holds; wrong credentials are
an AuthError that never shows the secret; and the same billing data leaves the same records
whichever transport carried it.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from billing.generator import seed_billing
from billing.records import CreditNote
from connectors.netsuite_rest import NetSuiteRestConnector, NetSuiteRestSettings
from core.documents import Document
from core.errors import AuthError, OutcomeUnknownError, PermanentError, RetryableError
from finsync.config import Secret
from finsync.db import make_engine
from mappings import netsuite as ns
from sandbox.netsuite import NetSuiteSandbox, SandboxCredentials
from sync.extract import BillingReader
from tests.netsuite_records import (
    credit_note,
    customer,
    invoice,
    line,
    payment,
    tables,
    usd_invoice,
)
from tests.netsuite_sandbox_helpers import chain, rest, soap

D = Decimal
TRANSPORTS = pytest.mark.parametrize("make", [soap, rest], ids=["soap", "rest"])


@pytest.fixture
def sandbox():
    with NetSuiteSandbox().start() as sb:
        yield sb


@pytest.fixture
def connect(sandbox, request):
    def make(factory, **kw):
        connector = factory(sandbox, **kw)
        request.addfinalizer(connector.close)
        return connector

    return make


# ---- documents per currency -------------------------------------------------------------------


def _credit(inv, number: str, amount: str, tax: str) -> CreditNote:
    note = credit_note(nid=20 + inv.id, number=number, inv=inv)
    (li,) = note.lines
    return replace(
        note,
        lines=(replace(li, amount=D(amount), tax_amount=D(tax)),),
        subtotal=D(amount),
        tax_total=D(tax),
        total=D(amount) + D(tax),
    )


# currency -> (documents, expected: invoice lines, totals, credit, payment, applied, remaining)
def _case(currency: str) -> tuple[list[Document], dict[str, Any]]:
    t = tables()
    if currency == "USD":
        cust = customer()
        inv = usd_invoice(cust=cust)
        note = credit_note(inv=inv)
        pay = payment(cust=cust, amount="600.00", apps=((inv.id, inv.number, "586.66"),))
        expected = {
            "lines": [D("547.00"), D("1500.00")],
            "tax": [D("39.66"), D("108.75")],
            "total": D("2195.41"),
            "credit": D("1608.75"),
            "payment": D("600.00"),
            "applied": D("586.66"),
            "unapplied": D("13.34"),
            "remaining": D("0.00"),
        }
    elif currency == "JPY":
        cust = customer(2, "C-0002", entity="acme-jp", currency="JPY", name="Nakatomi KK")
        lines = (line(1, "plat-pro", "2", "29800", "1000", "58600", "0.10", "5860"),)
        inv = invoice(
            11, "INV-JP-1", lines=lines, cust=cust, entity="acme-jp", currency="JPY", memo=None
        )
        note = _credit(inv, "CN-JP-1", "10000", "1000")
        pay = payment(
            31,
            "PAY-JP-1",
            cust=cust,
            amount="60000",
            apps=((inv.id, inv.number, "53460"),),
            currency="JPY",
            entity="acme-jp",
        )
        expected = {
            "lines": [D("58600")],
            "tax": [D("5860")],
            "total": D("64460"),
            "credit": D("11000"),
            "payment": D("60000"),
            "applied": D("53460"),
            "unapplied": D("6540"),
            "remaining": D("0"),
        }
    else:
        cust = customer(3, "C-0003", entity="acme-kw", currency="KWD", name="Gulf Star WLL")
        lines = (line(1, "plat-pro", "3", "12.125", "0", "36.375", "0.05", "1.819"),)
        inv = invoice(
            12, "INV-KW-1", lines=lines, cust=cust, entity="acme-kw", currency="KWD", memo=None
        )
        note = _credit(inv, "CN-KW-1", "5.250", "0.263")
        pay = payment(
            32,
            "PAY-KW-1",
            cust=cust,
            amount="20.125",
            apps=((inv.id, inv.number, "20.125"),),
            currency="KWD",
            entity="acme-kw",
        )
        expected = {
            "lines": [D("36.375")],
            "tax": [D("1.819")],
            "total": D("38.194"),
            "credit": D("5.513"),
            "payment": D("20.125"),
            "applied": D("20.125"),
            "unapplied": D("0.000"),
            "remaining": D("12.556"),
        }
    docs = [
        ns.map_customer(cust, t),
        ns.map_invoice(inv, t, customer=cust),
        ns.map_credit_note(note, t, customer=cust),
        ns.map_payment(pay, t),
    ]
    return docs, expected


@TRANSPORTS
@pytest.mark.parametrize("currency", ["USD", "JPY", "KWD"])
def test_documents_land_exactly_with_applications(sandbox, connect, make, currency):
    docs, want = _case(currency)
    results = connect(make).send(docs)
    assert [r.ok for r in results] == [True] * 4, [r.error for r in results]
    cust_id, inv_id, memo_id, pay_id = (r.internal_id for r in results)

    held_customer = sandbox.get("customer", docs[0].external_id)
    assert held_customer["internalId"] == cust_id
    assert held_customer["currency"] == tables().currencies[currency]

    held_invoice = sandbox.get("invoice", docs[1].external_id)
    assert held_invoice["internalId"] == inv_id and held_invoice["entity"] == cust_id
    assert [li["amount"] for li in held_invoice["itemList"]] == want["lines"]
    assert [li["tax1Amt"] for li in held_invoice["itemList"]] == want["tax"]
    assert held_invoice["total"] == want["total"]
    assert held_invoice["amountRemaining"] == want["remaining"]
    assert held_invoice["tranId"] == docs[1].payload["tranId"]

    memo = sandbox.get("creditMemo", docs[2].external_id)
    assert memo["internalId"] == memo_id
    assert memo["entity"] == cust_id and memo["createdFrom"] == inv_id
    assert memo["total"] == want["credit"] == memo["applied"]
    assert memo["applyList"] == [{"apply": True, "doc": inv_id, "amount": want["credit"]}]

    paid = sandbox.get("customerPayment", docs[3].external_id)
    assert paid["internalId"] == pay_id and paid["customer"] == cust_id
    assert paid["payment"] == want["payment"]
    assert paid["applyList"] == [{"apply": True, "doc": inv_id, "amount": want["applied"]}]
    assert paid["unapplied"] == want["unapplied"]
    assert paid["autoApply"] is False


@TRANSPORTS
def test_mixed_batch_goes_out_in_dependency_order(sandbox, connect, make):
    docs = chain()
    results = connect(make).send(list(reversed(docs)))  # payment first, customer last
    assert [r.ok for r in results] == [True] * 4, [r.error for r in results]
    # No record was refused on the way (a payment before its invoice would be).
    assert all(not e["errors"] for e in sandbox.request_log)
    held = sandbox.get("customerPayment", docs[3].external_id)
    assert held["applyList"][0]["doc"] == sandbox.get("invoice", docs[1].external_id)["internalId"]


@TRANSPORTS
def test_payment_applies_by_the_internal_id_the_ledger_holds_without_a_lookup(
    sandbox, connect, make
):
    docs = chain()
    connector = connect(make)
    written = connector.send(docs[:3])  # customer, invoice, credit memo
    assert all(r.ok for r in written), [r.error for r in written]
    invoice_id = written[1].internal_id
    requests_before = len(sandbox.request_log)

    (result,) = connector.send([replace(docs[3], known_ids={docs[1].external_id: invoice_id})])

    assert result.ok, result.error
    # One write request and nothing else: the invoice was not looked up.
    assert len(sandbox.request_log) == requests_before + 1
    held = sandbox.get("customerPayment", docs[3].external_id)
    assert held["applyList"][0]["doc"] == invoice_id
    assert held["applyList"][0]["amount"] == Decimal(docs[3].payload["applyList"][0]["amount"])


@TRANSPORTS
def test_failed_dependency_holds_back_its_dependents(sandbox, connect, make):
    docs = chain()
    sandbox.reject_external_id(docs[1].external_id, "USER_ERROR", "Invoice refused for the test.")
    results = connect(make).send(docs)
    assert [r.ok for r in results] == [True, False, False, False]
    assert results[1].error.code == "USER_ERROR"
    assert isinstance(results[1].error, PermanentError)
    for held_back in results[2:]:
        assert isinstance(held_back.error, RetryableError)
        assert held_back.error.code == "DEPENDENCY_FAILED"
    assert sandbox.count("creditMemo") == sandbox.count("customerPayment") == 0
    # Once the invoice is accepted, a plain re-send syncs the rest.
    sandbox.reset()
    assert all(r.ok for r in connect(make).send(docs))


# ---- faults -----------------------------------------------------------------------------------


def _synced_once(sandbox: NetSuiteSandbox) -> None:
    counts = {t: sandbox.count(t) for t in ("customer", "invoice", "creditMemo", "customerPayment")}
    assert counts == {"customer": 1, "invoice": 1, "creditMemo": 1, "customerPayment": 1}


@TRANSPORTS
def test_503_burst_is_retried_and_ends_synced(sandbox, connect, make):
    sandbox.fail_next(503, times=3)
    results = connect(make).send(chain())
    assert all(r.ok for r in results), [r.error for r in results]
    _synced_once(sandbox)
    assert [e["status"] for e in sandbox.request_log].count(503) == 3


@TRANSPORTS
def test_concurrency_faults_are_retried_and_end_synced(sandbox, connect, make):
    sandbox.concurrency_fault_next(times=3)
    results = connect(make).send(chain())
    assert all(r.ok for r in results), [r.error for r in results]
    _synced_once(sandbox)
    refused = [e for e in sandbox.request_log if e["detail"] == "scripted concurrency fault"]
    assert len(refused) == 3


@TRANSPORTS
@pytest.mark.parametrize("delay", [None, 1.5], ids=["dropped", "held"])
def test_timeout_after_commit_is_not_resent_and_a_lookup_finds_it(sandbox, connect, make, delay):
    connector = connect(make, timeout_seconds=0.5)
    customer_doc, invoice_doc = chain()[:2]
    assert connector.send([customer_doc])[0].ok
    sandbox.timeout_after_commit(times=1, delay=delay)
    try:
        (result,) = connector.send([invoice_doc])
    except OutcomeUnknownError:  # SOAP: the whole upsertList went unanswered
        pass
    else:  # REST: one request per record, so the record's own result says so
        assert not result.ok
        assert isinstance(result.error, OutcomeUnknownError)
    held = sandbox.get("invoice", invoice_doc.external_id)
    assert sandbox.count("invoice") == 1
    # The push engine looks the write up before any resend; the look-up finds it.
    assert connector.lookup([invoice_doc]) == {invoice_doc.external_id: held["internalId"]}
    writes = [
        e["operation"]
        for e in sandbox.request_log
        if e["operation"] in ("upsertList", "upsert customer", "upsert invoice")
    ]
    assert len(writes) == 2  # the customer and the unanswered invoice write: no blind resend


@TRANSPORTS
def test_rejected_record_leaves_the_rest_of_its_batch_synced(sandbox, connect, make):
    t = tables()
    docs = [ns.map_customer(customer(i, f"C-{i:04d}"), t) for i in range(1, 6)]
    sandbox.reject_external_id(docs[2].external_id, "USER_ERROR", "Duplicate customer name.")
    results = connect(make).send(docs)
    assert [r.ok for r in results] == [True, True, False, True, True]
    assert isinstance(results[2].error, PermanentError)
    assert "Duplicate customer name." in results[2].error.message
    assert "C-0003" in results[2].error.message  # names the record
    held = {c["externalId"] for c in sandbox.records("customer")}
    assert held == {d.external_id for i, d in enumerate(docs) if i != 2}


@TRANSPORTS
def test_threads_sending_at_once_stay_within_the_limit(make):
    limit = 3
    with NetSuiteSandbox(concurrency_limit=limit).start() as sb:
        sb.slow(0.02)  # every request stays in flight a while
        connector = make(sb, concurrency=limit)
        t = tables()
        batches = [
            [ns.map_customer(customer(100 * b + i, f"C-{b}-{i}"), t) for i in range(8)]
            for b in range(6)
        ]
        outcomes: list[list[bool]] = []
        lock = threading.Lock()

        def push(batch: list[Document]) -> None:
            for start in range(0, len(batch), 2):
                results = connector.send(batch[start : start + 2])
                with lock:
                    outcomes.append([r.ok for r in results])

        threads = [threading.Thread(target=push, args=(b,)) for b in batches]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        connector.close()
        assert all(all(o) for o in outcomes) and len(outcomes) == 24
        assert sb.count("customer") == 48
        assert sb.max_in_flight <= limit
        assert not [e for e in sb.request_log if "concurrency" in e["detail"]]


# ---- credentials ------------------------------------------------------------------------------


def _rest_tba_wrong(sb: NetSuiteSandbox) -> tuple[NetSuiteRestConnector, str]:
    c = SandboxCredentials.demo()
    wrong = "wrong-TOKEN-secret-42"
    settings = NetSuiteRestSettings(
        account=sb.account,
        base_url=sb.url,
        auth="tba",
        consumer_key=Secret(c.consumer_key),
        consumer_secret=c.consumer_secret,
        token_id=Secret(c.token_id),
        token_secret=Secret(wrong),
        backoff_seconds=0.01,
    )
    return NetSuiteRestConnector(settings), wrong


def _rest_oauth2_wrong_key(sb: NetSuiteSandbox) -> tuple[NetSuiteRestConnector, str]:
    c = SandboxCredentials.demo()
    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    settings = NetSuiteRestSettings(
        account=sb.account,
        base_url=sb.url,
        auth="oauth2",
        client_id=c.client_id,
        certificate_id=c.certificate_id,
        algorithm="ES256",
        private_key=Secret(pem),
        backoff_seconds=0.01,
    )
    return NetSuiteRestConnector(settings), pem.splitlines()[1]


def _soap_wrong(sb: NetSuiteSandbox) -> tuple[Any, str]:
    wrong = "not-the-RIGHT-secret"
    return soap(sb, secret=wrong), wrong


@pytest.mark.parametrize(
    "wrong", [_soap_wrong, _rest_tba_wrong, _rest_oauth2_wrong_key], ids=["soap", "tba", "oauth2"]
)
def test_wrong_secret_is_an_auth_error_without_the_secret(sandbox, wrong):
    connector, secret = wrong(sandbox)
    with pytest.raises(AuthError) as err:
        connector.send(chain()[:1])
    connector.close()
    for text in (str(err.value), repr(err.value), err.value.message):
        assert secret not in text
    assert sandbox.count("customer") == 0
    refused = [e for e in sandbox.request_log if e["status"] in (400, 401, 500)]
    assert len(refused) == 1  # refused credentials are not retried


# ---- the same billing data over SOAP and over REST --------------------------------------------

KINDS = ("customer", "invoice", "credit_note", "payment")
RECORD_TYPES = ("customer", "invoice", "creditMemo", "customerPayment")


def _seeded_documents(path) -> dict[str, list[Document]]:
    engine = make_engine(f"sqlite:///{path}")
    seed_billing(engine, customers=6, months=3, seed=7)
    t = tables()
    docs: dict[str, list[Document]] = {kind: [] for kind in KINDS}
    with engine.connect() as conn:
        reader = BillingReader(conn)
        for kind in KINDS:
            for page in reader.changes(kind, None, lookback=timedelta(0), page_size=500):
                for record in page.records:
                    if kind == "customer":
                        doc = ns.map_customer(record, t)
                    elif kind == "invoice":
                        doc = ns.map_invoice(record, t, customer=page.customers[record.customer_id])
                    elif kind == "credit_note":
                        doc = ns.map_credit_note(
                            record, t, customer=page.customers[record.customer_id]
                        )
                    else:
                        doc = ns.map_payment(record, t)
                    docs[kind].append(doc)
    engine.dispose()
    return docs


def _normalized(sb: NetSuiteSandbox) -> dict[str, list[dict[str, Any]]]:
    """Records with references to our own records by external id (internal ids depend on the
    order records were created in, which parallel REST requests do not fix)."""
    external = {
        (t, r["internalId"]): r["externalId"]
        for t in ("customer", "invoice")
        for r in sb.records(t)
    }
    out = {}
    for record_type in RECORD_TYPES:
        records = []
        for record in sb.records(record_type):
            record = {k: v for k, v in record.items() if k != "internalId"}
            for key in ("entity", "customer"):
                if key in record:
                    record[key] = external[("customer", record[key])]
            if "createdFrom" in record:
                record["createdFrom"] = external[("invoice", record["createdFrom"])]
            if "applyList" in record:
                record["applyList"] = [
                    {**li, "doc": external[("invoice", li["doc"])]} for li in record["applyList"]
                ]
            records.append(record)
        out[record_type] = sorted(records, key=lambda r: r["externalId"])
    return out


def test_same_billing_data_leaves_identical_records_over_soap_and_rest(tmp_path):
    docs = _seeded_documents(tmp_path / "billing.db")
    currencies = {d.payload["currency"]["internalId"] for d in docs["invoice"]}
    assert {"1", "7", "12"} <= currencies  # USD, JPY and KWD among them
    held, failures = {}, {}
    for name, make in (("soap", soap), ("rest", rest)):
        with NetSuiteSandbox().start() as sb:
            connector = make(sb)
            failed = {}
            for kind in KINDS:  # as the sync engine sends them
                batch = docs[kind]
                for start in range(0, len(batch), connector.max_batch):
                    chunk = batch[start : start + connector.max_batch]
                    for doc, result in zip(chunk, connector.send(chunk), strict=True):
                        if not result.ok:
                            failed[doc.external_id] = result.error.code
            connector.close()
            held[name], failures[name] = _normalized(sb), failed
    assert held["soap"] == held["rest"]
    assert failures["soap"] == failures["rest"]
    assert len(held["soap"]["customer"]) == len(docs["customer"])
    assert len(held["soap"]["invoice"]) == len(docs["invoice"])
    assert len(held["soap"]["creditMemo"]) == len(docs["credit_note"])
    # The generator issues credit notes on invoices already paid (and refunds them): those
    # credits apply only what the invoice still owed, so every payment still fits.
    assert failures["soap"] == {}
    assert len(held["soap"]["customerPayment"]) == len(docs["payment"])
