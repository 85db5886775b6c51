"""The NetSuite sandbox over SOAP, on real HTTP: TBA, upsertList, getList, search, the rules."""

from __future__ import annotations

import time
from datetime import date
from decimal import Decimal

import pytest

from sandbox.netsuite import NetSuiteSandbox, SandboxCredentials
from tests.test_sandbox_netsuite_helpers import (
    call,
    customer,
    envelope,
    fault_of,
    invoice,
    journal,
    passport_xml,
    payment,
    post,
    ref,
    upsert,
)


@pytest.fixture
def ns():
    with NetSuiteSandbox().start() as sandbox:
        yield sandbox


def _upsert(ns: NetSuiteSandbox, *records: str) -> list[dict[str, str]]:
    return upsert(ns.soap_endpoint, ns.credentials, records)


# ---- token-based authentication ------------------------------------------------------------


def test_valid_token_passport_is_accepted(ns):
    results = _upsert(ns, customer("C-1"))
    assert results[0]["isSuccess"] == "true"
    assert results[0]["type"] == "customer"
    assert ns.count("customer") == 1


@pytest.mark.parametrize(
    "passport",
    [
        {"account": "1234567_sb1"},  # the classic: realm in the wrong case
        {"account": "7654321_SB1"},
        {"timestamp": int(time.time()) - 600},
        {
            "sign_with": SandboxCredentials(
                consumer_key="finsync-demo-consumer-key",
                consumer_secret="wrong-secret",
                token_id="finsync-demo-token-id",
                token_secret="finsync-demo-token-secret",
                client_id="x",
                certificate_id="x",
                public_key_pem="",
            )
        },
    ],
    ids=["account-lower-case", "other-account", "stale-timestamp", "wrong-secret"],
)
def test_bad_token_passport_is_an_invalid_login_fault(ns, passport):
    header = passport_xml(ns.credentials, **passport)
    status, root = post(
        ns.soap_endpoint, envelope(f"<msgs:upsertList>{customer('C-1')}</msgs:upsertList>", header)
    )
    assert status == 500
    assert fault_of(root) == (
        "invalidCredentialsFault",
        "INVALID_LOGIN_ATTEMPT",
        "Invalid login attempt.",
    )
    assert ns.count("customer") == 0
    assert ns.request_log[-1]["detail"].startswith("auth refused")


def test_reused_nonce_is_refused(ns):
    body = f"<msgs:upsertList>{customer('C-1')}</msgs:upsertList>"
    header = passport_xml(ns.credentials, nonce="fixed-nonce-123")
    first, _ = post(ns.soap_endpoint, envelope(body, header))
    second, root = post(ns.soap_endpoint, envelope(body, header))
    assert (first, second) == (200, 500)
    assert fault_of(root)[1] == "INVALID_LOGIN_ATTEMPT"


def test_missing_passport_asks_for_login(ns):
    status, root = post(
        ns.soap_endpoint, envelope(f"<msgs:upsertList>{customer('C-1')}</msgs:upsertList>")
    )
    assert status == 500
    assert fault_of(root)[:2] == ("invalidSessionFault", "WS_LOG_IN_REQD")


def test_request_log_holds_no_secret(ns):
    _upsert(ns, customer("C-1"))
    text = repr(ns.request_log) + repr(ns.credentials) + repr(ns)
    assert "finsync-demo-consumer-secret" not in text
    assert "finsync-demo-token-secret" not in text


# ---- upsert semantics ----------------------------------------------------------------------


def test_upsert_creates_then_updates_the_same_record(ns):
    first = _upsert(ns, customer("C-1"), invoice("INV-1", "C-1", [("101", "100.00")]))
    second = _upsert(ns, invoice("INV-1", "C-1", [("101", "80.00"), ("102", "5.50")]))
    assert [r["isSuccess"] for r in first + second] == ["true"] * 3
    assert second[0]["internalId"] == first[1]["internalId"]
    assert ns.count("invoice") == 1
    stored = ns.get("invoice", "INV-1")
    assert stored["internalId"] == first[1]["internalId"]
    assert [line["amount"] for line in stored["itemList"]] == [Decimal("80.00"), Decimal("5.50")]
    assert stored["total"] == Decimal("85.50")
    assert stored["entity"] == first[0]["internalId"]
    assert stored["tranDate"] == date(2024, 3, 15)


def test_internal_id_in_an_upsert_is_refused(ns):
    record = customer("C-1").replace('externalId="C-1"', 'externalId="C-1" internalId="5"')
    result = _upsert(ns, record)[0]
    assert result["isSuccess"] == "false"
    assert result["code"] == "USER_ERROR"
    assert ns.count("customer") == 0


def test_one_bad_record_does_not_fail_its_batch(ns):
    results = _upsert(
        ns,
        customer("C-1"),
        invoice("INV-1", "C-1"),
        invoice("INV-2", "C-1", [("999", "10.00")]),
        invoice("INV-3", "C-1"),
    )
    assert [r["isSuccess"] for r in results] == ["true", "true", "false", "true"]
    assert results[2]["code"] == "INVALID_KEY_OR_REF"
    assert results[2]["message"] == "Invalid item reference key 999."
    assert results[2]["externalId"] == "INV-2"
    assert {r["externalId"] for r in ns.records("invoice")} == {"INV-1", "INV-3"}


def test_more_than_100_records_is_a_record_count_fault(ns):
    records = "".join(customer(f"C-{i}") for i in range(101))
    status, root = post(
        ns.soap_endpoint,
        envelope(f"<msgs:upsertList>{records}</msgs:upsertList>", passport_xml(ns.credentials)),
    )
    assert status == 500
    assert fault_of(root)[:2] == ("exceededRecordCountFault", "MAX_RCRDS_EXCEEDED")
    assert ns.count("customer") == 0


# ---- references and reference data ---------------------------------------------------------


def test_invoice_for_an_unknown_customer_is_refused(ns):
    result = _upsert(ns, invoice("INV-1", "NOBODY"))[0]
    assert (result["code"], result["message"]) == (
        "INVALID_KEY_OR_REF",
        "Invalid entity reference key NOBODY.",
    )


@pytest.mark.parametrize(
    ("extra", "line_extra", "message"),
    [
        (ref("subsidiary", "sales", "9"), "", "Invalid subsidiary reference key 9."),
        (ref("currency", "sales", "3"), "", "Invalid currency reference key 3."),
        (ref("department", "sales", "99"), "", "Invalid department reference key 99."),
        ("", ref("department", "sales", "77"), "Invalid department reference key 77."),
        (ref("subsidiary", "sales", "2"), "", "Invalid subsidiary reference key 2 for entity 100."),
    ],
    ids=["subsidiary", "currency", "department", "line-department", "subsidiary-of-other-entity"],
)
def test_unknown_reference_data_is_refused(ns, extra, line_extra, message):
    _upsert(ns, customer("C-1"))
    result = _upsert(ns, invoice("INV-1", "C-1", extra=extra, line_extra=line_extra))[0]
    assert (result["code"], result["message"]) == ("INVALID_KEY_OR_REF", message)
    assert ns.count("invoice") == 0


def test_unknown_tax_code_is_refused(ns):
    _upsert(ns, customer("C-1"))
    record = invoice("INV-1", "C-1").replace('taxCode internalId="11"', 'taxCode internalId="13"')
    result = _upsert(ns, record)[0]
    assert result["message"] == "Invalid taxCode reference key 13."


def test_payment_applies_only_what_the_invoice_still_owes(ns):
    created = _upsert(ns, customer("C-1"), invoice("INV-1", "C-1", [("101", "100.00")]))
    doc = created[1]["internalId"]
    results = _upsert(
        ns,
        payment("PAY-1", "C-1", "60.00", [(doc, "60.00")]),
        payment("PAY-2", "C-1", "50.00", [(doc, "50.00")]),
        payment("PAY-3", "C-1", "40.00", [(doc, "40.00")]),
        payment("PAY-4", "C-1", "10.00", [("424242", "10.00")]),
    )
    assert [r["isSuccess"] for r in results] == ["true", "false", "true", "false"]
    assert results[1]["code"] == "INVALID_AMT"
    assert "exceeds its amount remaining (40.00)" in results[1]["message"]
    assert results[3]["code"] == "INVALID_KEY_OR_REF"
    assert ns.get("invoice", "INV-1")["amountRemaining"] == Decimal("0.00")
    # Re-sending a payment replaces its own application instead of counting it twice.
    again = _upsert(ns, payment("PAY-1", "C-1", "60.00", [(doc, "60.00")]))
    assert again[0]["isSuccess"] == "true"


def test_credit_memo_needs_an_existing_invoice(ns):
    _upsert(ns, customer("C-1"))
    memo = (
        '<msgs:record xsi:type="cust:CreditMemo" externalId="CM-1">'
        f"{ref('entity', 'cust', external='C-1')}<cust:tranDate>2024-03-16T00:00:00</cust:tranDate>"
        f"{ref('createdFrom', 'cust', external='INV-1')}"
        f"<cust:itemList><cust:item>{ref('item', 'cust', '101')}"
        "<cust:amount>30.00</cust:amount></cust:item></cust:itemList>"
        "</msgs:record>"
    )
    refused = _upsert(ns, memo)[0]
    assert refused["message"] == "Invalid createdFrom reference key INV-1."
    created = _upsert(ns, invoice("INV-1", "C-1"), memo)
    assert [r["isSuccess"] for r in created] == ["true", "true"]
    assert ns.get("creditMemo", "CM-1")["createdFrom"] == created[0]["internalId"]


# ---- periods, journals, amounts ------------------------------------------------------------


def test_closed_period_is_refused_until_reopened(ns):
    _upsert(ns, customer("C-1"))
    ns.close_period(date(2024, 3, 1))
    refused = _upsert(ns, invoice("INV-1", "C-1", tran_date="2024-03-15"))[0]
    assert refused["code"] == "TRAN_PERIOD_CLOSED"
    assert "Mar 2024" in refused["message"]
    # An open posting period given explicitly wins over the closed date's period.
    april = _upsert(
        ns,
        invoice("INV-1", "C-1", tran_date="2024-03-15", extra=ref("postingPeriod", "sales", "4")),
    )[0]
    assert april["isSuccess"] == "true"
    ns.open_period(date(2024, 3, 1))
    assert _upsert(ns, invoice("INV-2", "C-1", tran_date="2024-03-15"))[0]["isSuccess"] == "true"
    assert ns.get("invoice", "INV-2")["postingPeriod"] == "3"


def test_journal_entries_must_balance_and_feed_the_ledger(ns):
    results = _upsert(
        ns,
        journal("JE-1", [("2500", "debit", "100.00"), ("4000", "credit", "99.99")]),
        journal("JE-2", [("2500", "debit", "100.00"), ("4000", "credit", "100.00")]),
        journal(
            "JE-3",
            [("2510", "debit", "0.10"), ("2510", "debit", "0.20"), ("4100", "credit", "0.30")],
        ),
        journal("JE-4", [("9999", "debit", "1.00"), ("4000", "credit", "1.00")]),
    )
    assert [r["code"] for r in results] == ["JE_AMOUNTS_MUST_BALANCE", "", "", "INVALID_KEY_OR_REF"]
    assert ns.gl_balances("2024-03") == {
        ("2024-03", "2500"): Decimal("100.00"),
        ("2024-03", "4000"): Decimal("-100.00"),
        ("2024-03", "2510"): Decimal("0.30"),
        ("2024-03", "4100"): Decimal("-0.30"),
    }
    assert ns.gl_balances("2024-04") == {}


def test_amounts_are_exact_decimals_rounded_to_the_currency(ns):
    _upsert(
        ns, customer("C-US"), customer("C-JP", subsidiary="4"), customer("C-KW", subsidiary="5")
    )
    results = _upsert(
        ns,
        invoice("INV-US", "C-US", [("101", "0.10"), ("102", "0.20")]),
        invoice("INV-JP", "C-JP", [("101", "1500")]),
        invoice("INV-JP2", "C-JP", [("101", "1500.5")]),
        invoice("INV-KW", "C-KW", [("101", "12.345")]),
    )
    assert [r["isSuccess"] for r in results] == ["true", "true", "false", "true"]
    assert results[2]["code"] == "INVALID_AMT"
    assert ns.get("invoice", "INV-US")["total"] == Decimal("0.30")
    assert ns.get("invoice", "INV-JP")["currency"] == "7"
    assert ns.get("invoice", "INV-KW")["total"] == Decimal("12.345")


def test_dtd_and_entities_are_refused(ns):
    evil = (
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        + envelope(
            f"<msgs:upsertList>{customer('C-&e;')}</msgs:upsertList>", passport_xml(ns.credentials)
        ).split("?>", 1)[1]
    )
    status, _ = post(ns.soap_endpoint, evil)
    assert status == 500
    assert ns.count("customer") == 0


# ---- reads ---------------------------------------------------------------------------------


def test_get_list_by_external_and_internal_id(ns):
    created = _upsert(ns, customer("C-1"), invoice("INV-1", "C-1"))
    body = (
        "<msgs:getList>"
        '<msgs:baseRef xsi:type="core:RecordRef" type="invoice" externalId="INV-1"/>'
        '<msgs:baseRef xsi:type="core:RecordRef" type="customer" '
        f'internalId="{created[0]["internalId"]}"/>'
        '<msgs:baseRef xsi:type="core:RecordRef" type="invoice" externalId="INV-404"/>'
        "</msgs:getList>"
    )
    root = call(ns.soap_endpoint, ns.credentials, body)
    reads = root.findall(".//{urn:messages_2023_2.platform.webservices.netsuite.com}readResponse")
    statuses = [
        r.find("{urn:core_2023_2.platform.webservices.netsuite.com}status").get("isSuccess")
        for r in reads
    ]
    assert statuses == ["true", "true", "false"]
    record = reads[0].find("{urn:messages_2023_2.platform.webservices.netsuite.com}record")
    assert record.get("internalId") == created[1]["internalId"]
    total = record.findtext("{urn:sales_2023_2.transactions.webservices.netsuite.com}total")
    assert total == "100.00"
    assert "RCRD_DSNT_EXIST" in reads[2].findtext(
        ".//{urn:core_2023_2.platform.webservices.netsuite.com}code"
    )


def _search(ns, search_record: str, header: str = "") -> list:
    root = call(ns.soap_endpoint, ns.credentials, f"<msgs:search>{search_record}</msgs:search>")
    return root.findall(".//{urn:core_2023_2.platform.webservices.netsuite.com}record")


def test_search_transactions_and_customers_by_external_id(ns):
    _upsert(ns, customer("C-1"), customer("C-2"), invoice("INV-1", "C-1"), invoice("INV-2", "C-2"))
    found = _search(
        ns,
        '<msgs:searchRecord xsi:type="common:TransactionSearchBasic">'
        '<common:externalId operator="anyOf"><core:searchValue externalId="INV-2"/>'
        '<core:searchValue externalId="INV-9"/></common:externalId></msgs:searchRecord>',
    )
    assert [r.get("externalId") for r in found] == ["INV-2"]
    # Searches return body fields only by default, as NetSuite does.
    assert found[0].find("{urn:sales_2023_2.transactions.webservices.netsuite.com}itemList") is None
    customers = _search(
        ns,
        '<msgs:searchRecord xsi:type="rel:CustomerSearch"><rel:basic>'
        '<common:externalId operator="anyOf"><core:searchValue externalId="C-1"/>'
        "</common:externalId>"
        "</rel:basic></msgs:searchRecord>",
    )
    assert [r.get("externalId") for r in customers] == ["C-1"]


def test_search_accounting_periods_shows_closed_ones(ns):
    ns.close_period(date(2024, 2, 10))
    found = _search(
        ns,
        '<msgs:searchRecord xsi:type="common:AccountingPeriodSearchBasic">'
        "<common:closed><core:searchValue>true</core:searchValue></common:closed></msgs:searchRecord>",
    )
    acct = "{urn:accounting_2023_2.lists.webservices.netsuite.com}"
    assert [(r.findtext(f"{acct}periodName"), r.findtext(f"{acct}startDate")) for r in found] == [
        ("Feb 2024", "2024-02-01T00:00:00")
    ]
    everything = _search(ns, '<msgs:searchRecord xsi:type="acct:AccountingPeriodSearch"/>')
    assert len(everything) == 48
