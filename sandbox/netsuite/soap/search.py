"""search and searchMoreWithId: the supported search types, their filters, search preferences,
and the kept results answered page by page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lxml import etree

from sandbox.netsuite.records import (
    NS_ACCOUNTING,
    NS_COMMON,
    NS_CORE,
    NS_MESSAGES,
    NS_RELATIONSHIPS,
    NS_SALES,
    TRANSACTION_SEARCH_TYPES,
    RecordSpec,
)
from sandbox.netsuite.soap.envelope import (
    NS_SOAP,
    XSI_TYPE,
    SoapFault,
    element_text,
    local_name,
    namespace_of,
    q,
    qname_value,
)
from sandbox.netsuite.soap.record_xml import record_element, status_element

#: How many search results the sandbox keeps for searchMoreWithId (oldest dropped first).
MAX_KEPT_SEARCHES = 200


@dataclass(frozen=True)
class KeptSearch:
    """The results of one search, kept for searchMoreWithId."""

    found: list[tuple[RecordSpec, dict[str, Any]]]
    page_size: int
    body_only: bool


def total_pages(kept: KeptSearch) -> int:
    """How many pages the kept search has."""
    return max(1, -(-len(kept.found) // kept.page_size))


def search_page(parent: etree._Element, kept: KeptSearch, search_id: str, page_index: int) -> None:
    """Append the ``searchResult`` of one page of a kept search."""
    result = etree.SubElement(parent, q(NS_CORE, "searchResult"))
    status_element(result)
    for name, value in (
        ("totalRecords", len(kept.found)),
        ("pageSize", kept.page_size),
        ("totalPages", total_pages(kept)),
        ("pageIndex", page_index),
        ("searchId", search_id),
    ):
        etree.SubElement(result, q(NS_CORE, name)).text = str(value)
    records = etree.SubElement(result, q(NS_CORE, "recordList"))
    start = (page_index - 1) * kept.page_size
    for spec, record in kept.found[start : start + kept.page_size]:
        records.append(record_element(q(NS_CORE, "record"), spec, record, body_only=kept.body_only))


def search_preferences(root: etree._Element) -> tuple[int, bool]:
    """The request's pageSize (5..1000) and bodyFieldsOnly."""
    page_size, body_only = 1000, True
    prefs = root.find(f"{q(NS_SOAP, 'Header')}/{q(NS_MESSAGES, 'searchPreferences')}")
    if prefs is not None:
        size = prefs.find(q(NS_MESSAGES, "pageSize"))
        if size is not None and element_text(size).isdigit():
            page_size = min(1000, max(5, int(element_text(size))))
        only = prefs.find(q(NS_MESSAGES, "bodyFieldsOnly"))
        if only is not None:
            body_only = element_text(only) in ("true", "1")
    return page_size, body_only


_SEARCH_TYPES = {
    (NS_COMMON, "TransactionSearchBasic"): ("transaction", False),
    (NS_SALES, "TransactionSearch"): ("transaction", True),
    (NS_COMMON, "CustomerSearchBasic"): ("customer", False),
    (NS_RELATIONSHIPS, "CustomerSearch"): ("customer", True),
    (NS_COMMON, "AccountingPeriodSearchBasic"): ("period", False),
    (NS_ACCOUNTING, "AccountingPeriodSearch"): ("period", True),
}


def search_kind(search: etree._Element) -> tuple[str, etree._Element | None]:
    """The searched kind and its basic search element; a fault for an unsupported type."""
    xsi_type = search.get(XSI_TYPE) or ""
    namespace, local = qname_value(search, xsi_type)
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
    type_ns = qname_value(search, xsi_type)[0]
    basic = None
    for child in search.iterchildren(tag=etree.Element):
        if local_name(child) == "basic" and namespace_of(child) == type_ns:
            basic = child
        else:
            raise SoapFault(
                "",
                "",
                f"Search join {local_name(child)} is not supported by the sandbox.",
                faultcode="soapenv:Client",
            )
    return kind, basic


def search_filters(basic: etree._Element | None) -> dict[str, tuple[str, set[str]]]:
    """field -> (operator, values) for externalId, internalId, type and closed."""
    filters: dict[str, tuple[str, set[str]]] = {}
    if basic is None:
        return filters
    for child in basic.iterchildren(tag=etree.Element):
        name = local_name(child)
        values = [v for v in child if local_name(v) == "searchValue"]
        if name in ("externalId", "internalId"):
            filters[name] = (
                child.get("operator", "anyOf"),
                {v.get(name) or "" for v in values},
            )
        elif name == "type":
            filters[name] = (child.get("operator", "anyOf"), {element_text(v) for v in values})
        elif name == "closed":
            filters[name] = (
                "anyOf",
                {(element_text(v) in ("true", "1") and "true") or "false" for v in values},
            )
        else:
            raise SoapFault(
                "",
                "",
                f"Search filter {name} is not supported by the sandbox.",
                faultcode="soapenv:Client",
            )
    return filters


def matches(
    record: dict[str, Any], filters: dict[str, tuple[str, set[str]]], record_type: str
) -> bool:
    """True if the record passes every filter."""
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
