"""The sandbox's own WSDL against NetSuite's real 2023_2 WSDL and XSDs (from specs_dir).

A zeep client built from either WSDL must produce messages the sandbox stores the same way,
and the sandbox's answers must validate against the real schemas.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import zeep
from lxml import etree

from sandbox.netsuite import NetSuiteSandbox
from sandbox.netsuite.server import WSDL_DIR
from tests.test_sandbox_netsuite_helpers import (
    CORE,
    MSGS,
    customer,
    envelope,
    invoice,
    passport_xml,
    post,
)

BINDING = "{urn:platform_2023_2.webservices.netsuite.com}NetSuiteBinding"
SALES = "urn:sales_2023_2.transactions.webservices.netsuite.com"
CUST = "urn:customers_2023_2.transactions.webservices.netsuite.com"
GEN = "urn:general_2023_2.transactions.webservices.netsuite.com"
REL = "urn:relationships_2023_2.lists.webservices.netsuite.com"


@functools.cache
def _zeep_client(wsdl: str) -> zeep.Client:
    # Loading NetSuite's WSDL takes most of a second: once per test session.
    return zeep.Client(wsdl)


@pytest.fixture
def real_client(specs_dir: Path) -> zeep.Client:
    return _zeep_client(str(specs_dir / "netsuite" / "netsuite.wsdl"))


@pytest.fixture
def own_client() -> zeep.Client:
    return _zeep_client(str(WSDL_DIR / "netsuite.wsdl"))


@pytest.fixture
def real_schema(specs_dir: Path) -> etree.XMLSchema:
    return _schema(specs_dir / "netsuite" / "xsd")


@functools.cache
def _schema(xsd: Path) -> etree.XMLSchema:
    imports = "".join(
        f'<xsd:import namespace="{ns}" schemaLocation="{(xsd / name).as_uri()}"/>'
        for ns, name in [
            (MSGS, "platform.messages.xsd"),
            ("urn:faults_2023_2.platform.webservices.netsuite.com", "platform.faults.xsd"),
            (SALES, "transactions.sales.xsd"),
            (CUST, "transactions.customers.xsd"),
            (GEN, "transactions.general.xsd"),
            (REL, "lists.relationships.xsd"),
            ("urn:accounting_2023_2.lists.webservices.netsuite.com", "lists.accounting.xsd"),
        ]
    )
    wrapper = f'<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema">{imports}</xsd:schema>'
    return etree.XMLSchema(etree.fromstring(wrapper, base_url=xsd.as_uri() + "/"))


def _passport(client: zeep.Client, ns: NetSuiteSandbox):
    creds = ns.credentials
    nonce, stamp = secrets.token_hex(10), str(int(time.time()))
    base = "&".join((ns.account, creds.consumer_key, creds.token_id, nonce, stamp))
    key = f"{creds.consumer_secret.reveal()}&{creds.token_secret.reveal()}".encode()
    sig = base64.b64encode(hmac.new(key, base.encode(), hashlib.sha256).digest()).decode()
    passport = client.get_type(f"{{{CORE}}}TokenPassport")
    signature = client.get_type(f"{{{CORE}}}TokenPassportSignature")
    return passport(
        account=ns.account,
        consumerKey=creds.consumer_key,
        token=creds.token_id,
        nonce=nonce,
        timestamp=stamp,
        signature=signature(sig, algorithm="HMAC-SHA256"),
    )


def _records(client: zeep.Client) -> list:
    """Customer, invoice, payment, credit memo and journal built from one WSDL's types."""
    t = client.get_type
    ref = t(f"{{{CORE}}}RecordRef")
    cust = t(f"{{{REL}}}Customer")(
        externalId="C-1",
        entityId="C-1",
        isPerson=False,
        companyName="Acme",
        email="ap@acme.test",
        subsidiary=ref(internalId="2"),
        currency=ref(internalId="4"),
    )
    item = t(f"{{{SALES}}}InvoiceItem")
    inv = t(f"{{{SALES}}}Invoice")(
        externalId="INV-1",
        entity=ref(externalId="C-1"),
        tranDate="2024-05-02T00:00:00",
        dueDate="2024-06-01T00:00:00",
        tranId="INV-1",
        memo="May",
        department=ref(internalId="10"),
        itemList=t(f"{{{SALES}}}InvoiceItemList")(
            item=[
                item(
                    item=ref(internalId="102"),
                    description="Pro plan",
                    quantity=Decimal("3"),
                    rate="33.33",
                    amount=Decimal("99.99"),
                    taxCode=ref(internalId="12"),
                    revRecStartDate="2024-05-01T00:00:00",
                    revRecEndDate="2024-05-31T00:00:00",
                    tax1Amt=Decimal("19.00"),
                ),
            ]
        ),
    )
    memo_item = t(f"{{{CUST}}}CreditMemoItem")
    memo = t(f"{{{CUST}}}CreditMemo")(
        externalId="CM-1",
        entity=ref(externalId="C-1"),
        tranDate="2024-05-10T00:00:00",
        createdFrom=ref(externalId="INV-1"),
        itemList=t(f"{{{CUST}}}CreditMemoItemList")(
            item=[
                memo_item(
                    item=ref(internalId="102"),
                    amount=Decimal("10.00"),
                    taxCode=ref(internalId="12"),
                ),
            ]
        ),
    )
    entry_line = t(f"{{{GEN}}}JournalEntryLine")
    entry = t(f"{{{GEN}}}JournalEntry")(
        externalId="JE-1",
        tranDate="2024-05-31T00:00:00",
        subsidiary=ref(internalId="2"),
        currency=ref(internalId="4"),
        memo="rev rec",
        lineList=t(f"{{{GEN}}}JournalEntryLineList")(
            line=[
                entry_line(
                    account=ref(internalId="2500"),
                    debit=Decimal("33.33"),
                    department=ref(internalId="20"),
                ),
                entry_line(
                    account=ref(internalId="4000"),
                    credit=Decimal("33.33"),
                    entity=ref(externalId="C-1"),
                ),
            ]
        ),
    )
    return [cust, inv, memo, entry]


def _payment(client: zeep.Client, invoice_id: str):
    t = client.get_type
    ref = t(f"{{{CORE}}}RecordRef")
    apply = t(f"{{{CUST}}}CustomerPaymentApply")
    return t(f"{{{CUST}}}CustomerPayment")(
        externalId="PAY-1",
        customer=ref(externalId="C-1"),
        payment=Decimal("50.00"),
        tranDate="2024-05-20T00:00:00",
        undepFunds=False,
        account=ref(internalId="1100"),
        applyList=t(f"{{{CUST}}}CustomerPaymentApplyList")(
            apply=[
                apply(apply=True, doc=int(invoice_id), amount=Decimal("50.00")),
            ]
        ),
    )


def _send(client: zeep.Client, ns: NetSuiteSandbox, records: list) -> etree._Element:
    message = client.create_message(
        client.create_service(BINDING, ns.soap_endpoint),
        "upsertList",
        record=records,
        _soapheaders={"tokenPassport": _passport(client, ns)},
    )
    response = httpx.post(
        ns.soap_endpoint,
        content=etree.tostring(message),
        headers={"Content-Type": "text/xml", "SOAPAction": "upsertList"},
    )
    assert response.status_code == 200
    root = etree.fromstring(response.content)
    statuses = [s.get("isSuccess") for s in root.iter(f"{{{CORE}}}status")]
    assert set(statuses) == {"true"}, response.text
    return root


def test_messages_from_both_wsdls_leave_identical_records(real_client, own_client):
    held = {}
    for name, client in (("real", real_client), ("own", own_client)):
        with NetSuiteSandbox().start() as ns:
            _send(client, ns, _records(client))
            _send(client, ns, [_payment(client, ns.get("invoice", "INV-1")["internalId"])])
            held[name] = {
                t: ns.records(t)
                for t in ("customer", "invoice", "creditMemo", "customerPayment", "journalEntry")
            }
    assert held["real"] == held["own"]
    invoice_held = held["own"]["invoice"][0]
    assert invoice_held["itemList"][0]["rate"] == Decimal("33.33")
    assert invoice_held["total"] == Decimal("118.99")
    # The credit memo has no applyList, so only the payment reduces what is owed.
    assert invoice_held["amountRemaining"] == Decimal("68.99")
    assert held["own"]["customerPayment"][0]["unapplied"] == Decimal("0.00")


def test_served_wsdl_loads_in_zeep_and_targets_the_sandbox():
    with NetSuiteSandbox().start() as ns:
        client = zeep.Client(ns.wsdl_url)
        service = client.bind("NetSuiteService", "NetSuitePort")
        assert service._binding_options["address"] == ns.soap_endpoint
        operations = set(client.wsdl.bindings[BINDING]._operations)
        assert {"upsertList", "getList", "search"} <= operations
        result = service.upsertList(
            record=[
                client.get_type(f"{{{REL}}}Customer")(
                    externalId="C-9",
                    companyName="Zeep Co",
                    subsidiary=client.get_type(f"{{{CORE}}}RecordRef")(internalId="1"),
                )
            ],
            _soapheaders={"tokenPassport": _passport(client, ns)},
        )
        assert result.body.writeResponseList.writeResponse[0].status.isSuccess is True
        assert ns.get("customer", "C-9")["companyName"] == "Zeep Co"


def _body_child(root: etree._Element) -> etree._Element:
    body = root.find("{http://schemas.xmlsoap.org/soap/envelope/}Body")
    return etree.fromstring(etree.tostring(body[0]))


def test_sandbox_answers_validate_against_the_real_schemas(real_schema, own_client):
    with NetSuiteSandbox().start() as ns:
        answers = [_send(own_client, ns, _records(own_client))]
        _, bad = post(
            ns.soap_endpoint,
            envelope(
                f"<msgs:upsertList>{customer('C-2')}{invoice('INV-X', 'NOBODY')}</msgs:upsertList>",
                passport_xml(ns.credentials),
            ),
        )
        answers.append(bad)
        for body in (
            "<msgs:getList>"
            '<msgs:baseRef xsi:type="core:RecordRef" type="invoice" externalId="INV-1"/>'
            '<msgs:baseRef xsi:type="core:RecordRef" type="journalEntry" externalId="JE-1"/>'
            '<msgs:baseRef xsi:type="core:RecordRef" type="creditMemo" externalId="CM-1"/>'
            '<msgs:baseRef xsi:type="core:RecordRef" type="customer" externalId="C-1"/>'
            '<msgs:baseRef xsi:type="core:RecordRef" type="invoice" externalId="none"/>'
            "</msgs:getList>",
            "<msgs:search>"
            '<msgs:searchRecord xsi:type="common:AccountingPeriodSearchBasic"/></msgs:search>',
        ):
            answers.append(post(ns.soap_endpoint, envelope(body, passport_xml(ns.credentials)))[1])
        ns.concurrency_fault_next()
        answers.append(
            post(ns.soap_endpoint, envelope("<msgs:getList/>", passport_xml(ns.credentials)))[1]
        )
    for root in answers:
        child = _body_child(root)
        if child.tag.endswith("Fault"):
            child = child.find("detail")[0]
        real_schema.assertValid(etree.ElementTree(child))
