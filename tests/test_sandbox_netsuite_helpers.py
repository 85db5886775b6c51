"""Raw-wire helpers for the NetSuite sandbox tests: SOAP envelopes with a tokenPassport, written
by hand from NetSuite's documented algorithm (no finsync client code involved)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable
from xml.sax.saxutils import quoteattr

import httpx
from lxml import etree

from sandbox.netsuite import SandboxCredentials

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
MSGS = "urn:messages_2023_2.platform.webservices.netsuite.com"
CORE = "urn:core_2023_2.platform.webservices.netsuite.com"
FAULTS = "urn:faults_2023_2.platform.webservices.netsuite.com"
NSDECL = (
    f'xmlns:soapenv="{SOAP}" xmlns:msgs="{MSGS}" xmlns:core="{CORE}" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'xmlns:common="urn:common_2023_2.platform.webservices.netsuite.com" '
    'xmlns:sales="urn:sales_2023_2.transactions.webservices.netsuite.com" '
    'xmlns:cust="urn:customers_2023_2.transactions.webservices.netsuite.com" '
    'xmlns:gen="urn:general_2023_2.transactions.webservices.netsuite.com" '
    'xmlns:rel="urn:relationships_2023_2.lists.webservices.netsuite.com" '
    'xmlns:acct="urn:accounting_2023_2.lists.webservices.netsuite.com"'
)


def signature(creds: SandboxCredentials, account: str, nonce: str, timestamp: str) -> str:
    """base64(HMAC-SHA256(consumerSecret&tokenSecret, account&ck&token&nonce&timestamp))."""
    base = "&".join((account, creds.consumer_key, creds.token_id, nonce, timestamp))
    key = f"{creds.consumer_secret.reveal()}&{creds.token_secret.reveal()}"  # type: ignore[union-attr]
    return base64.b64encode(hmac.new(key.encode(), base.encode(), hashlib.sha256).digest()).decode()


def passport_xml(
    creds: SandboxCredentials,
    account: str = "1234567_SB1",
    *,
    nonce: str | None = None,
    timestamp: int | None = None,
    sign_with: SandboxCredentials | None = None,
) -> str:
    """A tokenPassport header element."""
    nonce = nonce or secrets.token_hex(12)
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    sig = signature(sign_with or creds, account, nonce, stamp)
    return (
        f"<msgs:tokenPassport><core:account>{account}</core:account>"
        f"<core:consumerKey>{creds.consumer_key}</core:consumerKey>"
        f"<core:token>{creds.token_id}</core:token><core:nonce>{nonce}</core:nonce>"
        f"<core:timestamp>{stamp}</core:timestamp>"
        f'<core:signature algorithm="HMAC-SHA256">{sig}</core:signature></msgs:tokenPassport>'
    )


def envelope(body: str, header: str = "") -> str:
    """A SOAP 1.1 envelope with the NetSuite namespaces declared."""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope {NSDECL}>'
        f"<soapenv:Header>{header}</soapenv:Header><soapenv:Body>{body}</soapenv:Body>"
        "</soapenv:Envelope>"
    )


def post(endpoint: str, xml: str, action: str = "upsertList") -> tuple[int, etree._Element]:
    """POST an envelope; the HTTP status and the parsed answer."""
    response = httpx.post(
        endpoint,
        content=xml.encode(),
        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": action},
        timeout=10,
    )
    return response.status_code, etree.fromstring(response.content)


def call(endpoint: str, creds: SandboxCredentials, body: str, **passport: object) -> etree._Element:
    """POST ``body`` with a valid passport; the parsed answer (asserts HTTP 200)."""
    status, root = post(endpoint, envelope(body, passport_xml(creds, **passport)))  # type: ignore[arg-type]
    assert status == 200, etree.tostring(root)
    return root


def upsert(
    endpoint: str, creds: SandboxCredentials, records: Iterable[str]
) -> list[dict[str, str]]:
    """upsertList; per record: isSuccess, code, message, internalId, externalId, type."""
    root = call(endpoint, creds, f"<msgs:upsertList>{''.join(records)}</msgs:upsertList>")
    return write_results(root)


def write_results(root: etree._Element) -> list[dict[str, str]]:
    """The writeResponses of an upsertList answer, flattened."""
    results = []
    for written in root.iter(f"{{{MSGS}}}writeResponse"):
        status = written.find(f"{{{CORE}}}status")
        ref = written.find(f"{{{MSGS}}}baseRef")
        assert status is not None and ref is not None
        results.append(
            {
                "isSuccess": status.get("isSuccess", ""),
                "code": status.findtext(f".//{{{CORE}}}code") or "",
                "message": status.findtext(f".//{{{CORE}}}message") or "",
                "internalId": ref.get("internalId") or "",
                "externalId": ref.get("externalId") or "",
                "type": ref.get("type") or "",
            }
        )
    return results


def fault_of(root: etree._Element) -> tuple[str, str, str]:
    """(detail element local name, code, message) of a SOAP fault answer."""
    detail = root.find(f".//{{{SOAP}}}Fault/detail")
    assert detail is not None, etree.tostring(root)
    element = detail[0]
    return (
        etree.QName(element).localname,
        element.findtext(f"{{{FAULTS}}}code") or "",
        element.findtext(f"{{{FAULTS}}}message") or "",
    )


def ref(name: str, prefix: str, internal: str | None = None, external: str | None = None) -> str:
    """A RecordRef field element."""
    attrs = ""
    if internal is not None:
        attrs += f" internalId={quoteattr(internal)}"
    if external is not None:
        attrs += f" externalId={quoteattr(external)}"
    return f"<{prefix}:{name}{attrs}/>"


def customer(ext: str, subsidiary: str = "1", **extra: str) -> str:
    """A Customer record element."""
    fields = "".join(f"<rel:{k}>{v}</rel:{k}>" for k, v in extra.items())
    return (
        f'<msgs:record xsi:type="rel:Customer" externalId="{ext}">'
        f"<rel:entityId>{ext}</rel:entityId><rel:isPerson>false</rel:isPerson>"
        f"<rel:companyName>Company {ext}</rel:companyName>{fields}"
        f"{ref('subsidiary', 'rel', subsidiary)}</msgs:record>"
    )


def invoice(
    ext: str,
    customer_ext: str,
    lines: Iterable[tuple[str, str]] = (("101", "100.00"),),
    *,
    tran_date: str = "2024-03-15",
    extra: str = "",
    line_extra: str = "",
) -> str:
    """An Invoice record element; ``lines`` are (item id, amount)."""
    items = "".join(
        f"<sales:item>{ref('item', 'sales', item)}<sales:amount>{amount}</sales:amount>"
        f"{ref('taxCode', 'sales', '11')}{line_extra}</sales:item>"
        for item, amount in lines
    )
    return (
        f'<msgs:record xsi:type="sales:Invoice" externalId="{ext}">'
        f"{ref('entity', 'sales', external=customer_ext)}"
        f"<sales:tranDate>{tran_date}T00:00:00</sales:tranDate>{extra}"
        f"<sales:itemList>{items}</sales:itemList></msgs:record>"
    )


def payment(ext: str, customer_ext: str, amount: str, applies: Iterable[tuple[str, str]]) -> str:
    """A CustomerPayment element; ``applies`` are (invoice internal id, amount)."""
    apply = "".join(
        f"<cust:apply><cust:apply>true</cust:apply><cust:doc>{doc}</cust:doc>"
        f"<cust:amount>{amt}</cust:amount></cust:apply>"
        for doc, amt in applies
    )
    return (
        f'<msgs:record xsi:type="cust:CustomerPayment" externalId="{ext}">'
        f"{ref('customer', 'cust', external=customer_ext)}<cust:payment>{amount}</cust:payment>"
        f"<cust:tranDate>2024-03-20T00:00:00</cust:tranDate>"
        f"<cust:applyList>{apply}</cust:applyList></msgs:record>"
    )


def journal(ext: str, lines: Iterable[tuple[str, str, str]], tran_date: str = "2024-03-31") -> str:
    """A JournalEntry; ``lines`` are (account, 'debit'|'credit', amount)."""
    body = "".join(
        f"<gen:line>{ref('account', 'gen', account)}<gen:{side}>{amount}</gen:{side}></gen:line>"
        for account, side, amount in lines
    )
    return (
        f'<msgs:record xsi:type="gen:JournalEntry" externalId="{ext}">'
        f"<gen:tranDate>{tran_date}T00:00:00</gen:tranDate>{ref('subsidiary', 'gen', '1')}"
        f"<gen:lineList>{body}</gen:lineList></msgs:record>"
    )
