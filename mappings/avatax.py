"""Billing invoices and credit notes to Avalara AvaTax transactions (REST v2).

A finalized invoice becomes a committed ``SalesInvoice`` sent through CreateOrAdjustTransaction,
which is AvaTax's idempotent route: the document code (the invoice number) identifies it, so a
repeated send adjusts the same document instead of creating a second one. The tax billing
charged travels as a document-level ``TaxAmount`` override, so the engine records what the
customer actually paid while still computing its own figure (``totalTaxCalculated``); the
difference is what the tax reconciliation shows.

A credit note becomes a committed ``ReturnInvoice`` with negative amounts, referring to its
invoice (``referenceCode``) and taxed as of the invoice date (a ``TaxDate`` override); each
line carries the tax billing credited as a line-level ``TaxAmount`` override.

A voided invoice or credit note becomes operation ``void`` (VoidTransactionModel, ``DocVoided``).

Refunds are not sent: a refund of an over-payment moves cash, not a taxable sale, and a refund
of a credit note is already covered by that credit note's ``ReturnInvoice``.

Payloads are JSON-compatible with amounts as exact decimal strings; the connector writes them
as JSON numbers. Pure functions: no I/O, no clock, no float.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from billing.records import CreditNote, Customer, Invoice
from billing.validation import credit_note_problems, invoice_problems
from core.documents import DocKey, Document
from core.errors import MappingError, Problem
from mappings.limits import avatax_problems
from mappings.tables import MappingTables

TARGET = "avatax"

SALES_INVOICE = "SalesInvoice"
RETURN_INVOICE = "ReturnInvoice"

#: Countries whose tax depends on the region (state or province): the address must name it.
_REGION_REQUIRED = frozenset({"US", "CA"})


def map_invoice(inv: Invoice, customer: Customer | None, t: MappingTables) -> Document:
    """Map an invoice to a committed SalesInvoice, or to a void when billing voided it.

    ``customer`` is the invoice's customer record (its address decides the tax); None when the
    customer does not exist. Raises MappingError listing every problem of the record.
    """
    problems: list[Problem] = []
    company = _company(inv.billing_entity, t, problems)
    if inv.status == "void":
        if problems:
            raise MappingError(inv.label, problems)
        return _void_document(
            kind="invoice",
            source_id=str(inv.id),
            code=inv.number,
            company=str(company),
            doc_type=SALES_INVOICE,
            label=inv.label,
            depends_on=(),
        )

    problems += invoice_problems(inv)
    address = _address(customer, inv.customer_id, problems)
    exemption = _exemption(customer, problems)
    lines: list[dict[str, Any]] = []
    for line in inv.lines:
        item: dict[str, Any] = {
            "number": str(line.line_no),
            "quantity": _dec(line.quantity),
            "amount": _dec(line.amount),
            "description": line.description,
        }
        if line.product is not None:
            item["itemCode"] = line.product.sku
            if line.product.tax_code:
                item["taxCode"] = line.product.tax_code
        lines.append(item)
    if problems:
        raise MappingError(inv.label, problems)

    assert inv.issue_date is not None and inv.customer_account is not None  # checked above
    model: dict[str, Any] = {
        "type": SALES_INVOICE,
        "companyCode": company,
        "code": inv.number,
        "customerCode": inv.customer_account,
        "date": inv.issue_date.isoformat(),
        "currencyCode": inv.currency,
        "addresses": {"singleLocation": address},
        "lines": lines,
        "commit": True,
        "taxOverride": {
            "type": "TaxAmount",
            "taxAmount": _dec(inv.tax_total),
            "reason": f"Tax charged by billing on invoice {inv.number}",
        },
    }
    if exemption:
        model["exemptionNo"] = exemption
    if length_problems := avatax_problems(model):
        raise MappingError(inv.label, length_problems)
    return Document(
        target=TARGET,
        kind="invoice",
        source_id=str(inv.id),
        external_id=inv.number,
        record_type=SALES_INVOICE,
        label=inv.label,
        payload={"createTransactionModel": model},
    )


def map_credit_note(
    note: CreditNote, customer: Customer | None, invoice_date: date | None, t: MappingTables
) -> Document:
    """Map a credit note to a committed ReturnInvoice referring to its invoice, or to a void.

    ``customer`` is the credit note's customer record; ``invoice_date`` the issue date of the
    invoice it credits (the return is taxed as of that date). Raises MappingError listing every
    problem of the record.
    """
    problems: list[Problem] = []
    company: str | None = None
    if note.billing_entity is None:
        problems.append(
            Problem(
                "invoice_id",
                f"invoice {note.invoice_id} does not exist, so the billing entity is unknown",
            )
        )
    else:
        company = _company(note.billing_entity, t, problems)
    depends_on = (DocKey("invoice", str(note.invoice_id)),)
    if note.status == "void":
        if problems:
            raise MappingError(note.label, problems)
        return _void_document(
            kind="credit_note",
            source_id=str(note.id),
            code=note.number,
            company=str(company),
            doc_type=RETURN_INVOICE,
            label=note.label,
            depends_on=depends_on,
        )

    problems += credit_note_problems(note)
    if not note.lines:
        problems.append(
            Problem(
                "lines",
                "the credit note has no lines: AvaTax needs at least one line to record a return",
            )
        )
    if invoice_date is None:
        problems.append(
            Problem(
                "invoice_id",
                f"the issue date of invoice {note.invoice_id} is "
                "unknown: the return is taxed as of that date",
            )
        )
    address = _address(customer, note.customer_id, problems)
    exemption = _exemption(customer, problems)
    lines: list[dict[str, Any]] = []
    for line in note.lines:
        item: dict[str, Any] = {
            "number": str(line.line_no),
            "quantity": "1",
            "amount": _dec(line.amount, negate=True),
            "description": line.description,
            "taxOverride": {
                "type": "TaxAmount",
                "taxAmount": _dec(line.tax_amount, negate=True),
                "reason": f"Tax credited by billing on credit note {note.number}",
            },
        }
        if line.product is not None:
            item["itemCode"] = line.product.sku
            if line.product.tax_code:
                item["taxCode"] = line.product.tax_code
        lines.append(item)
    if problems:
        raise MappingError(note.label, problems)

    assert note.issue_date is not None and invoice_date is not None  # checked above
    model: dict[str, Any] = {
        "type": RETURN_INVOICE,
        "companyCode": company,
        "code": note.number,
        "customerCode": note.customer_account,
        "date": note.issue_date.isoformat(),
        "currencyCode": note.currency,
        "referenceCode": note.invoice_number,
        "addresses": {"singleLocation": address},
        "lines": lines,
        "commit": True,
        "taxOverride": {
            "type": "TaxDate",
            "taxDate": invoice_date.isoformat(),
            "reason": f"Return against invoice {note.invoice_number}",
        },
    }
    if exemption:
        model["exemptionNo"] = exemption
    if length_problems := avatax_problems(model):
        raise MappingError(note.label, length_problems)
    return Document(
        target=TARGET,
        kind="credit_note",
        source_id=str(note.id),
        external_id=note.number,
        record_type=RETURN_INVOICE,
        label=note.label,
        payload={"createTransactionModel": model},
        depends_on=depends_on,
    )


def _void_document(
    *,
    kind: str,
    source_id: str,
    code: str,
    company: str,
    doc_type: str,
    label: str,
    depends_on: tuple[DocKey, ...],
) -> Document:
    return Document(
        target=TARGET,
        kind=kind,
        source_id=source_id,
        external_id=code,
        record_type=doc_type,
        label=label,
        operation="void",
        depends_on=depends_on,
        payload={
            "companyCode": company,
            "transactionCode": code,
            "documentType": doc_type,
            "voidTransactionModel": {"code": "DocVoided"},
        },
    )


def _company(entity: str, t: MappingTables, problems: list[Problem]) -> str | None:
    mapping = t.entities.get(entity)
    if mapping is None:
        problems.append(
            Problem(
                "billing_entity",
                f"entity {entity!r} is not in the "
                f"{t.describe('entities')}: add "
                f"[entities.{entity}] to the mapping file",
            )
        )
        return None
    if not mapping.avatax_company:
        problems.append(
            Problem(
                "billing_entity", f"add avatax_company to [entities.{entity}] in the mapping file"
            )
        )
        return None
    return mapping.avatax_company


def _address(
    customer: Customer | None, customer_id: int, problems: list[Problem]
) -> dict[str, str]:
    if customer is None:
        problems.append(
            Problem(
                "customer_id", f"customer {customer_id} was not found: its address decides the tax"
            )
        )
        return {}
    if not customer.country:
        problems.append(
            Problem(
                "customer.country",
                f"{customer.label} has no country: record the billing address in billing",
            )
        )
    if not customer.address_line1:
        problems.append(
            Problem(
                "customer.address_line1",
                f"{customer.label} has no street address: record it in billing",
            )
        )
    if customer.country in _REGION_REQUIRED and not customer.region:
        problems.append(
            Problem(
                "customer.region",
                f"{customer.label} is in "
                f"{customer.country} but has no state or "
                "province: record it in billing",
            )
        )
    fields = {
        "line1": customer.address_line1,
        "city": customer.city,
        "region": customer.region,
        "country": customer.country,
        "postalCode": customer.postal_code,
    }
    return {key: value for key, value in fields.items() if value}


def _exemption(customer: Customer | None, problems: list[Problem]) -> str | None:
    if customer is None or not customer.tax_exempt:
        return None
    if not customer.exemption_number:
        problems.append(
            Problem(
                "customer.exemption_number",
                f"{customer.label} is tax-exempt "
                "but has no exemption certificate "
                "number: record it in billing",
            )
        )
        return None
    return customer.exemption_number


def _dec(value: Decimal | None, *, negate: bool = False) -> str:
    # None only reaches here for a record already found faulty (its MappingError follows).
    if value is None:
        return ""
    # Plain notation: str(Decimal) may use an exponent (1E+2), which AvaTax would not expect.
    return format(-value if negate else value, "f")
