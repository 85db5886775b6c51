"""Checks every target needs before a billing record can be mapped at all.

Each function returns the list of ``Problem``s of one record (empty when it is sound); target
mappings add their own lookups and raise one ``MappingError`` with everything together.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from billing.records import CreditNote, Customer, Invoice, Payment, Refund
from finsync.errors import Problem
from finsync.money import is_known_currency, is_rounded

#: Longest name or memo we pass on; NetSuite's entity name fields stop at 83 characters.
MAX_NAME_LENGTH = 83
_ZERO = Decimal(0)


def currency_problems(currency: str | None, field: str = "currency") -> list[Problem]:
    """The currency must be a known ISO 4217 code."""
    if not currency or not is_known_currency(currency):
        return [Problem(field, f"unknown currency {currency!r}: use an ISO 4217 code such as USD")]
    return []


def amount_problems(
    amounts: Iterable[tuple[str, Decimal | None]], currency: str, *, signed: bool = False
) -> list[Problem]:
    """Amounts must be present, non-negative (unless ``signed``) and rounded to the currency."""
    problems: list[Problem] = []
    known = is_known_currency(currency)
    for field, amount in amounts:
        if amount is None:
            problems.append(Problem(field, "is empty: billing must provide an amount"))
            continue
        if not amount.is_finite():
            problems.append(Problem(field, f"is {amount}, not an amount: correct it in billing"))
            continue
        if not signed and amount < _ZERO:
            problems.append(Problem(field, f"is negative ({amount}); amounts must be >= 0"))
        if known and not is_rounded(amount, currency):
            problems.append(
                Problem(
                    field,
                    f"{amount} has more decimals than {currency} allows; "
                    f"round it in billing to {currency}'s minor units",
                )
            )
    return problems


def customer_problems(customer: Customer) -> list[Problem]:
    """A customer needs a name that fits, an account number and a known currency."""
    problems = currency_problems(customer.currency)
    if not customer.name or not customer.name.strip():
        problems.append(Problem("name", "is empty: give the customer a name in billing"))
    elif len(customer.name) > MAX_NAME_LENGTH:
        problems.append(
            Problem(
                "name",
                f"is {len(customer.name)} characters; the ERP allows at most "
                f"{MAX_NAME_LENGTH}: shorten it in billing",
            )
        )
    if customer.tax_exempt and not customer.exemption_number:
        problems.append(
            Problem(
                "exemption_number",
                "is empty for a tax-exempt customer: record the "
                "exemption certificate number in billing",
            )
        )
    return problems


def invoice_problems(invoice: Invoice) -> list[Problem]:
    """Dates, currency, customer, line arithmetic and totals of an invoice."""
    problems = currency_problems(invoice.currency)
    if invoice.customer_account is None:
        problems.append(
            Problem("customer_id", f"customer {invoice.customer_id} does not exist in billing")
        )
    if invoice.issue_date is None:
        problems.append(Problem("issue_date", "is empty: an invoice needs an issue date"))
    if invoice.due_date is None:
        problems.append(Problem("due_date", "is empty: an invoice needs a due date"))
    elif invoice.issue_date is not None and invoice.due_date < invoice.issue_date:
        problems.append(
            Problem("due_date", f"{invoice.due_date} is before the issue date {invoice.issue_date}")
        )
    if not invoice.lines:
        problems.append(Problem("lines", "the invoice has no lines"))
    problems += amount_problems(
        [
            ("subtotal", invoice.subtotal),
            ("tax_total", invoice.tax_total),
            ("total", invoice.total),
        ],
        invoice.currency,
    )
    for line in invoice.lines:
        where = f"line {line.line_no}"
        if line.product is None:
            problems.append(
                Problem(
                    f"{where}.product_id", f"product {line.product_id} does not exist in billing"
                )
            )
        if line.quantity is None or line.quantity < _ZERO:
            problems.append(
                Problem(
                    f"{where}.quantity",
                    f"is negative ({line.quantity}); credit with a credit note "
                    "instead of a negative line",
                )
            )
        problems += amount_problems(
            [
                (f"{where}.amount", line.amount),
                (f"{where}.tax_amount", line.tax_amount),
                (f"{where}.discount", line.discount),
            ],
            invoice.currency,
        )
        if line.service_start and line.service_end and line.service_end < line.service_start:
            problems.append(
                Problem(
                    f"{where}.service_end",
                    f"{line.service_end} is before service_start {line.service_start}",
                )
            )
        if (line.service_start is None) != (line.service_end is None):
            problems.append(
                Problem(
                    f"{where}.service_start",
                    "service period needs both service_start and service_end",
                )
            )
    if invoice.lines and all(line.amount is not None for line in invoice.lines):
        lines_net = sum((line.amount for line in invoice.lines), _ZERO)
        lines_tax = sum((line.tax_amount for line in invoice.lines), _ZERO)
        if lines_net != invoice.subtotal:
            problems.append(
                Problem(
                    "subtotal",
                    f"{invoice.subtotal} differs from the sum of the lines' amounts {lines_net}",
                )
            )
        if lines_tax != invoice.tax_total:
            problems.append(
                Problem(
                    "tax_total",
                    f"{invoice.tax_total} differs from the sum of the lines' tax {lines_tax}",
                )
            )
    if invoice.total != invoice.subtotal + invoice.tax_total:
        problems.append(
            Problem(
                "total",
                f"{invoice.total} is not subtotal {invoice.subtotal} "
                f"+ tax_total {invoice.tax_total}",
            )
        )
    return problems


def credit_note_problems(note: CreditNote) -> list[Problem]:
    """A credit note needs its invoice and customer, a date, and lines that add up."""
    problems = currency_problems(note.currency)
    if note.invoice_number is None:
        problems.append(Problem("invoice_id", f"invoice {note.invoice_id} does not exist"))
    if note.customer_account is None:
        problems.append(Problem("customer_id", f"customer {note.customer_id} does not exist"))
    if note.issue_date is None:
        problems.append(Problem("issue_date", "is empty: a credit note needs an issue date"))
    problems += amount_problems(
        [("subtotal", note.subtotal), ("tax_total", note.tax_total), ("total", note.total)],
        note.currency,
    )
    for line in note.lines:
        if line.product is None:
            problems.append(
                Problem(
                    f"line {line.line_no}.product_id",
                    f"product {line.product_id} does not exist in billing",
                )
            )
        problems += amount_problems(
            [
                (f"line {line.line_no}.amount", line.amount),
                (f"line {line.line_no}.tax_amount", line.tax_amount),
            ],
            note.currency,
        )
    if note.lines:
        if sum((li.amount for li in note.lines), _ZERO) != note.subtotal:
            problems.append(Problem("subtotal", "differs from the sum of the lines' amounts"))
        if sum((li.tax_amount for li in note.lines), _ZERO) != note.tax_total:
            problems.append(Problem("tax_total", "differs from the sum of the lines' tax"))
    if note.total != note.subtotal + note.tax_total:
        problems.append(Problem("total", f"{note.total} is not subtotal + tax_total"))
    return problems


def payment_problems(payment: Payment) -> list[Problem]:
    """A payment needs its customer, a date, and applications that do not exceed it."""
    problems = currency_problems(payment.currency)
    if payment.customer_account is None:
        problems.append(Problem("customer_id", f"customer {payment.customer_id} does not exist"))
    if payment.received_on is None:
        problems.append(Problem("received_on", "is empty: a payment needs the date received"))
    problems += amount_problems(
        [("amount", payment.amount), ("processor_fee", payment.processor_fee)]
        + [(f"application {a.id}.amount", a.amount) for a in payment.applications],
        payment.currency,
    )
    for app in payment.applications:
        if app.invoice_number is None:
            problems.append(
                Problem(
                    f"application {app.id}.invoice_id", f"invoice {app.invoice_id} does not exist"
                )
            )
    if payment.amount is not None and payment.unapplied < _ZERO:
        problems.append(
            Problem(
                "applications",
                f"applied {payment.amount - payment.unapplied} "
                f"exceeds the payment amount {payment.amount}",
            )
        )
    return problems


def refund_problems(refund: Refund) -> list[Problem]:
    """A refund needs its customer, a date and a rounded, non-negative amount."""
    problems = currency_problems(refund.currency)
    if refund.customer_account is None:
        problems.append(Problem("customer_id", f"customer {refund.customer_id} does not exist"))
    if refund.refunded_on is None:
        problems.append(Problem("refunded_on", "is empty: a refund needs a date"))
    problems += amount_problems([("amount", refund.amount)], refund.currency)
    return problems
