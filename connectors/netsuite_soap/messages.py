"""Building the records of an upsertList: finsync's neutral payloads as NetSuite SOAP elements.

A ``Document`` payload is neutral (dates as ISO strings, references as ``{"internalId": ...}``
or ``{"externalId": ...}``, sublists as lists of lines, countries as ISO codes).
``soap_fields`` translates it into the values of the SOAP record (dateTime dates, the Country
enumeration, sublist wrappers, ``doc`` ids as numbers), and ``RecordWriter`` writes those values
as lxml elements in the element order, namespaces and value formats of the WSDL's own types.

zeep stays the WSDL layer: it reads the schema, and the writer asks it, once per type, for the
ordered elements and attributes of the type and for the text of each simple value
(``xmlvalue``). What the writer no longer does is what made zeep slow on large batches: build a
value object per element, validate every keyword against every element of the type, then walk
the objects to render them. The tests compare the writer's records with zeep's own rendering of
the same values, element by element, for every record type finsync sends.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from lxml import etree

from connectors.netsuite_soap.settings import NS_COMMON, NS_CORE, NS_MESSAGES, NS_XSI, VERSION
from core.documents import Document
from core.netsuite_countries import NETSUITE_COUNTRIES

#: Record type (RecordRef ``type``) -> XSD type of the record.
RECORD_TYPES: Mapping[str, str] = {
    "customer": f"{{urn:relationships_{VERSION}.lists.webservices.netsuite.com}}Customer",
    "invoice": f"{{urn:sales_{VERSION}.transactions.webservices.netsuite.com}}Invoice",
    "creditMemo": f"{{urn:customers_{VERSION}.transactions.webservices.netsuite.com}}CreditMemo",
    "customerPayment": (
        f"{{urn:customers_{VERSION}.transactions.webservices.netsuite.com}}CustomerPayment"
    ),
    "customerRefund": (
        f"{{urn:customers_{VERSION}.transactions.webservices.netsuite.com}}CustomerRefund"
    ),
    "journalEntry": f"{{urn:general_{VERSION}.transactions.webservices.netsuite.com}}JournalEntry",
}
#: Neutral sublist key -> element of one line inside the SOAP list.
SUBLISTS: Mapping[str, str] = {
    "itemList": "item",
    "applyList": "apply",
    "addressbookList": "addressbook",
    "lineList": "line",
}
#: Neutral date fields; SOAP types them xsd:dateTime.
DATE_FIELDS = frozenset(
    {"tranDate", "dueDate", "revRecStartDate", "revRecEndDate", "startDate", "endDate", "applyDate"}
)
#: The element of one record in an upsertList.
RECORD_ELEMENT = f"{{{NS_MESSAGES}}}record"


def _country(code: str) -> str:
    """ISO 3166 alpha-2 -> NetSuite's Country enumeration (``US`` -> ``_unitedStates``).

    The table is generated from the 2023_2 XSD (tools/gen_netsuite_countries.py). The mapping
    refuses a country NetSuite does not list, so a KeyError here is a bug, raised as ValueError.
    """
    value = NETSUITE_COUNTRIES.get(code.upper())
    if value is None:
        raise ValueError(f"{code!r} is not a country of NetSuite's Country enumeration")
    return value


def _soap_date(value: str) -> str:
    # NetSuite dates are calendar dates; a dateTime without offset is read in the account's
    # own time zone, so the date is never shifted by a UTC conversion.
    return f"{date.fromisoformat(value).isoformat()}T00:00:00"


def _value(key: str, value: Any, doc_ids: Mapping[str, str]) -> Any:
    if key in DATE_FIELDS and isinstance(value, str):
        return _soap_date(value)
    if key == "doc" and isinstance(value, dict):
        if "internalId" in value:
            return int(value["internalId"])
        return int(doc_ids[value["externalId"]])
    if key == "country" and isinstance(value, str):
        return _country(value)
    if isinstance(value, dict):
        return {k: _value(k, v, doc_ids) for k, v in value.items()}
    if key in SUBLISTS and isinstance(value, list):
        lines = [_value("", line, doc_ids) for line in value]
        wrapper: dict[str, Any] = {SUBLISTS[key]: lines}
        if key != "applyList":
            wrapper["replaceAll"] = True
        return wrapper
    return value


def soap_fields(document: Document, doc_ids: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The SOAP record values of ``document`` (apply lines need ``doc_ids``: external -> internal
    id of what they apply to), ``externalId`` included."""
    fields = {k: _value(k, v, doc_ids or {}) for k, v in document.payload.items()}
    return {"externalId": document.external_id, **fields}


@dataclass(frozen=True)
class _Field:
    """One element of a complex type: its tag, its zeep type, and whether it repeats."""

    tag: str
    type: Any
    repeats: bool


@dataclass(frozen=True)
class _Plan:
    """How to write a value of one complex type: elements in schema order, attributes."""

    name: str
    fields: Mapping[str, _Field]
    order: Mapping[str, int]
    attributes: Mapping[str, tuple[str, Callable[[Any], str]]]
    #: Attributes the schema gives a default (written, as zeep writes them, when not set).
    defaults: Mapping[str, str]


@dataclass
class RecordWriter:
    """Writes SOAP records as lxml elements, in the order, namespaces and value formats of the
    WSDL's types (``get_type`` is zeep's ``Client.get_type``). Thread-safe; one per WSDL."""

    get_type: Callable[[str], Any]
    _plans: dict[int, _Plan] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, record_type: str, values: Mapping[str, Any]) -> etree._Element:
        """The ``<record xsi:type=...>`` element of one record of XSD type ``record_type``.

        Raises TypeError for a value the type has no element or attribute for (the mapping and
        the schema disagree) and ValueError for text XML cannot carry.
        """
        xsd_type = self.get_type(record_type)
        qname = etree.QName(record_type)
        namespaces = {"xsi": NS_XSI, "rec": qname.namespace, "core": NS_CORE, "common": NS_COMMON}
        if qname.namespace in (NS_CORE, NS_COMMON):
            del namespaces["rec"]
        element = etree.Element(RECORD_ELEMENT, nsmap=namespaces)
        prefix = next(p for p, uri in namespaces.items() if uri == qname.namespace)
        element.set(f"{{{NS_XSI}}}type", f"{prefix}:{qname.localname}")
        self._fill(element, self._plan(xsd_type), values)
        return element

    def _plan(self, xsd_type: Any) -> _Plan:
        plan = self._plans.get(id(xsd_type))
        if plan is None:
            with self._lock:
                plan = self._plans.get(id(xsd_type)) or self._make_plan(xsd_type)
                self._plans[id(xsd_type)] = plan
        return plan

    @staticmethod
    def _make_plan(xsd_type: Any) -> _Plan:
        fields = {
            name: _Field(_tag(element.qname), element.type, element.max_occurs != 1)
            for name, element in xsd_type.elements
        }
        attributes = {
            name: (_tag(attribute.qname), attribute.type.xmlvalue)
            for name, attribute in xsd_type.attributes
        }
        defaults = {
            _tag(attribute.qname): attribute.type.xmlvalue(attribute.default)
            for _, attribute in xsd_type.attributes
            if getattr(attribute, "default", None) is not None
        }
        return _Plan(
            name=str(xsd_type.name),
            fields=fields,
            order={name: n for n, name in enumerate(fields)},
            attributes=attributes,
            defaults=defaults,
        )

    def _fill(self, element: etree._Element, plan: _Plan, values: Mapping[str, Any]) -> None:
        children = []
        for tag, default in plan.defaults.items():
            element.set(tag, default)
        for name, value in values.items():
            if value is None:
                continue
            attribute = plan.attributes.get(name)
            if attribute is not None:
                element.set(attribute[0], attribute[1](value))
            elif name in plan.fields:
                children.append(name)
            else:
                raise TypeError(f"{plan.name} has no element or attribute {name!r}")
        children.sort(key=plan.order.__getitem__)
        for name in children:
            spec = plan.fields[name]
            value = values[name]
            for item in value if spec.repeats and isinstance(value, list) else (value,):
                self._element(element, spec, item)

    def _element(self, parent: etree._Element, spec: _Field, value: Any) -> None:
        element = etree.SubElement(parent, spec.tag)
        if isinstance(value, dict):
            self._fill(element, self._plan(spec.type), value)
            return
        xmlvalue = getattr(spec.type, "xmlvalue", None)
        if xmlvalue is None:
            raise TypeError(f"{spec.tag} takes a record of fields, not {value!r}")
        element.text = xmlvalue(value)


def _tag(qname: Any) -> str:
    return qname.text if isinstance(qname, etree.QName) else str(qname)
