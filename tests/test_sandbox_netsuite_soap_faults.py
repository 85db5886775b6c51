"""Every fault path of the NetSuite SOAP sandbox, on the raw wire: field lengths, schema (SAX)
faults, faults without a NetSuite fault element, and the per-record answers of add, update,
get and searchMoreWithId. Each answer must be a well-formed SOAP envelope."""

from __future__ import annotations

import httpx
import pytest
from lxml import etree

from sandbox.netsuite import NetSuiteSandbox
from tests.test_sandbox_netsuite_helpers import (
    CORE,
    MSGS,
    SOAP,
    call,
    customer,
    envelope,
    fault_of,
    invoice,
    passport_xml,
    post,
    upsert,
    write_results,
)

REL = "urn:relationships_2023_2.lists.webservices.netsuite.com"


@pytest.fixture
def ns():
    with NetSuiteSandbox().start() as sandbox:
        yield sandbox


def _fault(root: etree._Element) -> tuple[str, str, list[str]]:
    """(faultcode, faultstring, local names of the detail's children) of a SOAP fault."""
    fault = root.find(f".//{{{SOAP}}}Fault")
    assert fault is not None, etree.tostring(root)
    detail = fault.find("detail")
    names = [] if detail is None else [etree.QName(child).localname for child in detail]
    return fault.findtext("faultcode") or "", fault.findtext("faultstring") or "", names


def _request(ns: NetSuiteSandbox, body: str) -> tuple[int, etree._Element]:
    return post(ns.soap_endpoint, envelope(body, passport_xml(ns.credentials)))


def _customer_with(ext: str, field: str, value: str) -> str:
    """A customer record whose ``field`` holds ``value`` (replacing the default if any)."""
    record = customer(ext)
    element = f"<rel:{field}>{value}</rel:{field}>"
    default = {"companyName": f"Company {ext}", "entityId": ext}.get(field)
    if default is not None:
        return record.replace(f"<rel:{field}>{default}</rel:{field}>", element)
    return record.replace("</msgs:record>", f"{element}</msgs:record>")


# ---- field lengths -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "limit"),
    [("companyName", 83), ("entityId", 83), ("email", 254), ("phone", 32), ("lastName", 32)],
)
def test_customer_field_over_its_length_is_refused_alone(ns, field, limit):
    too_long = _customer_with("C-LONG", field, "x" * (limit + 1))
    at_limit = _customer_with("C-OK", "companyName", "y" * 83)
    results = upsert(ns.soap_endpoint, ns.credentials, [too_long, at_limit])
    assert [r["isSuccess"] for r in results] == ["false", "true"]
    assert results[0]["code"] == "EXCEEDED_MAX_FIELD_LENGTH"
    assert results[0]["message"] == (
        f"The field {field} contained more than the maximum number ( {limit} ) of characters "
        "allowed."
    )
    assert ns.get("customer", "C-LONG") is None
    assert ns.get("customer", "C-OK")["companyName"] == "y" * 83


def test_500_character_company_name_and_5000_character_memo_are_refused(ns):
    name = customer("C-1").replace("Company C-1", "n" * 500)
    results = upsert(
        ns.soap_endpoint,
        ns.credentials,
        [
            name,
            customer("C-2"),
            invoice("INV-1", "C-2", extra=f"<sales:memo>{'m' * 5000}</sales:memo>"),
            invoice("INV-2", "C-2", extra=f"<sales:memo>{'m' * 999}</sales:memo>"),
        ],
    )
    assert [(r["isSuccess"], r["code"]) for r in results] == [
        ("false", "EXCEEDED_MAX_FIELD_LENGTH"),
        ("true", ""),
        ("false", "EXCEEDED_MAX_FIELD_LENGTH"),
        ("true", ""),
    ]
    assert "( 999 )" in results[2]["message"]
    assert ns.count("invoice") == 1


def test_address_line_and_external_id_over_their_lengths_are_refused(ns):
    address = (
        "<rel:addressbookList><rel:addressbook><rel:addressbookAddress>"
        "<common:country>_unitedStates</common:country>"
        f"<common:addr1>{'a' * 151}</common:addr1><common:state>CA</common:state>"
        "</rel:addressbookAddress></rel:addressbook></rel:addressbookList>"
    )
    with_address = customer("C-ADDR").replace("</msgs:record>", f"{address}</msgs:record>")
    long_id = "E" * 256
    results = upsert(ns.soap_endpoint, ns.credentials, [with_address, customer(long_id)])
    assert [r["code"] for r in results] == ["EXCEEDED_MAX_FIELD_LENGTH"] * 2
    assert "field addr1" in results[0]["message"] and "( 150 )" in results[0]["message"]
    assert "field externalId" in results[1]["message"] and "( 255 )" in results[1]["message"]
    assert ns.count("customer") == 0


# ---- whole-request faults ------------------------------------------------------------------------


def test_malformed_xml_is_a_sax_parse_fault(ns):
    response = httpx.post(
        ns.soap_endpoint,
        content=b"<soapenv:Envelope xmlns:soapenv='" + SOAP.encode() + b"'><soapenv:Body>",
        headers={"Content-Type": "text/xml"},
    )
    assert response.status_code == 500
    faultcode, faultstring, detail = _fault(etree.fromstring(response.content))
    assert faultcode == "soapenv:Server.userException"
    assert faultstring.startswith("org.xml.sax.SAXParseException: ")
    assert detail == ["hostname"]


def test_unknown_element_refuses_the_whole_request_and_writes_nothing(ns):
    bad = customer("C-2").replace(
        "</msgs:record>", "<rel:favouriteColour>red</rel:favouriteColour></msgs:record>"
    )
    status, root = _request(
        ns, f"<msgs:upsertList>{customer('C-1')}{bad}{customer('C-3')}</msgs:upsertList>"
    )
    assert status == 500
    faultcode, faultstring, detail = _fault(root)
    assert faultcode == "soapenv:Server.userException"
    assert faultstring == (
        "org.xml.sax.SAXException: Invalid element in "
        "com.netsuite.webservices.lists.relationships_2023_2.Customer - favouriteColour"
    )
    assert detail == ["hostname"]
    assert ns.count("customer") == 0


def test_unknown_element_in_a_sublist_line_is_a_sax_fault(ns):
    line = "<sales:item><sales:bogus>1</sales:bogus></sales:item>"
    record = invoice("INV-1", "C-1").replace("<sales:itemList>", f"<sales:itemList>{line}")
    status, root = _request(ns, f"<msgs:upsertList>{customer('C-1')}{record}</msgs:upsertList>")
    assert status == 500
    assert _fault(root)[1].endswith("transactions.sales_2023_2.InvoiceItem - bogus")
    assert ns.count("customer") == 0


@pytest.mark.parametrize(
    "body",
    [
        # An unsupported search filter and an unsupported operation: faults with no NetSuite
        # fault element, which once crashed the server (ValueError: Empty tag name).
        '<msgs:search><msgs:searchRecord xsi:type="common:TransactionSearchBasic">'
        '<common:tranId operator="is"><core:searchValue>1</core:searchValue></common:tranId>'
        "</msgs:searchRecord></msgs:search>",
        '<msgs:search><msgs:searchRecord xsi:type="common:ItemSearchBasic"/></msgs:search>',
        "<msgs:search/>",
        "<msgs:initialize/>",
        "<msgs:get/>",
        "<msgs:add/>",
        "<msgs:searchMoreWithId><msgs:searchId>x</msgs:searchId>"
        "<msgs:pageIndex>two</msgs:pageIndex></msgs:searchMoreWithId>",
    ],
)
def test_faults_without_an_element_name_are_well_formed(ns, body):
    status, root = _request(ns, body)
    assert status == 500
    faultcode, faultstring, detail = _fault(root)
    assert faultcode.startswith("soapenv:")
    assert faultstring
    assert detail == ["hostname"]
    # The server is still up and answering.
    assert call(ns.soap_endpoint, ns.credentials, "<msgs:getList/>") is not None


@pytest.mark.parametrize(("operation", "cap"), [("addList", 200), ("updateList", 100)])
def test_list_caps_are_record_count_faults(ns, operation, cap):
    records = "".join(customer(f"C-{i}") for i in range(cap + 1))
    status, root = _request(ns, f"<msgs:{operation}>{records}</msgs:{operation}>")
    assert status == 500
    assert fault_of(root)[:2] == ("exceededRecordCountFault", "MAX_RCRDS_EXCEEDED")
    assert ns.count("customer") == 0


# ---- add, update, get, searchMoreWithId: per-record answers -----------------------------------


def _single(root: etree._Element, operation: str) -> dict[str, str]:
    response = root.find(f".//{{{MSGS}}}{operation}Response")
    assert response is not None, etree.tostring(root)
    return write_results(root)[0]


def test_add_creates_and_a_duplicate_external_id_is_dup_entity(ns):
    first = _single(
        call(ns.soap_endpoint, ns.credentials, f"<msgs:add>{customer('C-1')}</msgs:add>"), "add"
    )
    again = _single(
        call(ns.soap_endpoint, ns.credentials, f"<msgs:add>{customer('C-1')}</msgs:add>"), "add"
    )
    assert first["isSuccess"] == "true" and first["internalId"]
    assert (again["isSuccess"], again["code"]) == ("false", "DUP_ENTITY")
    assert ns.count("customer") == 1


def test_add_list_reports_duplicates_one_by_one(ns):
    upsert(ns.soap_endpoint, ns.credentials, [customer("C-1"), invoice("INV-1", "C-1")])
    root = call(
        ns.soap_endpoint,
        ns.credentials,
        f"<msgs:addList>{invoice('INV-1', 'C-1')}{invoice('INV-2', 'C-1')}</msgs:addList>",
    )
    results = write_results(root)
    assert [(r["isSuccess"], r["code"]) for r in results] == [("false", "DUP_RCRD"), ("true", "")]
    assert ns.count("invoice") == 2


def test_update_changes_an_existing_record_and_refuses_a_missing_one(ns):
    created = upsert(ns.soap_endpoint, ns.credentials, [customer("C-1")])[0]
    change = (
        f'<msgs:record xsi:type="rel:Customer" internalId="{created["internalId"]}">'
        "<rel:companyName>Renamed</rel:companyName></msgs:record>"
    )
    missing = (
        '<msgs:record xsi:type="rel:Customer" externalId="C-404">'
        "<rel:companyName>Nobody</rel:companyName></msgs:record>"
    )
    ok = _single(
        call(ns.soap_endpoint, ns.credentials, f"<msgs:update>{change}</msgs:update>"), "update"
    )
    gone = _single(
        call(ns.soap_endpoint, ns.credentials, f"<msgs:update>{missing}</msgs:update>"), "update"
    )
    assert (ok["isSuccess"], ok["internalId"]) == ("true", created["internalId"])
    assert (gone["isSuccess"], gone["code"]) == ("false", "RCRD_DSNT_EXIST")
    stored = ns.get("customer", "C-1")
    assert stored["companyName"] == "Renamed"
    # Fields the update did not name keep their values.
    assert stored["entityId"] == "C-1"
    assert ns.count("customer") == 1


def _get(ns: NetSuiteSandbox, external_id: str) -> etree._Element:
    ref = f'<msgs:baseRef xsi:type="core:RecordRef" type="customer" externalId="{external_id}"/>'
    return call(ns.soap_endpoint, ns.credentials, f"<msgs:get>{ref}</msgs:get>")


def test_get_answers_one_read_response(ns):
    upsert(ns.soap_endpoint, ns.credentials, [customer("C-1")])
    found = _get(ns, "C-1")
    missing = _get(ns, "C-9")
    assert found.findtext(f".//{{{MSGS}}}record/{{{REL}}}companyName") == "Company C-1"
    assert missing.find(f".//{{{CORE}}}status").get("isSuccess") == "false"
    assert missing.findtext(f".//{{{CORE}}}code") == "RCRD_DSNT_EXIST"


def test_search_more_with_id_pages_through_the_results(ns):
    upsert(ns.soap_endpoint, ns.credentials, [customer(f"C-{i:02}") for i in range(12)])
    header = (
        passport_xml(ns.credentials)
        + "<msgs:searchPreferences><msgs:bodyFieldsOnly>true</msgs:bodyFieldsOnly>"
        "<msgs:pageSize>5</msgs:pageSize></msgs:searchPreferences>"
    )
    status, first = post(
        ns.soap_endpoint,
        envelope(
            '<msgs:search><msgs:searchRecord xsi:type="common:CustomerSearchBasic"/></msgs:search>',
            header,
        ),
    )
    assert status == 200
    result = first.find(f".//{{{CORE}}}searchResult")
    search_id = result.findtext(f"{{{CORE}}}searchId")
    assert (
        result.findtext(f"{{{CORE}}}totalRecords"),
        result.findtext(f"{{{CORE}}}totalPages"),
    ) == ("12", "3")
    assert search_id
    seen = [r.get("externalId") for r in result.iter(f"{{{CORE}}}record")]
    for page in (2, 3):
        root = call(
            ns.soap_endpoint,
            ns.credentials,
            f"<msgs:searchMoreWithId><msgs:searchId>{search_id}</msgs:searchId>"
            f"<msgs:pageIndex>{page}</msgs:pageIndex></msgs:searchMoreWithId>",
        )
        assert root.findtext(f".//{{{CORE}}}pageIndex") == str(page)
        seen += [r.get("externalId") for r in root.iter(f"{{{CORE}}}record")]
    assert seen == [f"C-{i:02}" for i in range(12)]
    beyond = call(
        ns.soap_endpoint,
        ns.credentials,
        f"<msgs:searchMoreWithId><msgs:searchId>{search_id}</msgs:searchId>"
        "<msgs:pageIndex>4</msgs:pageIndex></msgs:searchMoreWithId>",
    )
    unknown = call(
        ns.soap_endpoint,
        ns.credentials,
        "<msgs:searchMoreWithId><msgs:searchId>WEBSERVICES_nope</msgs:searchId>"
        "<msgs:pageIndex>1</msgs:pageIndex></msgs:searchMoreWithId>",
    )
    assert beyond.findtext(f".//{{{CORE}}}code") == "INVALID_PAGE_INDEX"
    assert unknown.findtext(f".//{{{CORE}}}code") == "USER_ERROR"
