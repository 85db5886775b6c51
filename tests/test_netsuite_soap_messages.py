"""The SOAP records finsync writes with lxml are the records zeep renders from the same values.

``connectors.netsuite_soap.messages.RecordWriter`` writes upsertList records itself, reading
element order and value formats from the WSDL's types; zeep's own rendering of the same values
with NetSuite's real 2023_2 WSDL is the reference. Each record is compared as a tree of
(namespace, name, attributes with ``xsi:type`` resolved to its namespace, text), so only
namespace prefixes may differ. Every record type finsync sends is covered, with a voided
invoice, an exempt customer, a JPY invoice, a reversed payment and refunds of a payment and of a
credit memo; the records also validate against the real XSDs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from connectors.netsuite_soap import NetSuiteSoapConnector, NetSuiteSoapSettings
from connectors.netsuite_soap.messages import RECORD_ELEMENT, RECORD_TYPES, soap_fields
from core.documents import Document
from core.errors import PermanentError
from finsync.config import Secret
from mappings import netsuite as ns
from tests.netsuite_records import (
    credit_note,
    customer,
    invoice,
    line,
    payment,
    refund,
    tables,
    usd_invoice,
)
from tests.test_netsuite_soap_unit import XSD_FILES, journal_entry

XSI = "http://www.w3.org/2001/XMLSchema-instance"
#: Internal ids of what the apply lines point at, as the ledger would hand them over.
DOC_IDS = {
    "finsync:inv:INV-1042": "501",
    "finsync:inv:INV-1043": "502",
    "finsync:pay:PAY-9": "601",
    "finsync:cn:CN-7": "701",
}


@pytest.fixture
def soap(specs_dir: Path) -> NetSuiteSoapConnector:
    connector = NetSuiteSoapConnector(
        NetSuiteSoapSettings(
            account="1234567_SB1",
            consumer_key=Secret("ck"),
            consumer_secret=Secret("cs"),
            token_id=Secret("tok"),
            token_secret=Secret("ts"),
            wsdl=str(specs_dir / "netsuite" / "netsuite.wsdl"),
        )
    )
    yield connector
    connector.close()


def every_record_type() -> list[Document]:
    t = tables()
    jp = invoice(
        11,
        "INV-1043",
        entity="acme-jp",
        currency="JPY",
        lines=(line(1, "plat-pro", "2", "29800", "1000", "58600", "0.10", "5860"),),
    )
    credit = credit_note()
    return [
        ns.map_customer(customer(), t),
        ns.map_customer(customer(2, "C-0002", exempt=True), t),
        ns.map_invoice(usd_invoice(), t),
        ns.map_invoice(jp, t),
        ns.map_invoice(usd_invoice(12, "INV-1044", status="void"), t),
        ns.map_credit_note(credit, t),
        ns.map_payment(payment(apps=((10, "INV-1042", "500.00"), (11, "INV-1043", "100.00"))), t),
        ns.map_payment(payment(31, "PAY-10", status="reversed"), t),
        ns.map_refund(refund(), t),
        ns.map_refund(
            refund(41, "RF-8", payment_of=None, credit_note_of=(credit.id, credit.number)), t
        ),
        journal_entry(),
    ]


def zeep_record(soap: NetSuiteSoapConnector, document: Document) -> etree._Element:
    """zeep's rendering of the document's values as an upsertList record."""
    zeep = soap.transport.zeep
    value = zeep.get_type(RECORD_TYPES[document.record_type])(**soap_fields(document, DOC_IDS))
    holder = etree.Element("holder")
    zeep.get_element(
        "{urn:messages_2023_2.platform.webservices.netsuite.com}upsertList"
    ).type.elements[0][1].render(holder, [value])
    (record,) = holder
    return record


def tree(element: etree._Element) -> tuple:
    """The element as comparable data: names with namespaces, attributes, text, children."""
    attributes = {}
    for name, value in element.attrib.items():
        if name == f"{{{XSI}}}type":
            prefix, _, local = value.rpartition(":")
            value = f"{{{element.nsmap[prefix or None]}}}{local}"
        attributes[name] = value
    return (
        element.tag,
        tuple(sorted(attributes.items())),
        (element.text or "").strip(),
        tuple(tree(c) for c in element if isinstance(c.tag, str)),
    )


@pytest.mark.parametrize("n", range(len(every_record_type())))
def test_written_record_equals_zeeps_rendering(soap, n):
    document = every_record_type()[n]
    written = soap.to_record(document, DOC_IDS)
    expected = zeep_record(soap, document)
    assert written.tag == RECORD_ELEMENT
    assert tree(written) == tree(expected)
    # the comparison sees every value: a changed amount would be a different tree
    assert len(list(written.iter())) == len(list(expected.iter())) > 3


def test_written_records_validate_against_the_real_xsds(soap, specs_dir: Path, tmp_path: Path):
    xsd_dir = specs_dir / "netsuite" / "xsd"
    imports = "".join(
        f'<xsd:import namespace="{etree.parse(str(xsd_dir / n)).getroot().get("targetNamespace")}"'
        f' schemaLocation="{(xsd_dir / n).as_uri()}"/>'
        for n in XSD_FILES
    )
    wrapper = tmp_path / "wrapper.xsd"
    wrapper.write_text(
        f'<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema">{imports}</xsd:schema>'
    )
    schema = etree.XMLSchema(etree.parse(str(wrapper)))
    request = etree.fromstring(
        soap.transport.envelope_of(
            "upsertList", [soap.to_record(d, DOC_IDS) for d in every_record_type()]
        )
    ).find("{http://schemas.xmlsoap.org/soap/envelope/}Body/*")
    assert schema.validate(etree.fromstring(etree.tostring(request))), schema.error_log
    assert len(request) == len(every_record_type())


def test_text_xml_cannot_carry_fails_that_record_with_the_fix(soap):
    document = ns.map_customer(customer(), tables())
    bad = Document(
        **{**document.__dict__, "payload": {**document.payload, "companyName": "A\x00B"}}
    )
    with pytest.raises(PermanentError) as caught:
        soap.to_record(bad)
    assert caught.value.code == "SERIALIZATION"
    assert "customer C-0001" in str(caught.value) and "correct the record's text" in str(
        caught.value
    )


def test_a_field_the_schema_lacks_is_named(soap):
    document = ns.map_customer(customer(), tables())
    bad = Document(**{**document.__dict__, "payload": {**document.payload, "shoeSize": "44"}})
    with pytest.raises(PermanentError, match="shoeSize"):
        soap.to_record(bad)
