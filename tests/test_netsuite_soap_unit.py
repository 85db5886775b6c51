"""NetSuite SOAP connector: requests checked against the REAL 2023_2 XSDs, TBA signature,
reply and fault handling (httpx.MockTransport standing in for NetSuite's replies)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from lxml import etree

from connectors.netsuite_soap import (
    NetSuiteSoapConnector,
    NetSuiteSoapSettings,
    default_endpoint,
)
from core.documents import Document
from core.errors import (
    AuthError,
    ConfigError,
    OutcomeUnknownError,
    PermanentError,
    RateLimitedError,
    RetryableError,
)
from finsync.config import Secret, Section
from mappings import netsuite as ns
from tests.netsuite_records import (
    credit_note,
    customer,
    invoice,
    line,
    payment,
    tables,
    usd_invoice,
)

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
MSG = "urn:messages_2023_2.platform.webservices.netsuite.com"
CORE = "urn:core_2023_2.platform.webservices.netsuite.com"
XSD_FILES = (
    "platform.messages.xsd",
    "transactions.sales.xsd",
    "transactions.customers.xsd",
    "transactions.general.xsd",
    "lists.relationships.xsd",
)


def settings(wsdl: str, **kw) -> NetSuiteSoapSettings:
    return NetSuiteSoapSettings(
        account="1234567_SB1",
        consumer_key=Secret("ck-key"),
        consumer_secret=Secret("cs-SECRET"),
        token_id=Secret("tok-id"),
        token_secret=Secret("ts-SECRET"),
        wsdl=wsdl,
        backoff_seconds=0.0,
        **kw,
    )


class Recorder:
    """A scripted NetSuite: answers each request with the next reply, records the bodies."""

    def __init__(self, *replies):
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply


def envelope(body: str) -> str:
    return (
        f'<soapenv:Envelope xmlns:soapenv="{SOAP}"><soapenv:Body>{body}'
        "</soapenv:Body></soapenv:Envelope>"
    )


def write_list(*items: tuple[bool, str, str | None]) -> httpx.Response:
    """items: (ok, externalId, internalId or error code)."""
    parts = []
    for ok, ext, value in items:
        if ok:
            status = '<platformCore:status isSuccess="true"/>'
            ref = (
                f'<baseRef xsi:type="platformCore:RecordRef" externalId="{ext}" '
                f'internalId="{value}" type="invoice"/>'
            )
        else:
            status = (
                f'<platformCore:status isSuccess="false"><platformCore:statusDetail '
                f'type="ERROR"><platformCore:code>{value}</platformCore:code>'
                f"<platformCore:message>Invalid entity reference key 77.</platformCore:"
                "message></platformCore:statusDetail></platformCore:status>"
            )
            ref = f'<baseRef xsi:type="platformCore:RecordRef" externalId="{ext}" type="invoice"/>'
        parts.append(f"<writeResponse>{status}{ref}</writeResponse>")
    body = (
        f'<upsertListResponse xmlns="{MSG}"><writeResponseList '
        f'xmlns:platformCore="{CORE}" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f'<platformCore:status isSuccess="true"/>{"".join(parts)}</writeResponseList>'
        "</upsertListResponse>"
    )
    return httpx.Response(200, text=envelope(body))


def read_list(*items: tuple[str, str | None]) -> httpx.Response:
    """items: (externalId, internalId or None when absent)."""
    parts = []
    for ext, iid in items:
        if iid:
            parts.append(
                '<readResponse><platformCore:status isSuccess="true"/>'
                f'<record externalId="{ext}" internalId="{iid}"/></readResponse>'
            )
        else:
            parts.append(
                '<readResponse><platformCore:status isSuccess="false">'
                '<platformCore:statusDetail type="ERROR"><platformCore:code>'
                "RCRD_DSNT_EXIST</platformCore:code><platformCore:message>That record "
                "does not exist.</platformCore:message></platformCore:statusDetail>"
                "</platformCore:status></readResponse>"
            )
    body = (
        f'<getListResponse xmlns="{MSG}"><readResponseList xmlns:platformCore="{CORE}">'
        f'<platformCore:status isSuccess="true"/>{"".join(parts)}</readResponseList>'
        "</getListResponse>"
    )
    return httpx.Response(200, text=envelope(body))


def fault(name: str, code: str, message: str, status: int = 500) -> httpx.Response:
    detail = (
        f'<platformFaults:{name} xmlns:platformFaults="urn:faults_2023_2.platform.'
        f'webservices.netsuite.com"><platformFaults:code>{code}</platformFaults:code>'
        f"<platformFaults:message>{message}</platformFaults:message>"
        f"</platformFaults:{name}>"
    )
    body = (
        f"<soapenv:Fault><faultcode>soapenv:Server.userException</faultcode>"
        f"<faultstring>{message}</faultstring><detail>{detail}</detail></soapenv:Fault>"
    )
    return httpx.Response(status, text=envelope(body))


@pytest.fixture
def wsdl(specs_dir: Path) -> str:
    return str(specs_dir / "netsuite" / "netsuite.wsdl")


@pytest.fixture
def schema(specs_dir: Path, tmp_path: Path) -> etree.XMLSchema:
    """The real XSDs, loaded through one wrapper schema that imports each record namespace."""
    xsd_dir = specs_dir / "netsuite" / "xsd"
    imports = []
    for name in XSD_FILES:
        target = etree.parse(str(xsd_dir / name)).getroot().get("targetNamespace")
        imports.append(
            f'<xsd:import namespace="{target}" schemaLocation="{(xsd_dir / name).as_uri()}"/>'
        )
    wrapper = tmp_path / "wrapper.xsd"
    wrapper.write_text(
        '<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema">'
        + "".join(imports)
        + "</xsd:schema>"
    )
    return etree.XMLSchema(etree.parse(str(wrapper)))


def connector(wsdl: str, handler, **kw) -> NetSuiteSoapConnector:
    return NetSuiteSoapConnector(
        settings(wsdl, **kw),
        client=httpx.Client(transport=httpx.MockTransport(handler)),
        clock=lambda: 1_700_000_000.0,
        nonce=iter(f"nonce{i:04d}" for i in range(999)).__next__,
    )


def body_element(request: httpx.Request, name: str) -> etree._Element:
    root = etree.fromstring(request.content)
    element = root.find(f"{{{SOAP}}}Body/{{{MSG}}}{name}")
    assert element is not None
    return etree.fromstring(etree.tostring(element))


def journal_entry() -> Document:
    """A journal entry built by hand in the neutral form (revenue recognition)."""
    return Document(
        target="netsuite",
        kind="revenue",
        source_id="5",
        external_id="finsync:rev:5",
        record_type="journalEntry",
        label="revenue entry 5",
        payload={
            "tranDate": "2024-03-31",
            "subsidiary": {"internalId": "1"},
            "currency": {"internalId": "1"},
            "memo": "Revenue recognition 2024-03",
            "lineList": [
                {"account": {"internalId": "2500"}, "debit": "182.33", "memo": "deferred"},
                {
                    "account": {"internalId": "4000"},
                    "credit": "182.33",
                    "department": {"internalId": "20"},
                    "entity": {"externalId": "finsync:cust:C-0001"},
                },
            ],
        },
    )


def test_every_record_type_validates_against_the_real_xsds(wsdl, schema):
    t = tables()
    jp = invoice(
        11,
        "INV-1043",
        entity="acme-jp",
        currency="JPY",
        lines=(line(1, "plat-pro", "2", "29800", "1000", "58600", "0.10", "5860"),),
    )
    docs = [
        ns.map_customer(customer(), t),
        ns.map_customer(customer(2, "C-0002", exempt=True), t),
        ns.map_invoice(usd_invoice(), t),
        ns.map_invoice(jp, t),
        ns.map_invoice(usd_invoice(12, "INV-1044", status="void"), t),
        ns.map_credit_note(credit_note(), t),
        ns.map_payment(payment(apps=((10, "INV-1042", "500.00"), (11, "INV-1043", "100.00"))), t),
        ns.map_payment(payment(31, "PAY-10", status="reversed"), t),
        journal_entry(),
    ]
    # One upsertList with every record type: without their dependencies, which would split the
    # batch into waves (tested against the sandbox in test_netsuite_http.py).
    docs = [replace(d, depends_on=()) for d in docs]
    nsmock = Recorder(
        read_list(("finsync:inv:INV-1042", "501"), ("finsync:inv:INV-1043", "502")),
        write_list(*[(True, d.external_id, str(i)) for i, d in enumerate(docs)]),
    )
    results = connector(wsdl, nsmock).send(docs)

    assert [r.ok for r in results] == [True] * len(docs)
    get_list, upsert_list = nsmock.requests
    assert get_list.headers["SOAPAction"] == "getList"
    for request, name in ((get_list, "getList"), (upsert_list, "upsertList")):
        element = body_element(request, name)
        assert schema.validate(element), schema.error_log.filter_from_errors()
    records = body_element(upsert_list, "upsertList").findall(f"{{{MSG}}}record")
    assert [r.get("externalId") for r in records] == [d.external_id for d in docs]
    # the payment's apply lines carry the invoices' internal ids (xsd:long), not external ids
    docs_applied = [e.text for e in records[6].iter() if etree.QName(e).localname == "doc"]
    assert docs_applied == ["501", "502"]


def test_token_passport_known_answer(wsdl):
    nsmock = Recorder(read_list(("finsync:inv:INV-1042", None)))
    c = connector(wsdl, nsmock)
    c.lookup([ns.map_invoice(usd_invoice(), tables())])
    header = etree.fromstring(nsmock.requests[0].content).find(
        f"{{{SOAP}}}Header/{{{MSG}}}tokenPassport"
    )
    values = {etree.QName(e).localname: e.text for e in header}
    base = "1234567_SB1&ck-key&tok-id&nonce0000&1700000000"
    expected = base64.b64encode(
        hmac.new(b"cs-SECRET&ts-SECRET", base.encode(), hashlib.sha256).digest()
    ).decode()
    assert values == {
        "account": "1234567_SB1",
        "consumerKey": "ck-key",
        "token": "tok-id",
        "nonce": "nonce0000",
        "timestamp": "1700000000",
        "signature": expected,
    }
    assert header.find(f"{{{CORE}}}signature").get("algorithm") == "HMAC-SHA256"


def test_fresh_nonce_per_request_and_retry_on_concurrency_fault(wsdl):
    doc = ns.map_customer(customer(), tables())
    nsmock = Recorder(
        fault("exceededConcurrentRequestLimitFault", "WS_REQUEST_BLOCKED", "Too many requests"),
        httpx.Response(503, text="Service Unavailable"),
        write_list((True, doc.external_id, "42")),
    )
    (result,) = connector(wsdl, nsmock).send([doc])
    assert (result.ok, result.internal_id) == (True, "42")
    nonces = [etree.fromstring(r.content).find(f".//{{{CORE}}}nonce").text for r in nsmock.requests]
    assert len(set(nonces)) == 3


def test_one_rejected_record_leaves_the_rest_of_the_batch_ok(wsdl):
    t = tables()
    docs = [
        ns.map_invoice(usd_invoice(10, "INV-1"), t),
        ns.map_invoice(usd_invoice(11, "INV-2"), t),
    ]
    nsmock = Recorder(
        write_list(
            (True, docs[0].external_id, "7"), (False, docs[1].external_id, "INVALID_KEY_OR_REF")
        )
    )
    ok, bad = connector(wsdl, nsmock).send(docs)
    assert ok.ok and ok.internal_id == "7"
    assert not bad.ok
    assert isinstance(bad.error, PermanentError) and not isinstance(bad.error, RetryableError)
    assert bad.error.code == "INVALID_KEY_OR_REF"
    assert "invoice INV-2" in str(bad.error) and "Invalid entity reference key 77." in str(
        bad.error
    )


def test_payment_whose_invoice_is_missing_fails_alone(wsdl):
    t = tables()
    docs = [
        ns.map_customer(customer(), t),
        ns.map_payment(payment(apps=((10, "INV-404", "10.00"),)), t),
    ]
    # The payment depends on the customer: the customer's wave goes first, then the look-up.
    nsmock = Recorder(
        write_list((True, docs[0].external_id, "3")), read_list(("finsync:inv:INV-404", None))
    )
    first, second = connector(wsdl, nsmock).send(docs)
    assert [r.headers["SOAPAction"] for r in nsmock.requests] == ["upsertList", "getList"]
    assert first.ok
    assert isinstance(second.error, RetryableError)
    assert "finsync:inv:INV-404" in str(second.error)


def test_invalid_login_is_auth_error_without_secrets(wsdl):
    nsmock = Recorder(
        fault(
            "invalidCredentialsFault", "INVALID_LOGIN_ATTEMPT", "Invalid login attempt.", status=500
        )
    )
    with pytest.raises(AuthError) as err:
        connector(wsdl, nsmock).send([ns.map_customer(customer(), tables())])
    assert err.value.code == "INVALID_LOGIN_ATTEMPT"
    for secret in ("cs-SECRET", "ts-SECRET"):
        assert secret not in str(err.value)
    assert len(nsmock.requests) == 1  # auth failures are not retried


def test_user_error_fault_is_permanent_with_netsuite_message(wsdl):
    nsmock = Recorder(
        fault("unexpectedErrorFault", "USER_ERROR", "Please enter value(s) for: X", status=500)
    )
    with pytest.raises(PermanentError) as err:
        connector(wsdl, nsmock).send([ns.map_customer(customer(), tables())])
    assert not isinstance(err.value, RetryableError)
    assert "Please enter value(s) for: X" in str(err.value)


def test_timeout_after_send_is_outcome_unknown_when_retries_run_out(wsdl):
    nsmock = Recorder(*[httpx.ReadTimeout("timed out")] * 2)
    with pytest.raises(OutcomeUnknownError):
        connector(wsdl, nsmock, retry_attempts=2).send([ns.map_customer(customer(), tables())])


def test_concurrency_fault_is_rate_limited_when_retries_run_out(wsdl):
    nsmock = Recorder(fault("exceededConcurrentRequestLimitFault", "WS_REQUEST_BLOCKED", "busy"))
    with pytest.raises(RateLimitedError):
        connector(wsdl, nsmock, retry_attempts=1).send([ns.map_customer(customer(), tables())])


def test_lookup_maps_external_ids(wsdl):
    t = tables()
    docs = [
        ns.map_invoice(usd_invoice(10, "INV-1"), t),
        ns.map_invoice(usd_invoice(11, "INV-2"), t),
    ]
    nsmock = Recorder(read_list((docs[0].external_id, "900"), (docs[1].external_id, None)))
    assert connector(wsdl, nsmock).lookup(docs) == {
        docs[0].external_id: "900",
        docs[1].external_id: None,
    }
    refs = body_element(nsmock.requests[0], "getList").findall(f"{{{MSG}}}baseRef")
    assert [(r.get("type"), r.get("externalId")) for r in refs] == [
        ("invoice", "finsync:inv:INV-1"),
        ("invoice", "finsync:inv:INV-2"),
    ]


def test_passport_never_logged(wsdl, caplog):
    caplog.set_level(logging.DEBUG)
    nsmock = Recorder(write_list((True, "finsync:cust:C-0001", "1")))
    connector(wsdl, nsmock).send([ns.map_customer(customer(), tables())])
    assert "tok-id" not in caplog.text and "signature" not in caplog.text


def test_settings_from_section(wsdl):
    env = {"CK": "a", "CS": "b", "TK": "c", "TS": "d"}
    data = {
        "account": "1234567_SB1",
        "wsdl": wsdl,
        "consumer_key": {"env": "CK"},
        "consumer_secret": {"env": "CS"},
        "token_id": {"env": "TK"},
        "token_secret": {"env": "TS"},
        "batch_size": 50,
    }
    s = NetSuiteSoapSettings.from_section(Section(data, "targets.netsuite", env))
    assert s.batch_size == 50
    assert (
        s.endpoint
        == ("https://1234567-sb1.suitetalk.api.netsuite.com/services/NetSuitePort_2023_2")
        == default_endpoint("1234567_SB1")
    )
    assert "b" not in repr(s.consumer_secret)
    with pytest.raises(ConfigError) as err:
        NetSuiteSoapSettings.from_section(Section({**data, "batch_size": 101}, "targets.ns", env))
    assert err.value.key == "targets.ns.batch_size"
    with pytest.raises(ConfigError) as err:
        NetSuiteSoapSettings.from_section(Section({**data, "batchsize": 1}, "targets.ns", env))
    assert err.value.key == "targets.ns.batchsize"
    with pytest.raises(ConfigError) as err:
        NetSuiteSoapSettings.from_section(Section({**data, "account": "1234567_sb1"}, "t", env))
    assert err.value.key == "t.account"
