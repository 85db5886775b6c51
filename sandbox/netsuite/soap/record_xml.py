"""Records as SuiteTalk XML: ``<record xsi:type>`` parsed and checked against the schema (value
types, addresses, lines), and records, statuses and references written back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from lxml import etree

from sandbox.netsuite.account import AccountSetup, Period
from sandbox.netsuite.countries import ENUM_TO_ISO, ISO_TO_ENUM
from sandbox.netsuite.records import (
    ADDRESS_BY_NAME,
    ADDRESS_FIELDS,
    BY_XML_TYPE,
    NS_COMMON,
    NS_CORE,
    NS_MESSAGES,
    Field,
    RecordSpec,
    Sublist,
)
from sandbox.netsuite.soap.envelope import (
    PREFIX,
    XSI_TYPE,
    SoapFault,
    element_text,
    local_name,
    namespace_of,
    q,
    qname_value,
    sax_fault,
)
from sandbox.netsuite.store import RecordError, Ref


def spec_of(node: etree._Element, xsi_type: str) -> RecordSpec | None:
    """The record type an ``xsi:type`` value names (None for an undeclared prefix too)."""
    namespace, local = qname_value(node, xsi_type)
    return BY_XML_TYPE.get((namespace, local)) if namespace is not None else None


def _bad_value(field: Field, text: str) -> RecordError:
    return RecordError("INVALID_FLD_VALUE", f"Invalid value {text!r} for field {field.name}.")


def parse_value(field: Field, node: etree._Element) -> Any:
    """One field's value from its element. Raises RecordError."""
    text = element_text(node)
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
        name = local_name(child)
        member = ADDRESS_BY_NAME.get(name) if namespace_of(child) == NS_COMMON else None
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
    where = f"com.netsuite.webservices.{package}_2023_2.{xml_type}"
    return sax_fault(f"Invalid element in {where} - {local_name(node)}")


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
    xsi_type = node.get(XSI_TYPE)
    if not xsi_type:
        raise RecordError("INVALID_RCRD_TYPE", "The record has no xsi:type.")
    spec = spec_of(node, xsi_type)
    if spec is None or not spec.writable:
        raise RecordError("INVALID_RCRD_TYPE", f"The record type {xsi_type} is not supported.")
    _check_schema(spec, node)
    values: dict[str, Any] = {}
    for child in node.iterchildren(tag=etree.Element):
        member = spec.member(local_name(child))
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
        name = local_name(child)
        member = spec.member(name) if namespace_of(child) == spec.namespace else None
        if member is None or name in seen:
            raise _invalid_element(_package(spec), spec.xml_type, child)
        seen.add(name)
        if not isinstance(member, Sublist):
            continue
        for line in child.iterchildren(tag=etree.Element):
            if namespace_of(line) != spec.namespace or local_name(line) != member.line_element:
                raise _invalid_element(_package(spec), member.list_type, line)
            names: set[str] = set()
            for line_child in line.iterchildren(tag=etree.Element):
                line_name = local_name(line_child)
                if (
                    namespace_of(line_child) != spec.namespace
                    or member.field(line_name) is None
                    or line_name in names
                ):
                    raise _invalid_element(_package(spec), member.line_type, line_child)
                names.add(line_name)


def _parse_line(sublist: Sublist, node: etree._Element) -> dict[str, Any]:
    line: dict[str, Any] = {}
    for child in node.iterchildren(tag=etree.Element):
        member = sublist.field(local_name(child))
        assert member is not None  # _check_schema saw every element
        line[member.name] = parse_value(member, child)
    return line


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
    node.set(XSI_TYPE, f"{PREFIX[spec.namespace]}:{spec.xml_type}")
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


def status_element(parent: etree._Element, error: RecordError | None = None) -> None:
    """Append a ``status`` (success, or the error's code and message) to ``parent``."""
    status = etree.SubElement(parent, q(NS_CORE, "status"))
    status.set("isSuccess", "false" if error else "true")
    if error is not None:
        detail = etree.SubElement(status, q(NS_CORE, "statusDetail"))
        detail.set("type", "ERROR")
        etree.SubElement(detail, q(NS_CORE, "code")).text = error.code
        etree.SubElement(detail, q(NS_CORE, "message")).text = error.message


def record_ref(
    parent: etree._Element, record_type: str | None, internal: str | None, external: str | None
) -> None:
    """Append the ``baseRef`` of a written record to ``parent``."""
    ref = etree.SubElement(parent, q(NS_MESSAGES, "baseRef"))
    ref.set(XSI_TYPE, "platformCore:RecordRef")
    if internal is not None:
        ref.set("internalId", internal)
    if external is not None:
        ref.set("externalId", external)
    if record_type is not None:
        ref.set("type", record_type)


def declared_type(node: etree._Element) -> str | None:
    """The record type named by the element's ``xsi:type`` (None if absent or unknown)."""
    xsi_type = node.get(XSI_TYPE)
    if not xsi_type:
        return None
    spec = spec_of(node, xsi_type)
    return spec.type if spec else None
