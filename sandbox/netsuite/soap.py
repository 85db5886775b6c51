"""SuiteTalk SOAP (2023_2) at /services/NetSuitePort_2023_2: get, getList, add, addList,
update, updateList, upsert, upsertList, search and searchMoreWithId.

Requests are parsed with a hardened lxml parser (no DTD, no entities, no network) and read the
way NetSuite reads them: records arrive as ``<record xsi:type="...">`` and each is checked and
answered on its own (a string over its length is EXCEEDED_MAX_FIELD_LENGTH, a taken externalId
on add DUP_ENTITY). Failures of the whole request are SOAP faults (HTTP 500): NetSuite's fault
element, code and message, or, for XML that does not parse or an element the schema lacks, the
SAX fault NetSuite's Axis stack answers, with nothing of the request written.
"""

from __future__ import annotations

import secrets
import threading
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

#: Records per request NetSuite accepts, by list operation (see ../shared/vendor-facts.md).
MAX_RECORDS = {"addList": 200, "updateList": 100, "upsertList": 100, "getList": 1000}
#: How many search results the sandbox keeps for searchMoreWithId (oldest dropped first).
MAX_KEPT_SEARCHES = 200
NS_AXIS = "http://xml.apache.org/axis/"

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
            raise _invalid_element("platform.common", "Address", child)
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


def _invalid_element(package: str, xml_type: str, node: etree._Element) -> SoapFault:
    """NetSuite's SAX fault for an element its schema does not have where it was found."""
    return sax_fault(
        f"Invalid element in com.netsuite.webservices.{package}_2023_2.{xml_type} - {_local(node)}"
    )


def _package(spec: RecordSpec) -> str:
    # urn:sales_2023_2.transactions.webservices.netsuite.com -> transactions.sales
    area, _, rest = spec.namespace[len("urn:") :].partition("_2023_2.")
    return f"{rest.split('.', 1)[0]}.{area}"


@dataclass(frozen=True)
class ParsedRecord:
    """A ``<record>`` as read from the wire: its type, ids and field values."""

    spec: RecordSpec
    internal_id: str | None
    external_id: str | None
    values: dict[str, Any]


def parse_record(node: etree._Element) -> ParsedRecord:
    """The type, ids and values of a ``<record xsi:type=...>``.

    Raises RecordError for what NetSuite refuses record by record (an unknown type, a bad
    value) and SoapFault for what does not fit the schema (an unknown or repeated element),
    which NetSuite refuses for the whole request.
    """
    xsi_type = node.get(_XSI_TYPE)
    if not xsi_type:
        raise RecordError("INVALID_RCRD_TYPE", "The record has no xsi:type.")
    spec = _spec_of(node, xsi_type)
    if spec is None or not spec.writable:
        raise RecordError("INVALID_RCRD_TYPE", f"The record type {xsi_type} is not supported.")
    _check_schema(spec, node)
    values: dict[str, Any] = {}
    for child in node.iterchildren(tag=etree.Element):
        member = spec.member(_local(child))
        if isinstance(member, Sublist):
            values[member.name] = [
                _parse_line(member, line) for line in child.iterchildren(tag=etree.Element)
            ]
        elif member is not None:
            values[member.name] = parse_value(member, child)
    return ParsedRecord(spec, node.get("internalId"), node.get("externalId"), values)


def _check_schema(spec: RecordSpec, node: etree._Element) -> None:
    """Raise NetSuite's SAX fault for the first element the record's schema does not have
    (or has twice), before any value is read."""
    seen: set[str] = set()
    for child in node.iterchildren(tag=etree.Element):
        name = _local(child)
        member = spec.member(name) if _ns(child) == spec.namespace else None
        if member is None or name in seen:
            raise _invalid_element(_package(spec), spec.xml_type, child)
        seen.add(name)
        if not isinstance(member, Sublist):
            continue
        for line in child.iterchildren(tag=etree.Element):
            if _ns(line) != spec.namespace or _local(line) != member.line_element:
                raise _invalid_element(_package(spec), member.list_type, line)
            names: set[str] = set()
            for line_child in line.iterchildren(tag=etree.Element):
                line_name = _local(line_child)
                if (
                    _ns(line_child) != spec.namespace
                    or member.field(line_name) is None
                    or line_name in names
                ):
                    raise _invalid_element(_package(spec), member.line_type, line_child)
                names.add(line_name)


def _parse_line(sublist: Sublist, node: etree._Element) -> dict[str, Any]:
    line: dict[str, Any] = {}
    for child in node.iterchildren(tag=etree.Element):
        member = sublist.field(_local(child))
        assert member is not None  # _check_schema saw every element
        line[member.name] = parse_value(member, child)
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


@dataclass(frozen=True)
class _KeptSearch:
    """The results of one search, kept for searchMoreWithId."""

    found: list[tuple[RecordSpec, dict[str, Any]]]
    page_size: int
    body_only: bool


#: Write operations: (request element holds one record or a list, how each record is written).
_WRITES = {
    "add": (False, "add"),
    "addList": (True, "add"),
    "update": (False, "update"),
    "updateList": (True, "update"),
    "upsert": (False, "upsert"),
    "upsertList": (True, "upsert"),
}


class SoapService:
    """Answers SOAP requests against one store, authenticator and fault script."""

    def __init__(
        self, store: Store, auth: Authenticator, faults: FaultScript, setup: AccountSetup
    ) -> None:
        self.store = store
        self.auth = auth
        self.faults = faults
        self.setup = setup
        self._searches: dict[str, _KeptSearch] = {}
        self._searches_lock = threading.Lock()

    def handle(self, payload: bytes) -> SoapReply:
        """Parse, authenticate and dispatch one request; never raises."""
        try:
            root = etree.fromstring(payload, _PARSER)
        except etree.XMLSyntaxError as exc:
            fault = sax_fault(str(exc), "org.xml.sax.SAXParseException")
            return fault_reply(fault, "?", detail="invalid XML")
        if root.getroottree().docinfo.doctype:
            fault = sax_fault("DOCTYPE is not allowed.", "org.xml.sax.SAXParseException")
            return fault_reply(fault, "?", detail="DOCTYPE refused")
        body = root.find(q(NS_SOAP, "Body"))
        if root.tag != q(NS_SOAP, "Envelope") or body is None or len(body) == 0:
            fault = SoapFault("", "", "Not a SOAP 1.1 envelope.", faultcode="soapenv:Client")
            return fault_reply(fault, "?", detail="not an envelope")
        request = body[0]
        operation = _local(request)
        try:
            self._authenticate(root.find(q(NS_SOAP, "Header")))
        except AuthFailure as exc:
            return fault_reply(LOGIN_FAULT, operation, detail=f"auth refused: {exc.reason}")
        except SoapFault as fault:
            return fault_reply(fault, operation)
        handlers = {
            "get": self._get,
            "getList": self._get_list,
            "search": self._search,
            "searchMoreWithId": self._search_more_with_id,
        }
        known = operation in handlers or operation in _WRITES
        if _ns(request) != NS_MESSAGES or not known:
            unsupported = SoapFault(
                "",
                "",
                f"Operation {operation} is not supported by the sandbox.",
                faultcode="soapenv:Client",
            )
            return fault_reply(unsupported, operation, detail="unsupported operation")
        try:
            if operation in _WRITES:
                return self._write(request, operation)
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

    # ---- writes -------------------------------------------------------------------------------

    def _write(self, request: etree._Element, operation: str) -> SoapReply:
        is_list, mode = _WRITES[operation]
        nodes = request.findall(q(NS_MESSAGES, "record"))
        if is_list and len(nodes) > MAX_RECORDS[operation]:
            raise SoapFault(
                "exceededRecordCountFault",
                "MAX_RCRDS_EXCEEDED",
                f"{operation} accepts at most {MAX_RECORDS[operation]} records; the request "
                f"has {len(nodes)}.",
            )
        if not is_list and len(nodes) != 1:
            raise sax_fault(f"{operation} takes exactly one record; the request has {len(nodes)}.")
        # Every record is parsed before any is written: a schema violation anywhere refuses
        # the whole request, and nothing of it may have been applied.
        parsed: list[ParsedRecord | RecordError] = []
        for node in nodes:
            try:
                parsed.append(parse_record(node))
            except RecordError as error:
                parsed.append(error)
        response = etree.Element(q(NS_MESSAGES, f"{operation}Response"))
        parent = response
        if is_list:
            parent = etree.SubElement(response, q(NS_MESSAGES, "writeResponseList"))
            _status(parent)
        errors = []
        for node, item in zip(nodes, parsed, strict=True):
            written = etree.SubElement(parent, q(NS_MESSAGES, "writeResponse"))
            record_type, internal_id, external_id = (
                _declared(node),
                node.get("internalId"),
                node.get("externalId"),
            )
            try:
                if isinstance(item, RecordError):
                    raise item
                record_type = item.spec.type
                internal_id = self._write_one(mode, item)
            except RecordError as error:
                errors.append(error.code)
                _status(written, error)
                _record_ref(written, record_type, node.get("internalId"), external_id)
            else:
                _status(written)
                _record_ref(written, record_type, internal_id, external_id)
        return SoapReply(200, envelope(response), operation, len(nodes), wrote=True, errors=errors)

    def _write_one(self, mode: str, record: ParsedRecord) -> str:
        """Write one parsed record the way ``mode`` does; its internal id. Raises RecordError."""
        rejection = self.faults.rejection(record.external_id or "")
        if rejection is not None:
            raise RecordError(*rejection)
        if mode == "update":
            if record.internal_id is None and not record.external_id:
                raise RecordError(
                    "USER_ERROR", "An update needs the record's internalId or externalId."
                )
            ref = Ref(record.internal_id, None if record.internal_id else record.external_id)
            return self.store.update(record.spec, ref, record.values).internal_id
        if record.internal_id is not None:
            raise RecordError(
                "USER_ERROR",
                f"An internalId is not allowed in an {mode}: "
                + (
                    "records are matched by externalId."
                    if mode == "upsert"
                    else "NetSuite assigns it."
                ),
            )
        if mode == "add":
            return self.store.add(record.spec, record.external_id, record.values).internal_id
        return self.store.upsert(record.spec, record.external_id or "", record.values).internal_id

    # ---- reads --------------------------------------------------------------------------------

    def _get(self, root: etree._Element, request: etree._Element) -> SoapReply:
        refs = request.findall(q(NS_MESSAGES, "baseRef"))
        if len(refs) != 1:
            raise sax_fault(f"get takes exactly one baseRef; the request has {len(refs)}.")
        response = etree.Element(q(NS_MESSAGES, "getResponse"))
        errors = self._read_into(response, refs[0])
        return SoapReply(200, envelope(response), "get", 1, errors=errors)

    def _get_list(self, root: etree._Element, request: etree._Element) -> SoapReply:
        refs = request.findall(q(NS_MESSAGES, "baseRef"))
        if len(refs) > MAX_RECORDS["getList"]:
            raise SoapFault(
                "exceededRecordCountFault",
                "MAX_RCRDS_EXCEEDED",
                f"getList accepts at most {MAX_RECORDS['getList']} references; the request "
                f"has {len(refs)}.",
            )
        response = etree.Element(q(NS_MESSAGES, "getListResponse"))
        result = etree.SubElement(response, q(NS_MESSAGES, "readResponseList"))
        _status(result)
        errors = []
        for ref in refs:
            errors += self._read_into(result, ref)
        return SoapReply(200, envelope(response), "getList", len(refs), errors=errors)

    def _read_into(self, parent: etree._Element, ref: etree._Element) -> list[str]:
        """Append one readResponse for ``ref``; the error codes it carries."""
        read = etree.SubElement(parent, q(NS_MESSAGES, "readResponse"))
        try:
            spec, record = self._read(ref)
        except RecordError as error:
            _status(read, error)
            return [error.code]
        _status(read)
        read.append(record_element(q(NS_MESSAGES, "record"), spec, record))
        return []

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

    # ---- searches -----------------------------------------------------------------------------

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
        kept = _KeptSearch(found, page_size, body_only)
        search_id = f"WEBSERVICES_{self.auth.account}_{secrets.token_hex(12)}"
        with self._searches_lock:
            self._searches[search_id] = kept
            while len(self._searches) > MAX_KEPT_SEARCHES:
                del self._searches[next(iter(self._searches))]
        response = etree.Element(q(NS_MESSAGES, "searchResponse"))
        _search_page(response, kept, search_id, 1)
        return SoapReply(200, envelope(response), "search", len(found))

    def _search_more_with_id(self, root: etree._Element, request: etree._Element) -> SoapReply:
        search_id = request.findtext(q(NS_MESSAGES, "searchId"), "").strip()
        index_text = request.findtext(q(NS_MESSAGES, "pageIndex"), "").strip()
        if not index_text.lstrip("-").isdigit():
            raise sax_fault(f"Invalid pageIndex {index_text!r}: an xsd:int is required.")
        with self._searches_lock:
            kept = self._searches.get(search_id)
        response = etree.Element(q(NS_MESSAGES, "searchMoreWithIdResponse"))
        page_index = int(index_text)
        if kept is None:
            error = RecordError(
                "USER_ERROR",
                f"The search id {search_id!r} is not known or has expired: run the search again.",
            )
        elif not 1 <= page_index <= _total_pages(kept):
            error = RecordError(
                "INVALID_PAGE_INDEX",
                f"Page {page_index} does not exist: the search has {_total_pages(kept)} page(s).",
            )
        else:
            _search_page(response, kept, search_id, page_index)
            return SoapReply(200, envelope(response), "searchMoreWithId", len(kept.found))
        result = etree.SubElement(response, q(NS_CORE, "searchResult"))
        _status(result, error)
        return SoapReply(200, envelope(response), "searchMoreWithId", errors=[error.code])


def _total_pages(kept: _KeptSearch) -> int:
    return max(1, -(-len(kept.found) // kept.page_size))


def _search_page(
    parent: etree._Element, kept: _KeptSearch, search_id: str, page_index: int
) -> None:
    """Append the ``searchResult`` of one page of a kept search."""
    result = etree.SubElement(parent, q(NS_CORE, "searchResult"))
    _status(result)
    for name, value in (
        ("totalRecords", len(kept.found)),
        ("pageSize", kept.page_size),
        ("totalPages", _total_pages(kept)),
        ("pageIndex", page_index),
        ("searchId", search_id),
    ):
        etree.SubElement(result, q(NS_CORE, name)).text = str(value)
    records = etree.SubElement(result, q(NS_CORE, "recordList"))
    start = (page_index - 1) * kept.page_size
    for spec, record in kept.found[start : start + kept.page_size]:
        records.append(record_element(q(NS_CORE, "record"), spec, record, body_only=kept.body_only))


def _declared(node: etree._Element) -> str | None:
    xsi_type = node.get(_XSI_TYPE)
    if not xsi_type:
        return None
    spec = _spec_of(node, xsi_type)
    return spec.type if spec else None


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
