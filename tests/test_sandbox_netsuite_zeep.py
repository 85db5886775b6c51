"""Plain zeep on Oracle's 2023_2 WSDL (../shared/specs) against the NetSuite SOAP sandbox.

No finsync code builds these messages: the client is zeep itself, and the tokenPassport follows
NetSuite's documentation (signature = base64(HMAC-SHA256(consumerSecret&tokenSecret,
account&consumerKey&tokenId&nonce&timestamp)), algorithm HMAC-SHA256). Each test asserts what
NetSuite documents for the operation. finsync's own SOAP connector is driven with the same WSDL
at the end, since that is the WSDL production loads.
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
from typing import Any

import pytest
import zeep
import zeep.exceptions

from sandbox.netsuite import NetSuiteSandbox
from sandbox.netsuite.server import WSDL_DIR
from tests.netsuite_sandbox_helpers import chain, soap

BINDING = "{urn:platform_2023_2.webservices.netsuite.com}NetSuiteBinding"
CORE = "urn:core_2023_2.platform.webservices.netsuite.com"
MSGS = "urn:messages_2023_2.platform.webservices.netsuite.com"
COMMON = "urn:common_2023_2.platform.webservices.netsuite.com"
REL = "urn:relationships_2023_2.lists.webservices.netsuite.com"
SALES = "urn:sales_2023_2.transactions.webservices.netsuite.com"


@functools.cache
def _client(wsdl: str) -> zeep.Client:
    return zeep.Client(wsdl)


@pytest.fixture
def oracle(specs_dir: Path) -> zeep.Client:
    return _client(str(specs_dir / "netsuite" / "netsuite.wsdl"))


@pytest.fixture
def ns():
    with NetSuiteSandbox().start() as sandbox:
        yield sandbox


class Session:
    """zeep's service bound to the sandbox endpoint, with a fresh passport on every call."""

    def __init__(self, client: zeep.Client, ns: NetSuiteSandbox) -> None:
        self.client = client
        self.ns = ns
        self.service = client.create_service(BINDING, ns.soap_endpoint)

    def type(self, namespace: str, name: str) -> Any:
        return self.client.get_type(f"{{{namespace}}}{name}")

    def passport(self) -> Any:
        creds, account = self.ns.credentials, self.ns.account
        nonce, timestamp = secrets.token_hex(16), str(int(time.time()))
        base = f"{account}&{creds.consumer_key}&{creds.token_id}&{nonce}&{timestamp}"
        key = f"{creds.consumer_secret.reveal()}&{creds.token_secret.reveal()}"
        digest = hmac.new(key.encode(), base.encode(), hashlib.sha256).digest()
        return self.type(CORE, "TokenPassport")(
            account=account,
            consumerKey=creds.consumer_key,
            token=creds.token_id,
            nonce=nonce,
            timestamp=timestamp,
            signature=self.type(CORE, "TokenPassportSignature")(
                base64.b64encode(digest).decode(), algorithm="HMAC-SHA256"
            ),
        )

    def call(self, operation: str, headers: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        soapheaders = {"tokenPassport": self.passport(), **(headers or {})}
        return getattr(self.service, operation)(**kwargs, _soapheaders=soapheaders).body

    def customer(self, external_id: str, **fields: Any) -> Any:
        ref = self.type(CORE, "RecordRef")
        values = {"entityId": external_id, "companyName": f"{external_id} Ltd", **fields}
        return self.type(REL, "Customer")(
            externalId=external_id, subsidiary=ref(internalId="1"), **values
        )

    def invoice(self, external_id: str, customer: str, amount: str) -> Any:
        ref = self.type(CORE, "RecordRef")
        line = self.type(SALES, "InvoiceItem")(
            item=ref(internalId="101"), amount=Decimal(amount), taxCode=ref(internalId="11")
        )
        return self.type(SALES, "Invoice")(
            externalId=external_id,
            entity=ref(externalId=customer),
            tranDate="2024-03-15T00:00:00",
            itemList=self.type(SALES, "InvoiceItemList")(item=[line]),
        )


@pytest.fixture(params=["oracle", "sandbox"])
def session(request, ns) -> Session:
    """Oracle's WSDL, and the sandbox's own (which the demo serves) for the same calls."""
    if request.param == "oracle":
        return Session(request.getfixturevalue("oracle"), ns)
    return Session(_client(str(WSDL_DIR / "netsuite.wsdl")), ns)


def test_upsert_list_creates_then_updates_by_external_id(session, ns):
    first = session.call(
        "upsertList", record=[session.customer("C-1"), session.invoice("INV-1", "C-1", "120.50")]
    )
    written = first.writeResponseList.writeResponse
    assert first.writeResponseList.status.isSuccess is True
    assert [w.status.isSuccess for w in written] == [True, True]
    assert [w.baseRef.externalId for w in written] == ["C-1", "INV-1"]
    again = session.call("upsertList", record=[session.customer("C-1", companyName="Renamed")])
    assert (
        again.writeResponseList.writeResponse[0].baseRef.internalId == written[0].baseRef.internalId
    )
    assert ns.count("customer") == 1
    assert ns.get("customer", "C-1")["companyName"] == "Renamed"
    assert ns.get("invoice", "INV-1")["total"] == Decimal("120.50")


def test_upsert_list_reports_a_bad_record_and_keeps_the_others(session, ns):
    body = session.call(
        "upsertList",
        record=[
            session.customer("C-1"),
            session.customer("C-2", companyName="n" * 500),
            session.invoice("INV-X", "C-404", "10.00"),
        ],
    )
    statuses = body.writeResponseList.writeResponse
    assert [s.status.isSuccess for s in statuses] == [True, False, False]
    codes = [s.status.statusDetail[0].code for s in statuses[1:]]
    assert codes == ["EXCEEDED_MAX_FIELD_LENGTH", "INVALID_KEY_OR_REF"]
    assert ns.count("customer") == 1 and ns.count("invoice") == 0


def test_get_list_reads_records_and_reports_missing_ones(session):
    session.call(
        "upsertList", record=[session.customer("C-1"), session.invoice("INV-1", "C-1", "99.99")]
    )
    ref = session.type(CORE, "RecordRef")
    body = session.call(
        "getList",
        baseRef=[
            ref(type="invoice", externalId="INV-1"),
            ref(type="customer", externalId="C-1"),
            ref(type="invoice", externalId="INV-404"),
        ],
    )
    reads = body.readResponseList.readResponse
    assert [r.status.isSuccess for r in reads] == [True, True, False]
    # The 2023_2 schema types amounts as xsd:double, so zeep hands back floats.
    assert f"{reads[0].record.total:.2f}" == "99.99"
    assert f"{reads[0].record.itemList.item[0].amount:.2f}" == "99.99"
    assert reads[1].record.companyName == "C-1 Ltd"
    assert reads[2].status.statusDetail[0].code == "RCRD_DSNT_EXIST"


def test_get_reads_one_record(session):
    session.call("upsertList", record=[session.customer("C-1", email="ap@c1.test")])
    body = session.call(
        "get", baseRef=session.type(CORE, "RecordRef")(type="customer", externalId="C-1")
    )
    assert body.readResponse.status.isSuccess is True
    assert body.readResponse.record.email == "ap@c1.test"


def test_search_pages_with_search_more_with_id(session):
    session.call("upsertList", record=[session.customer(f"C-{i:02}") for i in range(13)])
    preferences = session.client.get_element(f"{{{MSGS}}}searchPreferences")(
        bodyFieldsOnly=True, pageSize=5
    )
    first = session.call(
        "search",
        headers={"searchPreferences": preferences},
        searchRecord=session.type(COMMON, "CustomerSearchBasic")(),
    ).searchResult
    assert (first.totalRecords, first.pageSize, first.totalPages, first.pageIndex) == (13, 5, 3, 1)
    assert first.searchId
    seen = [r.externalId for r in first.recordList.record]
    for page in (2, 3):
        more = session.call(
            "searchMoreWithId", searchId=first.searchId, pageIndex=page
        ).searchResult
        assert more.pageIndex == page and more.searchId == first.searchId
        seen += [r.externalId for r in more.recordList.record]
    assert seen == [f"C-{i:02}" for i in range(13)]


def test_add_then_add_again_is_dup_entity(session, ns):
    first = session.call("add", record=session.customer("C-1")).writeResponse
    again = session.call("add", record=session.customer("C-1")).writeResponse
    assert first.status.isSuccess is True and first.baseRef.internalId
    assert again.status.isSuccess is False
    assert again.status.statusDetail[0].code == "DUP_ENTITY"
    assert ns.count("customer") == 1


def test_update_and_upsert_single_records(session, ns):
    added = session.call("add", record=session.customer("C-1")).writeResponse
    change = session.type(REL, "Customer")(internalId=added.baseRef.internalId, phone="+1 555 0100")
    updated = session.call("update", record=change).writeResponse
    missing = session.call(
        "update", record=session.type(REL, "Customer")(externalId="C-404", phone="1")
    ).writeResponse
    upserted = session.call("upsert", record=session.customer("C-2")).writeResponse
    assert updated.status.isSuccess is True
    assert missing.status.statusDetail[0].code == "RCRD_DSNT_EXIST"
    assert upserted.status.isSuccess is True
    assert ns.get("customer", "C-1")["phone"] == "+1 555 0100"
    assert ns.get("customer", "C-1")["companyName"] == "C-1 Ltd"
    assert ns.count("customer") == 2


def _missing(session: Session) -> Any:
    return session.type(CORE, "RecordRef")(type="customer", externalId="C-404")


def test_bad_signature_is_an_invalid_credentials_fault(session, ns):
    passport = session.passport()
    passport.signature._value_1 = base64.b64encode(b"x" * 32).decode()
    with pytest.raises(zeep.exceptions.Fault) as fault:
        session.service.getList(
            baseRef=[_missing(session)], _soapheaders={"tokenPassport": passport}
        )
    assert fault.value.message == "Invalid login attempt."
    detail = fault.value.detail[0]
    assert (
        detail.tag == "{urn:faults_2023_2.platform.webservices.netsuite.com}invalidCredentialsFault"
    )
    assert detail.findtext("{urn:faults_2023_2.platform.webservices.netsuite.com}code") == (
        "INVALID_LOGIN_ATTEMPT"
    )


def test_over_the_record_cap_is_an_exceeded_record_count_fault(session, ns):
    with pytest.raises(zeep.exceptions.Fault) as fault:
        session.call("upsertList", record=[session.customer(f"C-{i}") for i in range(101)])
    assert fault.value.detail[0].tag.endswith("}exceededRecordCountFault")
    assert ns.count("customer") == 0


def test_concurrency_limit_is_an_exceeded_concurrent_request_fault(session, ns):
    ns.concurrency_fault_next()
    with pytest.raises(zeep.exceptions.Fault) as fault:
        session.call("upsertList", record=[session.customer("C-1")])
    assert fault.value.detail[0].tag.endswith("}exceededConcurrentRequestLimitFault")
    assert (
        fault.value.detail[0].findtext("{urn:faults_2023_2.platform.webservices.netsuite.com}code")
        == "WS_REQUEST_BLOCKED"
    )


def test_unsupported_search_is_a_fault_and_the_server_keeps_answering(oracle, ns):
    # Oracle's WSDL only: the sandbox's own declares just the searches it answers.
    session = Session(oracle, ns)
    with pytest.raises(zeep.exceptions.Fault) as fault:
        session.call("search", searchRecord=session.type(COMMON, "ItemSearchBasic")())
    assert "not supported" in fault.value.message
    after = session.call("getList", baseRef=[_missing(session)]).readResponseList
    assert after.readResponse[0].status.statusDetail[0].code == "RCRD_DSNT_EXIST"


def test_finsync_soap_connector_with_oracles_wsdl_leaves_what_the_sandbox_wsdl_does(specs_dir):
    held = {}
    for name in ("oracle", "sandbox"):
        with NetSuiteSandbox().start() as sandbox:
            wsdl = str(specs_dir / "netsuite" / "netsuite.wsdl") if name == "oracle" else None
            connector = soap(sandbox, **({"wsdl": wsdl} if wsdl else {}))
            try:
                documents = chain()
                results = [r for doc in documents for r in connector.send([doc])]
                found = connector.lookup(documents)
            finally:
                connector.close()
            assert [r.ok for r in results] == [True] * len(documents)
            assert all(found[doc.external_id] for doc in documents)
            held[name] = {
                t: sandbox.records(t)
                for t in ("customer", "invoice", "creditMemo", "customerPayment")
            }
    assert held["oracle"] == held["sandbox"]
    payment = held["oracle"]["customerPayment"][0]
    assert payment["payment"] == Decimal("600.00")
    assert [line["amount"] for line in payment["applyList"]] == [Decimal("586.66")]
