"""The SuiteQL the sandbox answers (``POST /services/rest/query/v1/suiteql``): a small subset.

``SELECT <columns | *> FROM <customer | transaction | accountingperiod>
[WHERE <column> = <value> | <column> IN (<value>, ...) [AND ...]] [ORDER BY <column> [ASC|DESC]]``

Values come back the way SuiteQL returns them: text, booleans as ``T``/``F``, dates as
``M/D/YYYY``, and a row leaves out the columns that are empty. Anything else is a
``SuiteQLError`` (NetSuite's "Invalid search query"), never a guess.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

from sandbox.netsuite.account import AccountSetup
from sandbox.netsuite.records import TRANSACTION_SEARCH_TYPES
from sandbox.netsuite.soap.record_xml import period_record
from sandbox.netsuite.store import Store

#: SuiteQL's transaction ``type`` of each record type the sandbox stores.
TRANSACTION_TYPE_CODES = {
    "invoice": "CustInvc",
    "creditMemo": "CustCred",
    "customerPayment": "CustPymt",
    "journalEntry": "Journal",
}

Getter = Callable[[dict[str, Any]], Any]


def _field(name: str) -> Getter:
    return lambda record: record.get(name)


def _total(record: dict[str, Any]) -> Any:
    return record.get("total", record.get("payment"))


#: Columns of each table: SuiteQL name -> how to read it from a normalized record.
COLUMNS: dict[str, dict[str, Getter]] = {
    "customer": {
        "id": _field("internalId"),
        "externalid": _field("externalId"),
        "entityid": _field("entityId"),
        "companyname": _field("companyName"),
        "email": _field("email"),
        "phone": _field("phone"),
        "isinactive": lambda r: bool(r.get("isInactive", False)),
        "subsidiary": _field("subsidiary"),
        "currency": _field("currency"),
    },
    "transaction": {
        "id": _field("internalId"),
        "externalid": _field("externalId"),
        "tranid": _field("tranId"),
        "trandate": _field("tranDate"),
        "type": _field("_type"),
        "entity": lambda r: r.get("entity", r.get("customer")),
        "memo": _field("memo"),
        "currency": _field("currency"),
        "postingperiod": _field("postingPeriod"),
        "foreigntotal": _total,
    },
    "accountingperiod": {
        "id": _field("internalId"),
        "periodname": _field("periodName"),
        "startdate": _field("startDate"),
        "enddate": _field("endDate"),
        "closed": _field("closed"),
        "isadjust": _field("isAdjust"),
        "isquarter": _field("isQuarter"),
        "isyear": _field("isYear"),
    },
}

_QUERY = re.compile(
    r"^\s*SELECT\s+(?P<columns>.+?)\s+FROM\s+(?P<table>\w+)"
    r"(?:\s+WHERE\s+(?P<where>.+?))?"
    r"(?:\s+ORDER\s+BY\s+(?P<order>\w+)(?:\s+(?P<direction>ASC|DESC))?)?\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_CONDITION = re.compile(
    r"^\s*(?P<column>\w+)\s*(?:=\s*(?P<value>'[^']*'|-?\d+)|\s+IN\s*\((?P<values>[^)]*)\))\s*$",
    re.IGNORECASE,
)
_VALUE = re.compile(r"\s*('[^']*'|-?\d+)\s*(?:,|$)")


class SuiteQLError(Exception):
    """A query the sandbox cannot run; the message says why."""


def run_suiteql(query: str, store: Store, setup: AccountSetup) -> list[dict[str, str]]:
    """The rows of ``query``, each a dict of column -> SuiteQL text. Raises SuiteQLError."""
    match = _QUERY.match(query)
    if match is None:
        raise SuiteQLError(
            "Invalid search query: the sandbox runs SELECT <columns> FROM <table> "
            "[WHERE ...] [ORDER BY ...]."
        )
    table = match["table"].lower()
    columns = COLUMNS.get(table)
    if columns is None:
        raise SuiteQLError(f"Invalid search query: unknown table {match['table']!r}.")
    wanted = _columns(match["columns"], columns)
    conditions = _conditions(match["where"], columns)
    order = (match["order"] or "").lower()
    if order and order not in columns:
        raise SuiteQLError(f"Invalid search query: unknown column {match['order']!r}.")
    rows = []
    for record in _records(table, store, setup):
        if all(_text(columns[c](record)) in values for c, values in conditions):
            rows.append(record)
    if order:
        rows.sort(key=lambda r: _sort_key(columns[order](r)), reverse=match["direction"] == "DESC")
    return [
        {c: _text(columns[c](r)) for c in wanted if columns[c](r) not in (None, "")} for r in rows
    ]


def _columns(text: str, columns: dict[str, Getter]) -> list[str]:
    if text.strip() == "*":
        return list(columns)
    names = [name.strip().lower() for name in text.split(",")]
    for name in names:
        if name not in columns:
            raise SuiteQLError(f"Invalid search query: unknown column {name!r}.")
    return names


def _conditions(text: str | None, columns: dict[str, Getter]) -> list[tuple[str, set[str]]]:
    if not text:
        return []
    conditions = []
    for part in re.split(r"\s+AND\s+", text, flags=re.IGNORECASE):
        match = _CONDITION.match(part)
        if match is None:
            raise SuiteQLError(f"Invalid search query: cannot read the condition {part.strip()!r}.")
        column = match["column"].lower()
        if column not in columns:
            raise SuiteQLError(f"Invalid search query: unknown column {match['column']!r}.")
        raw = [match["value"]] if match["value"] else _VALUE.findall(match["values"])
        conditions.append((column, {v.strip("'") for v in raw}))
    return conditions


def _records(table: str, store: Store, setup: AccountSetup) -> list[dict[str, Any]]:
    if table == "customer":
        return store.records("customer")
    if table == "accountingperiod":
        return [period_record(setup, p) for p in setup.periods]
    found = []
    for record_type in TRANSACTION_SEARCH_TYPES.values():
        for record in store.records(record_type):
            found.append({**record, "_type": TRANSACTION_TYPE_CODES[record_type]})
    return sorted(found, key=lambda r: int(r["internalId"]))


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "T" if value else "F"
    if isinstance(value, date):
        return f"{value.month}/{value.day}/{value.year}"
    if isinstance(value, Decimal):
        return format(value, "f")
    return "" if value is None else str(value)


def _sort_key(value: Any) -> tuple[int, Any]:
    if isinstance(value, date | Decimal):
        return (0, value)
    text = _text(value)
    return (0, int(text)) if text.isdigit() else (1, text)
