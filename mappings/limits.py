"""The field limits NetSuite and AvaTax enforce, and the checks that apply them to a payload.

A document over a limit would be refused by the vendor after the round trip (NetSuite
``EXCEEDED_MAX_FIELD_LENGTH``, AvaTax ``StringLengthError``); finsync refuses it while mapping,
naming the billing field, the limit and the fix. Pure data and pure functions: the map_*
functions call ``netsuite_problems`` / ``avatax_problems`` on the payload they built.

Sources: NetSuite's 2023_2 XSD types these fields plain ``xsd:string``; the lengths are
NetSuite's own (its field reference and the ``EXCEEDED_MAX_FIELD_LENGTH`` answers, e.g. "The
field addr1 contained more than the maximum number ( 150 ) of characters allowed."). AvaTax's
are the ``maxLength`` of its OpenAPI (CreateTransactionModel, LineItemModel, AddressLocationInfo).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from core.errors import Problem

#: NetSuite: most characters per string field, by field name (the same on every record type).
NETSUITE_MAX_LENGTHS: dict[str, int] = {
    "externalId": 255,
    "entityId": 83,
    "companyName": 83,
    "firstName": 32,
    "lastName": 32,
    "phone": 32,
    "email": 254,
    "tranId": 45,
    "memo": 999,
    "description": 4000,
    "label": 150,
    "attention": 150,
    "addressee": 150,
    "addrPhone": 32,
    "addr1": 150,
    "addr2": 150,
    "addr3": 150,
    "city": 50,
    "state": 30,
    "zip": 36,
}

#: AvaTax: maxLength per string field of the transaction, of a line and of an address.
AVATAX_MAX_LENGTHS: dict[str, dict[str, int]] = {
    "transaction": {
        "code": 50,
        "companyCode": 50,
        "customerCode": 50,
        "exemptionNo": 25,
        "entityUseCode": 25,
        "customerUsageType": 25,
        "purchaseOrderNo": 50,
        "referenceCode": 1024,
        "currencyCode": 3,
        "description": 2048,
        "email": 50,
    },
    "line": {"number": 50, "itemCode": 50, "taxCode": 25, "description": 2096},
    "address": {"line1": 50, "line2": 100, "line3": 100, "city": 50, "postalCode": 11},
}

#: The billing field each NetSuite field comes from, for the message (customer, invoice).
NETSUITE_SOURCES: dict[str, str] = {
    "externalId": "number",
    "entityId": "account_number",
    "companyName": "name",
    "email": "email",
    "tranId": "number",
    "memo": "memo",
    "description": "description",
    "addr1": "address_line1",
    "city": "city",
    "state": "region",
    "zip": "postal_code",
}

#: The billing field each AvaTax field comes from, for the message.
AVATAX_SOURCES: dict[str, str] = {
    "code": "number",
    "companyCode": "billing_entity",
    "customerCode": "customer_account",
    "exemptionNo": "customer.exemption_number",
    "referenceCode": "invoice_number",
    "number": "line_no",
    "itemCode": "product.sku",
    "taxCode": "product.tax_code",
    "description": "description",
    "line1": "customer.address_line1",
    "city": "customer.city",
    "postalCode": "customer.postal_code",
}

#: Values that come from the mapping file rather than from billing.
_FROM_MAPPING_FILE = frozenset({"companyCode"})


def _problem(where: str, value: str, limit: int, vendor: str, vendor_field: str) -> Problem:
    source = "the mapping file" if vendor_field in _FROM_MAPPING_FILE else "billing"
    return Problem(
        where,
        f"is {len(value)} characters; {vendor} accepts at most {limit} in {vendor_field}: "
        f"shorten it in {source}",
    )


def netsuite_problems(
    external_id: str,
    payload: Mapping[str, Any],
    *,
    sources: Mapping[str, str] | None = None,
    line_numbers: Sequence[int] = (),
) -> list[Problem]:
    """Every string of a NetSuite payload (body fields, sublist lines, addresses) and its
    external id that is longer than NetSuite stores.

    ``sources`` overrides ``NETSUITE_SOURCES`` (which billing field a NetSuite field comes
    from); ``line_numbers`` are the billing line numbers of the item lines, in order.
    """
    names = {**NETSUITE_SOURCES, **(sources or {})}
    problems: list[Problem] = []

    def check(where: str, field: str, value: Any) -> None:
        limit = NETSUITE_MAX_LENGTHS.get(field)
        if isinstance(value, str) and limit is not None and len(value) > limit:
            problems.append(_problem(where, value, limit, "NetSuite", field))

    check(names["externalId"], "externalId", external_id)
    for field, value in payload.items():
        if isinstance(value, list):
            for index, line in enumerate(value):
                number = line_numbers[index] if index < len(line_numbers) else index + 1
                for line_field, line_value in line.items():
                    if line_field == "addressbookAddress":
                        for name, member in line_value.items():
                            check(names.get(name, name), name, member)
                    else:
                        where = f"line {number}.{names.get(line_field, line_field)}"
                        check(where, line_field, line_value)
        else:
            check(names.get(field, field), field, value)
    return problems


def avatax_problems(model: Mapping[str, Any]) -> list[Problem]:
    """Every string of a CreateTransactionModel longer than the AvaTax OpenAPI allows."""
    problems: list[Problem] = []

    def check(where: str, field: str, value: Any, kind: str) -> None:
        limit = AVATAX_MAX_LENGTHS[kind].get(field)
        if isinstance(value, str) and limit is not None and len(value) > limit:
            problems.append(_problem(where, value, limit, "AvaTax", field))

    for field, value in model.items():
        check(AVATAX_SOURCES.get(field, field), field, value, "transaction")
    for line in model.get("lines", []):
        for field, value in line.items():
            where = f"line {line.get('number')}.{AVATAX_SOURCES.get(field, field)}"
            check(where, field, value, "line")
    for address in (model.get("addresses") or {}).values():
        for field, value in address.items():
            check(AVATAX_SOURCES.get(field, field), field, value, "address")
    return problems
