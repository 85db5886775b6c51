"""The SOAP service: one request parsed, its tokenPassport verified and its operation run against
the store (get, getList, add/update/upsert and their lists, search, searchMoreWithId)."""

from __future__ import annotations

import secrets
import threading
from typing import Any

from lxml import etree

from sandbox.netsuite.account import AccountSetup
from sandbox.netsuite.auth import Authenticator, AuthFailure
from sandbox.netsuite.faults import FaultScript
from sandbox.netsuite.records import (
    ACCOUNTING_PERIOD,
    NS_CORE,
    NS_MESSAGES,
    SPECS,
    TRANSACTION_TYPES,
    RecordSpec,
)
from sandbox.netsuite.soap.envelope import (
    LOGIN_FAULT,
    NS_SOAP,
    PARSER,
    SoapFault,
    SoapReply,
    element_text,
    envelope,
    fault_reply,
    local_name,
    namespace_of,
    q,
    sax_fault,
)
from sandbox.netsuite.soap.record_xml import (
    ParsedRecord,
    declared_type,
    parse_record,
    period_record,
    record_element,
    record_ref,
    status_element,
)
from sandbox.netsuite.soap.search import (
    MAX_KEPT_SEARCHES,
    KeptSearch,
    matches,
    search_filters,
    search_kind,
    search_page,
    search_preferences,
    total_pages,
)
from sandbox.netsuite.store import RecordError, Ref, Store

#: Records per request NetSuite accepts, by list operation (see ../shared/vendor-facts.md).
MAX_RECORDS = {"addList": 200, "updateList": 100, "upsertList": 100, "getList": 1000}

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
        self._searches: dict[str, KeptSearch] = {}
        self._searches_lock = threading.Lock()

    def handle(self, payload: bytes) -> SoapReply:
        """Parse, authenticate and dispatch one request; never raises."""
        try:
            root = etree.fromstring(payload, PARSER)
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
        operation = local_name(request)
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
        if namespace_of(request) != NS_MESSAGES or not known:
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
            parts[name] = element_text(node)
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
            status_element(parent)
        errors = []
        for node, item in zip(nodes, parsed, strict=True):
            written = etree.SubElement(parent, q(NS_MESSAGES, "writeResponse"))
            record_type, internal_id, external_id = (
                declared_type(node),
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
                status_element(written, error)
                record_ref(written, record_type, node.get("internalId"), external_id)
            else:
                status_element(written)
                record_ref(written, record_type, internal_id, external_id)
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
        status_element(result)
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
            status_element(read, error)
            return [error.code]
        status_element(read)
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
        page_size, body_only = search_preferences(root)
        kind, basic = search_kind(search)
        filters = search_filters(basic)
        found: list[tuple[RecordSpec, dict[str, Any]]] = []
        if kind == "period":
            for period in self.setup.periods:
                record = period_record(self.setup, period)
                if matches(record, filters, "accountingPeriod"):
                    found.append((ACCOUNTING_PERIOD, record))
        else:
            types = ["customer"] if kind == "customer" else sorted(TRANSACTION_TYPES)
            for record_type in types:
                for record in self.store.records(record_type):
                    if matches(record, filters, record_type):
                        found.append((SPECS[record_type], record))
        kept = KeptSearch(found, page_size, body_only)
        search_id = f"WEBSERVICES_{self.auth.account}_{secrets.token_hex(12)}"
        with self._searches_lock:
            self._searches[search_id] = kept
            while len(self._searches) > MAX_KEPT_SEARCHES:
                del self._searches[next(iter(self._searches))]
        response = etree.Element(q(NS_MESSAGES, "searchResponse"))
        search_page(response, kept, search_id, 1)
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
        elif not 1 <= page_index <= total_pages(kept):
            error = RecordError(
                "INVALID_PAGE_INDEX",
                f"Page {page_index} does not exist: the search has {total_pages(kept)} page(s).",
            )
        else:
            search_page(response, kept, search_id, page_index)
            return SoapReply(200, envelope(response), "searchMoreWithId", len(kept.found))
        result = etree.SubElement(response, q(NS_CORE, "searchResult"))
        status_element(result, error)
        return SoapReply(200, envelope(response), "searchMoreWithId", errors=[error.code])
