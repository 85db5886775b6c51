"""SuiteTalk SOAP (2023_2) at /services/NetSuitePort_2023_2: upsertList, getList and search.

Requests are parsed with a hardened lxml parser (no DTD, no entities, no network) and read the
way NetSuite reads them: records arrive as ``<record xsi:type="...">`` and each is checked and
answered on its own; failures of the whole request are SOAP faults (HTTP 500) with NetSuite's
fault element, code and message.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, cast

from lxml import etree

from sandbox.netsuite.account import AccountSetup, Period
from sandbox.netsuite.auth import Authenticator, AuthFailure
from sandbox.netsuite.countries import ENUM_TO_ISO, ISO_TO_ENUM
from sandbox.netsuite.faults import FaultScript
from sandbox.netsuite.records import (
    ACCOUNTING_PERIOD,
    ADDRESS_BY_NAME,
    ADDRESS_FIELDS,
    BY_XML_TYPE,
    NS_ACCOUNTING,
    NS_COMMON,
    NS_CORE,
    NS_CUSTOMERS,
    NS_FAULTS,
    NS_GENERAL,
    NS_MESSAGES,
    NS_RELATIONSHIPS,
    NS_SALES,
    SPECS,
    TRANSACTION_SEARCH_TYPES,
    TRANSACTION_TYPES,
    Field,
    RecordSpec,
    Sublist,
)
from sandbox.netsuite.store import RecordError, Ref, Store

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
_PREFIX = {uri: prefix for prefix, uri in NSMAP.items()}
_XSI_TYPE = f"{{{NS_XSI}}}type"

MAX_UPSERT = 100
MAX_GET = 1000
WRITE_OPERATIONS = frozenset({"upsertList"})

_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_pis=True,
)


@dataclass(frozen=True)
class SoapFault(Exception):
    """A fault of the whole request: NetSuite fault element (e.g. invalidCredentialsFault)."""

    element: str
    code: str
    message: str
    faultcode: str = "soapenv:Server.userException"


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
        element = etree.SubElement(detail, q(NS_FAULTS, fault.element))
        etree.SubElement(element, q(NS_FAULTS, "code")).text = fault.code
        etree.SubElement(element, q(NS_FAULTS, "message")).text = fault.message
    elif body_child is not None:
        body.append(body_child)
    return cast("bytes", etree.tostring(env, xml_declaration=True, encoding="UTF-8"))


def fault_reply(fault: SoapFault, operation: str, detail: str = "") -> SoapReply:
    """A SOAP fault answer (HTTP 500)."""
    return SoapReply(500, envelope(None, fault=fault), operation, detail=detail or fault.code)


def _qname_value(node: etree._Element, value: str) -> tuple[str | None, str]:
    prefix, _, local = value.rpartition(":")
    return node.nsmap.get(prefix or None), local


def _spec_of(node: etree._Element, xsi_type: str) -> RecordSpec | None:
    """The record type an ``xsi:type`` value names (None for an undeclared prefix too)."""
    namespace, local = _qname_value(node, xsi_type)
    return BY_XML_TYPE.get((namespace, local)) if namespace is not None else None


def _local(node: etree._Element) -> str:
    return cast("str", etree.QName(node).localname)


def _ns(node: etree._Element) -> str | None:
    return cast("str | None", etree.QName(node).namespace)


# ---- parsing of records ----------------------------------------------------------------------


def _text(node: etree._Element) -> str:
    return (node.text or "").strip()


def _bad_value(field: Field, text: str) -> RecordError:
    return RecordError("INVALID_FLD_VALUE", f"Invalid value {text!r} for field {field.name}.")


def parse_value(field: Field, node: etree._Element) -> Any:
    """One field's value from its element. Raises RecordError."""
    text = _text(node)
    if field.kind == "ref":
        internal, external = node.get("internalId"), node.get("externalId")
        if internal is None and external is None:
            raise RecordError(
                "INVALID_KEY_OR_REF", f"The {field.name} reference has no internalId or externalId."
            )
        return Ref(internal, external)
    if field.kind == "doc":
        if not text.isdigit():
            raise _bad_value(field, text)
        return Ref(internal_id=str(int(text)))
    if field.kind == "address":
        return _parse_address(node)
    if field.kind == "country":
        if text not in ENUM_TO_ISO:
            raise _bad_value(field, text)
        return ENUM_TO_ISO[text]
    if field.kind == "string":
        return node.text or ""
    if field.kind == "bool":
        if text not in ("true", "false", "1", "0"):
            raise _bad_value(field, text)
        return text in ("true", "1")
    if field.kind == "date":
        try:
            return date.fromisoformat(text[:10])
        except ValueError:
            raise _bad_value(field, text) from None
    return parse_decimal(field, text)


def _parse_address(node: etree._Element) -> dict[str, str]:
    """An ``Address`` subrecord: its fields are in the platformCommon namespace."""
    address: dict[str, str] = {}
    for child in node.iterchildren(tag=etree.Element):
        name = _local(child)
        member = ADDRESS_BY_NAME.get(name) if _ns(child) == NS_COMMON else None
        if member is None or name in address:
            raise RecordError("INVALID_FLD", f"The field {name} is not valid for an address.")
        address[name] = parse_value(member, child)
    return address


def parse_decimal(field: Field, text: str) -> Decimal:
    """A finite Decimal from the exact text; never through float. Raises RecordError."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise _bad_value(field, text) from None
    if not value.is_finite():
        raise _bad_value(field, text)
    return value


def parse_record(node: etree._Element) -> tuple[RecordSpec, str | None, dict[str, Any]]:
    """(spec, externalId, values) of a ``<record xsi:type=...>``. Raises RecordError."""
    xsi_type = node.get(_XSI_TYPE)
    if not xsi_type:
        raise RecordError("INVALID_RCRD_TYPE", "The record has no xsi:type.")
    spec = _spec_of(node, xsi_type)
    if spec is None or not spec.writable:
        raise RecordError("INVALID_RCRD_TYPE", f"The record type {xsi_type} is not supported.")
    if node.get("internalId") is not None:
        raise RecordError(
            "USER_ERROR",
            "An internalId is not allowed in an upsert: records are matched by externalId.",
        )
    values: dict[str, Any] = {}
    for child in node.iterchildren(tag=etree.Element):
        name = _local(child)
        member = spec.member(name) if _ns(child) == spec.namespace else None
        if member is None or name in values:
            raise RecordError("INVALID_FLD", f"The field {name} is not valid for {spec.type}.")
        if isinstance(member, Sublist):
            values[name] = [
                _parse_line(spec, member, line) for line in child.iterchildren(tag=etree.Element)
            ]
        else:
            values[name] = parse_value(member, child)
    return spec, node.get("externalId"), values


def _parse_line(spec: RecordSpec, sublist: Sublist, node: etree._Element) -> dict[str, Any]:
    if _ns(node) != spec.namespace or _local(node) != sublist.line_element:
        raise RecordError("INVALID_FLD", f"Unexpected element {_local(node)} in {sublist.name}.")
    line: dict[str, Any] = {}
    for child in node.iterchildren(tag=etree.Element):
        name = _local(child)
        member = sublist.field(name) if _ns(child) == spec.namespace else None
        if member is None or name in line:
            raise RecordError("INVALID_FLD", f"The field {name} is not valid for {sublist.name}.")
        line[name] = parse_value(member, child)
    return line


# ---- writing of records ----------------------------------------------------------------------


def format_value(field: Field, value: Any) -> str:
    """The XML text of a normalized value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return f"{value.isoformat()}T00:00:00"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _append_value(parent: etree._Element, ns: str, field: Field, value: Any) -> None:
    node = etree.SubElement(parent, q(ns, field.name))
    if field.kind == "ref":
        node.set("internalId", str(value))
    elif field.kind == "address":
        for member in ADDRESS_FIELDS:
            if member.name in value:
                _append_value(node, NS_COMMON, member, value[member.name])
    elif field.kind == "country":
        node.text = ISO_TO_ENUM[value]
    else:
        node.text = format_value(field, value)


def record_element(
    tag: str, spec: RecordSpec, record: dict[str, Any], *, body_only: bool = False
) -> etree._Element:
    """``record`` as an element named ``tag`` with ``xsi:type`` of its schema type."""
    node = etree.Element(tag)
    node.set(_XSI_TYPE, f"{_PREFIX[spec.namespace]}:{spec.xml_type}")
    if "internalId" in record:
        node.set("internalId", str(record["internalId"]))
    if record.get("externalId"):
        node.set("externalId", record["externalId"])
    for member in spec.members:
        if member.name not in record:
            continue
        if isinstance(member, Sublist):
            if body_only:
                continue
            sub = etree.SubElement(node, q(spec.namespace, member.name))
            for line in record[member.name]:
                line_node = etree.SubElement(sub, q(spec.namespace, member.line_element))
                for line_field in member.fields:
                    if line_field.name in line:
                        _append_value(line_node, spec.namespace, line_field, line[line_field.name])
        else:
            _append_value(node, spec.namespace, member, record[member.name])
    return node


def period_record(setup: AccountSetup, period: Period) -> dict[str, Any]:
    """The normalized AccountingPeriod record of ``period``."""
    closed = setup.is_closed(period)
    return {
        "internalId": period.internal_id,
        "periodName": period.name,
        "startDate": period.start,
        "endDate": period.end,
        "isAdjust": False,
        "isQuarter": False,
        "isYear": False,
        "closed": closed,
        "apLocked": closed,
        "arLocked": closed,
        "allLocked": closed,
    }


def _status(parent: etree._Element, error: RecordError | None = None) -> None:
    status = etree.SubElement(parent, q(NS_CORE, "status"))
    status.set("isSuccess", "false" if error else "true")
    if error is not None:
        detail = etree.SubElement(status, q(NS_CORE, "statusDetail"))
        detail.set("type", "ERROR")
        etree.SubElement(detail, q(NS_CORE, "code")).text = error.code
        etree.SubElement(detail, q(NS_CORE, "message")).text = error.message


def _record_ref(
    parent: etree._Element, record_type: str | None, internal: str | None, external: str | None
) -> None:
    ref = etree.SubElement(parent, q(NS_MESSAGES, "baseRef"))
    ref.set(_XSI_TYPE, "platformCore:RecordRef")
    if internal is not None:
        ref.set("internalId", internal)
    if external is not None:
        ref.set("externalId", external)
    if record_type is not None:
        ref.set("type", record_type)


# ---- the service -----------------------------------------------------------------------------


class SoapService:
    """Answers SOAP requests against one store, authenticator and fault script."""

    def __init__(
        self, store: Store, auth: Authenticator, faults: FaultScript, setup: AccountSetup
    ) -> None:
        self.store = store
        self.auth = auth
        self.faults = faults
        self.setup = setup

    def handle(self, payload: bytes) -> SoapReply:
        """Parse, authenticate and dispatch one request; never raises."""
        try:
            root = etree.fromstring(payload, _PARSER)
        except etree.XMLSyntaxError as exc:
            fault = SoapFault("", "", f"Invalid XML: {exc}", faultcode="soapenv:Client")
            return SoapReply(500, _plain_fault(fault), "?", detail="invalid XML")
        if root.getroottree().docinfo.doctype:
            fault = SoapFault("", "", "DOCTYPE is not allowed.", faultcode="soapenv:Client")
            return SoapReply(500, _plain_fault(fault), "?", detail="DOCTYPE refused")
        body = root.find(q(NS_SOAP, "Body"))
        if root.tag != q(NS_SOAP, "Envelope") or body is None or len(body) == 0:
            fault = SoapFault("", "", "Not a SOAP 1.1 envelope.", faultcode="soapenv:Client")
            return SoapReply(500, _plain_fault(fault), "?", detail="not an envelope")
        request = body[0]
        operation = _local(request)
        try:
            self._authenticate(root.find(q(NS_SOAP, "Header")))
        except AuthFailure as exc:
            return fault_reply(LOGIN_FAULT, operation, detail=f"auth refused: {exc.reason}")
        except SoapFault as fault:
            return fault_reply(fault, operation)
        handlers = {
            "upsertList": self._upsert_list,
            "getList": self._get_list,
            "search": self._search,
        }
        if _ns(request) != NS_MESSAGES or operation not in handlers:
            unsupported = SoapFault(
                "",
                "",
                f"Operation {operation} is not supported by the sandbox.",
                faultcode="soapenv:Client",
            )
            return SoapReply(
                500, _plain_fault(unsupported), operation, detail="unsupported operation"
            )
        try:
            return handlers[operation](root, request)
        except SoapFault as fault:
            return fault_reply(fault, operation)

    def _authenticate(self, header: etree._Element | None) -> None:
        passport = None if header is None else header.find(q(NS_MESSAGES, "tokenPassport"))
        if passport is None:
            raise SoapFault(
                "invalidSessionFault",
                "WS_LOG_IN_REQD",
                "You must log in before performing a web service operation: send a tokenPassport.",
            )
        parts: dict[str, str] = {}
        for name in ("account", "consumerKey", "token", "nonce", "timestamp", "signature"):
            node = passport.find(q(NS_CORE, name))
            if node is None:
                raise AuthFailure(f"tokenPassport has no {name}")
            parts[name] = _text(node)
        signature = passport.find(q(NS_CORE, "signature"))
        assert signature is not None
        self.auth.verify_token_passport(
            account=parts["account"],
            consumer_key=parts["consumerKey"],
            token=parts["token"],
            nonce=parts["nonce"],
            timestamp=parts["timestamp"],
            signature=parts["signature"],
            algorithm=signature.get("algorithm", ""),
        )

    def _upsert_list(self, root: etree._Element, request: etree._Element) -> SoapReply:
        nodes = request.findall(q(NS_MESSAGES, "record"))
        if len(nodes) > MAX_UPSERT:
            raise SoapFault(
                "exceededRecordCountFault",
                "MAX_RCRDS_EXCEEDED",
                f"upsertList accepts at most {MAX_UPSERT} records; the request has {len(nodes)}.",
            )
        response = etree.Element(q(NS_MESSAGES, "upsertListResponse"))
        result = etree.SubElement(response, q(NS_MESSAGES, "writeResponseList"))
        _status(result)
        errors = []
        for node in nodes:
            written = etree.SubElement(result, q(NS_MESSAGES, "writeResponse"))
            record_type, external_id = _declared(node), node.get("externalId")
            try:
                spec, external_id, values = parse_record(node)
                record_type = spec.type
                rejection = self.faults.rejection(external_id or "")
                if rejection is not None:
                    raise RecordError(*rejection)
                outcome = self.store.upsert(spec, external_id or "", values)
            except RecordError as error:
                errors.append(error.code)
                _status(written, error)
                _record_ref(written, record_type, None, external_id)
            else:
                _status(written)
                _record_ref(written, record_type, outcome.internal_id, external_id)
        return SoapReply(
            200, envelope(response), "upsertList", len(nodes), wrote=True, errors=errors
        )

    def _get_list(self, root: etree._Element, request: etree._Element) -> SoapReply:
        refs = request.findall(q(NS_MESSAGES, "baseRef"))
        if len(refs) > MAX_GET:
            raise SoapFault(
                "exceededRecordCountFault",
                "MAX_RCRDS_EXCEEDED",
                f"getList accepts at most {MAX_GET} references; the request has {len(refs)}.",
            )
        response = etree.Element(q(NS_MESSAGES, "getListResponse"))
        result = etree.SubElement(response, q(NS_MESSAGES, "readResponseList"))
        _status(result)
        errors = []
        for ref in refs:
            read = etree.SubElement(result, q(NS_MESSAGES, "readResponse"))
            try:
                spec, record = self._read(ref)
            except RecordError as error:
                errors.append(error.code)
                _status(read, error)
            else:
                _status(read)
                read.append(record_element(q(NS_MESSAGES, "record"), spec, record))
        return SoapReply(200, envelope(response), "getList", len(refs), errors=errors)

    def _read(self, ref: etree._Element) -> tuple[RecordSpec, dict[str, Any]]:
        record_type = ref.get("type")
        spec = SPECS.get(record_type or "")
        if spec is None:
            raise RecordError("INVALID_KEY_OR_REF", f"Unsupported record type {record_type!r}.")
        internal, external = ref.get("internalId"), ref.get("externalId")
        if spec is ACCOUNTING_PERIOD:
            period = self.setup.period(internal or "")
            if period is None:
                raise RecordError("RCRD_DSNT_EXIST", "That record does not exist.")
            return spec, period_record(self.setup, period)
        if internal is None and external is None:
            raise RecordError(
                "INVALID_KEY_OR_REF", "The reference has no internalId or externalId."
            )
        record = self.store.get(spec.type, internal_id=internal, external_id=external)
        if record is None:
            raise RecordError("RCRD_DSNT_EXIST", "That record does not exist.")
        return spec, record

    def _search(self, root: etree._Element, request: etree._Element) -> SoapReply:
        search = request.find(q(NS_MESSAGES, "searchRecord"))
        if search is None:
            raise SoapFault("", "", "search needs a searchRecord.", faultcode="soapenv:Client")
        page_size, body_only = _search_preferences(root)
        kind, basic = _search_kind(search)
        filters = _search_filters(basic)
        found: list[tuple[RecordSpec, dict[str, Any]]] = []
        if kind == "period":
            for period in self.setup.periods:
                record = period_record(self.setup, period)
                if _matches(record, filters, "accountingPeriod"):
                    found.append((ACCOUNTING_PERIOD, record))
        else:
            types = ["customer"] if kind == "customer" else sorted(TRANSACTION_TYPES)
            for record_type in types:
                for record in self.store.records(record_type):
                    if _matches(record, filters, record_type):
                        found.append((SPECS[record_type], record))
        response = etree.Element(q(NS_MESSAGES, "searchResponse"))
        result = etree.SubElement(response, q(NS_CORE, "searchResult"))
        _status(result)
        total_pages = max(1, -(-len(found) // page_size))
        for name, value in (
            ("totalRecords", len(found)),
            ("pageSize", page_size),
            ("totalPages", total_pages),
            ("pageIndex", 1),
        ):
            etree.SubElement(result, q(NS_CORE, name)).text = str(value)
        records = etree.SubElement(result, q(NS_CORE, "recordList"))
        for spec, record in found[:page_size]:
            records.append(record_element(q(NS_CORE, "record"), spec, record, body_only=body_only))
        return SoapReply(200, envelope(response), "search", len(found))


def _declared(node: etree._Element) -> str | None:
    xsi_type = node.get(_XSI_TYPE)
    if not xsi_type:
        return None
    spec = _spec_of(node, xsi_type)
    return spec.type if spec else None


def _plain_fault(fault: SoapFault) -> bytes:
    env = etree.Element(q(NS_SOAP, "Envelope"), nsmap={"soapenv": NS_SOAP})
    body = etree.SubElement(env, q(NS_SOAP, "Body"))
    node = etree.SubElement(body, q(NS_SOAP, "Fault"))
    etree.SubElement(node, "faultcode").text = fault.faultcode
    etree.SubElement(node, "faultstring").text = fault.message
    return cast("bytes", etree.tostring(env, xml_declaration=True, encoding="UTF-8"))


def _search_preferences(root: etree._Element) -> tuple[int, bool]:
    page_size, body_only = 1000, True
    prefs = root.find(f"{q(NS_SOAP, 'Header')}/{q(NS_MESSAGES, 'searchPreferences')}")
    if prefs is not None:
        size = prefs.find(q(NS_MESSAGES, "pageSize"))
        if size is not None and _text(size).isdigit():
            page_size = min(1000, max(5, int(_text(size))))
        only = prefs.find(q(NS_MESSAGES, "bodyFieldsOnly"))
        if only is not None:
            body_only = _text(only) in ("true", "1")
    return page_size, body_only


_SEARCH_TYPES = {
    (NS_COMMON, "TransactionSearchBasic"): ("transaction", False),
    (NS_SALES, "TransactionSearch"): ("transaction", True),
    (NS_COMMON, "CustomerSearchBasic"): ("customer", False),
    (NS_RELATIONSHIPS, "CustomerSearch"): ("customer", True),
    (NS_COMMON, "AccountingPeriodSearchBasic"): ("period", False),
    (NS_ACCOUNTING, "AccountingPeriodSearch"): ("period", True),
}


def _search_kind(search: etree._Element) -> tuple[str, etree._Element | None]:
    xsi_type = search.get(_XSI_TYPE) or ""
    namespace, local = _qname_value(search, xsi_type)
    found = _SEARCH_TYPES.get((namespace, local)) if namespace is not None else None
    if found is None:
        raise SoapFault(
            "",
            "",
            f"Search type {xsi_type!r} is not supported by the sandbox.",
            faultcode="soapenv:Client",
        )
    kind, advanced = found
    if not advanced:
        return kind, search
    type_ns = _qname_value(search, xsi_type)[0]
    basic = None
    for child in search.iterchildren(tag=etree.Element):
        if _local(child) == "basic" and _ns(child) == type_ns:
            basic = child
        else:
            raise SoapFault(
                "",
                "",
                f"Search join {_local(child)} is not supported by the sandbox.",
                faultcode="soapenv:Client",
            )
    return kind, basic


def _search_filters(basic: etree._Element | None) -> dict[str, tuple[str, set[str]]]:
    """field -> (operator, values) for externalId, internalId, type and closed."""
    filters: dict[str, tuple[str, set[str]]] = {}
    if basic is None:
        return filters
    for child in basic.iterchildren(tag=etree.Element):
        name = _local(child)
        values = [v for v in child if _local(v) == "searchValue"]
        if name in ("externalId", "internalId"):
            filters[name] = (
                child.get("operator", "anyOf"),
                {v.get(name) or "" for v in values},
            )
        elif name == "type":
            filters[name] = (child.get("operator", "anyOf"), {_text(v) for v in values})
        elif name == "closed":
            filters[name] = (
                "anyOf",
                {(_text(v) in ("true", "1") and "true") or "false" for v in values},
            )
        else:
            raise SoapFault(
                "",
                "",
                f"Search filter {name} is not supported by the sandbox.",
                faultcode="soapenv:Client",
            )
    return filters


def _matches(
    record: dict[str, Any], filters: dict[str, tuple[str, set[str]]], record_type: str
) -> bool:
    for name, (operator, values) in filters.items():
        if name == "type":
            value = next((k for k, v in TRANSACTION_SEARCH_TYPES.items() if v == record_type), "")
        elif name == "closed":
            value = "true" if record.get("closed") else "false"
        else:
            value = str(record.get(name, ""))
        hit = value in values
        if hit != (operator != "noneOf"):
            return False
    return True
