"""Reading NetSuite's SOAP replies with lxml: children by local name, text and flags, dates."""

from __future__ import annotations

from datetime import date
from typing import cast

from lxml import etree


def local_name(element: etree._Element) -> str:
    """The element's tag without its namespace."""
    return cast("str", etree.QName(element).localname)


def child(element: etree._Element | None, name: str) -> etree._Element | None:
    """The first child element called ``name`` (any namespace), or None."""
    if element is None:
        return None
    for found in element:
        if isinstance(found.tag, str) and local_name(found) == name:
            return found
    return None


def children(element: etree._Element | None, name: str) -> list[etree._Element]:
    """Every child element called ``name`` (any namespace)."""
    if element is None:
        return []
    return [c for c in element if isinstance(c.tag, str) and local_name(c) == name]


def text(element: etree._Element, name: str) -> str:
    """The stripped text of the child ``name``; empty when absent."""
    found = child(element, name)
    return (found.text or "").strip() if found is not None else ""


def flag(element: etree._Element, name: str) -> bool:
    """The boolean child ``name`` (``true`` or ``1``)."""
    return text(element, name) in ("true", "1")


def calendar_date(value: str) -> date:
    """The calendar date of a date field's dateTime.

    ``2024-03-01T00:00:00.000-08:00`` names the date in the account's time zone: the date is
    taken as written, never converted to UTC.
    """
    return date.fromisoformat(value[:10])
