"""The SOAP 1.1 envelope as NetSuite's Axis stack answers it: namespaces, the hardened parser,
SOAP and SAX faults, the reply, and small element helpers."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import cast

from lxml import etree

from sandbox.netsuite.records import (
    NS_ACCOUNTING,
    NS_COMMON,
    NS_CORE,
    NS_CUSTOMERS,
    NS_FAULTS,
    NS_GENERAL,
    NS_MESSAGES,
    NS_RELATIONSHIPS,
    NS_SALES,
)

NS_SOAP = "http://schemas.xmlsoap.org/soap/envelope/"

NS_XSI = "http://www.w3.org/2001/XMLSchema-instance"

NSMAP = {
    "soapenv": NS_SOAP,
    "xsi": NS_XSI,
    "xsd": "http://www.w3.org/2001/XMLSchema",
    "platformCore": NS_CORE,
    "platformMsgs": NS_MESSAGES,
    "platformCommon": NS_COMMON,
    "platformFaults": NS_FAULTS,
    "tranSales": NS_SALES,
    "tranCust": NS_CUSTOMERS,
    "tranGeneral": NS_GENERAL,
    "listRel": NS_RELATIONSHIPS,
    "listAcct": NS_ACCOUNTING,
}

PREFIX = {uri: prefix for prefix, uri in NSMAP.items()}

XSI_TYPE = f"{{{NS_XSI}}}type"

NS_AXIS = "http://xml.apache.org/axis/"

PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_pis=True,
)


@dataclass(frozen=True)
class SoapFault(Exception):
    """A fault of the whole request: NetSuite fault element (e.g. invalidCredentialsFault),
    code and message; with no element it is a parser (SAX) fault, whose detail names only the
    host, as NetSuite's Axis stack answers."""

    element: str
    code: str
    message: str
    faultcode: str = "soapenv:Server.userException"


def sax_fault(message: str, exception: str = "org.xml.sax.SAXException") -> SoapFault:
    """The fault NetSuite answers when a request does not parse or does not fit the schema:
    the whole request is refused and nothing of it is applied."""
    return SoapFault("", "", f"{exception}: {message}")


LOGIN_FAULT = SoapFault(
    "invalidCredentialsFault", "INVALID_LOGIN_ATTEMPT", "Invalid login attempt."
)

CONCURRENCY_FAULT = SoapFault(
    "exceededConcurrentRequestLimitFault",
    "WS_REQUEST_BLOCKED",
    "The request could not be processed because too many requests are running concurrently "
    "for this account. Try again later.",
)


@dataclass
class SoapReply:
    """What the server sends back, plus what the request log records."""

    status: int
    body: bytes
    operation: str
    records: int = 0
    detail: str = ""
    wrote: bool = False
    errors: list[str] = field(default_factory=list)


def q(ns: str, name: str) -> str:
    """Clark notation ``{ns}name``."""
    return f"{{{ns}}}{name}"


def envelope(body_child: etree._Element | None, *, fault: SoapFault | None = None) -> bytes:
    """A SOAP 1.1 envelope with NetSuite's documentInfo header around ``body_child``."""
    env = etree.Element(q(NS_SOAP, "Envelope"), nsmap=NSMAP)
    header = etree.SubElement(env, q(NS_SOAP, "Header"))
    info = etree.SubElement(header, q(NS_MESSAGES, "documentInfo"))
    etree.SubElement(info, q(NS_MESSAGES, "nsId")).text = f"WEBSERVICES_{secrets.token_hex(8)}"
    body = etree.SubElement(env, q(NS_SOAP, "Body"))
    if fault is not None:
        node = etree.SubElement(body, q(NS_SOAP, "Fault"))
        etree.SubElement(node, "faultcode").text = fault.faultcode
        etree.SubElement(node, "faultstring").text = fault.message
        detail = etree.SubElement(node, "detail")
        if fault.element:
            element = etree.SubElement(detail, q(NS_FAULTS, fault.element))
            etree.SubElement(element, q(NS_FAULTS, "code")).text = fault.code
            etree.SubElement(element, q(NS_FAULTS, "message")).text = fault.message
        else:
            host = etree.SubElement(detail, q(NS_AXIS, "hostname"), nsmap={"ns1": NS_AXIS})
            host.text = "sandbox.netsuite.local"
    elif body_child is not None:
        body.append(body_child)
    return cast("bytes", etree.tostring(env, xml_declaration=True, encoding="UTF-8"))


def fault_reply(fault: SoapFault, operation: str, detail: str = "") -> SoapReply:
    """A SOAP fault answer (HTTP 500)."""
    return SoapReply(500, envelope(None, fault=fault), operation, detail=detail or fault.code)


def qname_value(node: etree._Element, value: str) -> tuple[str | None, str]:
    """The namespace and local name a ``prefix:name`` value means at ``node``."""
    prefix, _, local = value.rpartition(":")
    return node.nsmap.get(prefix or None), local


def local_name(node: etree._Element) -> str:
    """The element's local name."""
    return cast("str", etree.QName(node).localname)


def namespace_of(node: etree._Element) -> str | None:
    """The element's namespace (None if it has none)."""
    return cast("str | None", etree.QName(node).namespace)


def element_text(node: etree._Element) -> str:
    """The element's text, stripped."""
    return (node.text or "").strip()
