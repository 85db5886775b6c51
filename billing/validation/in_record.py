"""In-record checks: what one record says about itself (its lines add up, amounts are rounded
to its currency, dates are ordered, its text can be carried). The target mappings call them
too, so a mapping handed a bad record on its own still refuses it."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import fields
from decimal import Decimal
from typing import Any, TypeVar

from billing.records import (
    CreditNote,
    Customer,
    Invoice,
    Payment,
    Product,
    Refund,
    RevenueEntry,
)
from billing.validation.wording import ZERO, date_order_problem, money_text, plain
from core.errors import Problem
from core.money import (
    is_known_currency,
    is_rounded,
    quantum,
    round_money,
)

#: Values billing's status and enumeration columns may hold (docs/billing-contract.md).
INVOICE_STATUSES = ("open", "paid", "void", "uncollectible")
CREDIT_NOTE_STATUSES = ("issued", "void")
PAYMENT_STATUSES = ("succeeded", "failed", "reversed")
PAYMENT_METHODS = ("card", "ach", "wire", "check")
REVENUE_PATTERNS = ("ratable", "point_in_time")
SCHEDULE_STATUSES = ("scheduled", "recognized")


def currency_problems(currency: str | None, field: str = "currency") -> list[Problem]:
    """The currency must be an uppercase ISO 4217 code of a real currency."""
    if not currency or not is_known_currency(currency):
        hint = ""
        if currency and is_known_currency(currency.strip().upper()):
            hint = f" (write it {currency.strip().upper()!r})"
        return [
            Problem(
                field,
                f"{currency!r} is not an ISO 4217 currency code{hint}: set the record's "
                "currency in billing to an uppercase code such as USD",
            )
        ]
    return []


def amount_problems(
    amounts: Iterable[tuple[str, Decimal | None]],
    currency: str | None,
    *,
    positive: bool = False,
    signed: bool = False,
) -> list[Problem]:
    """Amounts must be present, not negative (positive when ``positive``, any sign when
    ``signed``) and rounded to the currency."""
    problems: list[Problem] = []
    known = bool(currency) and is_known_currency(currency or "")
    for where, amount in amounts:
        if amount is None:
            problems.append(Problem(where, "is empty: billing must provide an amount"))
            continue
        if not amount.is_finite():
            problems.append(Problem(where, f"is {amount}, not an amount: correct it in billing"))
            continue
        if not signed and (amount < ZERO or (positive and amount == ZERO)):
            need = "positive" if positive else "zero or positive"
            problems.append(
                Problem(
                    where,
                    f"is {money_text(amount, currency)}; it must be {need}: correct it in "
                    "billing (reductions are credit notes or refunds, not negative amounts)",
                )
            )
        if known and currency and not is_rounded(amount, currency):
            problems.append(
                Problem(
                    where,
                    f"{money_text(amount, currency)} has more decimals than {currency} allows; "
                    f"round it in billing to {money_text(round_money(amount, currency), currency)}",
                )
            )
    return problems


def _sum_problem(
    where: str, stated: Decimal, parts: Decimal, what: str, currency: str | None
) -> Problem:
    return Problem(
        where,
        f"{money_text(stated, currency)} differs from the sum of {what} "
        f"{money_text(parts, currency)}: correct {where} or the lines in billing",
    )


#: Characters no target can carry: XML 1.0 forbids them (NetSuite SOAP refuses the whole
#: message) and JSON targets would store them invisibly. Tab, newline and return are allowed.
_UNWRITABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def text_problems(record: Any, where: str = "") -> list[Problem]:
    """Text fields of ``record`` (and of its lines) holding a character no target can carry.

    Quarantined rather than cleaned up, the same for every target: what billing says is what
    the ERP gets, or the record waits for billing to be corrected.
    """
    names = _field_names(type(record))
    values = [getattr(record, name) for name in names]
    lines = getattr(record, "lines", ())
    if not where and not _UNWRITABLE.search("\n".join(_texts(values, lines))):
        return []  # the usual record: one search over all its text (a newline is allowed)
    problems: list[Problem] = []
    for name, value in zip(names, values, strict=True):
        if isinstance(value, str) and (found := _UNWRITABLE.search(value)):
            problems.append(
                Problem(
                    f"{where}{name}",
                    f"contains the control character U+{ord(found.group()):04X} at position "
                    f"{found.start() + 1}, which the ERP and the tax engine cannot store: "
                    "remove it in billing",
                )
            )
    for line in lines:
        problems += text_problems(line, f"line {line.line_no}.")
    return problems


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: Any) -> tuple[str, ...]:
    """The field names of a record dataclass (read once per class)."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(spec.name for spec in fields(cls))
    return names


def _texts(values: list[Any], lines: Iterable[Any]) -> Iterator[str]:
    """Every text value of a record and of its lines."""
    yield from (v for v in values if isinstance(v, str))
    for line in lines:
        for name in _field_names(type(line)):
            value = getattr(line, name)
            if isinstance(value, str):
                yield value


_Checked = TypeVar("_Checked")


def _and_text(check: Callable[[_Checked], list[Problem]]) -> Callable[[_Checked], list[Problem]]:
    """``check`` followed by ``text_problems`` of the same record."""

    @functools.wraps(check)
    def checked(record: _Checked) -> list[Problem]:
        return check(record) + text_problems(record)

    return checked


@_and_text
def customer_problems(customer: Customer) -> list[Problem]:
    """A customer needs an account number, a name, a known currency and an exemption number
    when tax-exempt."""
    problems = currency_problems(customer.currency)
    if not customer.account_number or not customer.account_number.strip():
        problems.append(
            Problem("account_number", "is empty: give the customer an account number in billing")
        )
    if not customer.name or not customer.name.strip():
        problems.append(Problem("name", "is empty: give the customer a name in billing"))
    if not customer.billing_entity:
        problems.append(
            Problem("billing_entity", "is empty: set the entity that bills the customer")
        )
    if customer.tax_exempt and not customer.exemption_number:
        problems.append(
            Problem(
                "exemption_number",
                "is empty for a tax-exempt customer: record the exemption certificate number "
                "in billing",
            )
        )
    return problems


@_and_text
def product_problems(product: Product) -> list[Problem]:
    """A product needs a SKU, a family and a known revenue pattern."""
    problems: list[Problem] = []
    if not product.sku or not product.sku.strip():
        problems.append(Problem("sku", "is empty: give the product a SKU in billing"))
    if not product.product_family:
        problems.append(Problem("product_family", "is empty: set the product's family"))
    if product.revenue_pattern not in REVENUE_PATTERNS:
        problems.append(
            Problem(
                "revenue_pattern",
                f"{product.revenue_pattern!r} is not one of {', '.join(REVENUE_PATTERNS)}: "
                "set it in billing",
            )
        )
    return problems


def _tolerance(currency: str | None) -> Decimal | None:
    """Half a minor unit: how far a rounded figure may be from its exact value."""
    if not currency or not is_known_currency(currency):
        return None
    return quantum(currency) / 2


@_and_text
def invoice_problems(invoice: Invoice) -> list[Problem]:
    """What an invoice says about itself: status, dates, currency, line arithmetic, totals.

    The customer and products it refers to are checked by ``validate_billing``; a missing one is
    reported here too (the reader leaves them empty).
    """
    cur = invoice.currency
    problems = currency_problems(cur)
    tolerance = _tolerance(cur)
    if invoice.status not in INVOICE_STATUSES:
        problems.append(
            Problem(
                "status",
                f"{invoice.status!r} is not one of {', '.join(INVOICE_STATUSES)}: set it in "
                "billing",
            )
        )
    if (invoice.status == "void") != (invoice.voided_at is not None):
        problems.append(
            Problem(
                "voided_at",
                "must be set exactly when the status is 'void': set both or neither in billing",
            )
        )
    if invoice.customer_account is None:
        problems.append(
            Problem(
                "customer_id",
                f"customer {invoice.customer_id} does not exist in billing: point the invoice "
                "at an existing customer or create the customer",
            )
        )
    if invoice.issue_date is None:
        problems.append(Problem("issue_date", "is empty: give the invoice an issue date"))
    if invoice.due_date is None:
        problems.append(Problem("due_date", "is empty: give the invoice a due date"))
    elif invoice.issue_date is not None and invoice.due_date < invoice.issue_date:
        problems.append(
            date_order_problem("due_date", invoice.due_date, invoice.issue_date, "the issue date")
        )
    if not invoice.lines:
        problems.append(
            Problem("lines", "the invoice has no lines: add at least one line in billing")
        )
    problems += amount_problems(
        [
            ("subtotal", invoice.subtotal),
            ("tax_total", invoice.tax_total),
            ("total", invoice.total),
        ],
        cur,
    )
    for line in invoice.lines:
        where = f"line {line.line_no}"
        if line.product is None:
            problems.append(
                Problem(
                    f"{where}.product_id",
                    f"product {line.product_id} does not exist in billing: point the line at an "
                    "existing product",
                )
            )
        if line.quantity is None or line.quantity < ZERO:
            problems.append(
                Problem(
                    f"{where}.quantity",
                    f"is {line.quantity}; credit with a credit note instead of a negative line",
                )
            )
        if line.tax_rate is None or line.tax_rate < ZERO:
            problems.append(
                Problem(f"{where}.tax_rate", f"is {line.tax_rate}; a tax rate is zero or more")
            )
        problems += amount_problems(
            [
                (f"{where}.amount", line.amount),
                (f"{where}.tax_amount", line.tax_amount),
                (f"{where}.discount", line.discount),
            ],
            cur,
        )
        if tolerance is not None and None not in (line.quantity, line.unit_price, line.discount):
            exact = line.quantity * line.unit_price - line.discount
            if line.amount is not None and abs(line.amount - exact) > tolerance:
                problems.append(
                    Problem(
                        f"{where}.amount",
                        f"{money_text(line.amount, cur)} is not quantity {plain(line.quantity)} x "
                        f"unit_price {plain(line.unit_price)} - discount "
                        f"{money_text(line.discount, cur)} = "
                        f"{money_text(round_money(exact, cur), cur)}: correct the line in billing",
                    )
                )
        if (
            tolerance is not None
            and line.amount is not None
            and line.tax_amount is not None
            and line.tax_rate is not None
            and abs(line.tax_amount - line.amount * line.tax_rate) > tolerance
        ):
            expected = round_money(line.amount * line.tax_rate, cur)
            problems.append(
                Problem(
                    f"{where}.tax_amount",
                    f"{money_text(line.tax_amount, cur)} is not amount "
                    f"{money_text(line.amount, cur)} x tax_rate {plain(line.tax_rate)} = "
                    f"{money_text(expected, cur)} within {cur}'s rounding: correct the tax "
                    "amount or the rate in billing",
                )
            )
        if (line.service_start is None) != (line.service_end is None):
            problems.append(
                Problem(
                    f"{where}.service_end"
                    if line.service_end is None
                    else f"{where}.service_start",
                    "is empty while the other end of the service period is set: set both "
                    "service_start and service_end, or neither",
                )
            )
        elif line.service_start and line.service_end and line.service_end < line.service_start:
            problems.append(
                date_order_problem(
                    f"{where}.service_end", line.service_end, line.service_start, "service_start"
                )
            )
    if invoice.lines and all(li.amount is not None for li in invoice.lines):
        lines_net = sum((li.amount for li in invoice.lines), ZERO)
        if invoice.subtotal is not None and lines_net != invoice.subtotal:
            problems.append(
                _sum_problem("subtotal", invoice.subtotal, lines_net, "the lines' amounts", cur)
            )
    if invoice.lines and all(li.tax_amount is not None for li in invoice.lines):
        lines_tax = sum((li.tax_amount for li in invoice.lines), ZERO)
        if invoice.tax_total is not None and lines_tax != invoice.tax_total:
            problems.append(
                _sum_problem("tax_total", invoice.tax_total, lines_tax, "the lines' tax", cur)
            )
    if (
        None not in (invoice.total, invoice.subtotal, invoice.tax_total)
        and invoice.total != invoice.subtotal + invoice.tax_total
    ):
        problems.append(
            Problem(
                "total",
                f"{money_text(invoice.total, cur)} is not subtotal "
                f"{money_text(invoice.subtotal, cur)} + tax_total "
                f"{money_text(invoice.tax_total, cur)} = "
                f"{money_text(invoice.subtotal + invoice.tax_total, cur)}: correct the total "
                "in billing",
            )
        )
    return problems


@_and_text
def credit_note_problems(note: CreditNote) -> list[Problem]:
    """What a credit note says about itself: status, invoice, customer, date, lines, totals."""
    cur = note.currency
    problems = currency_problems(cur)
    if note.status not in CREDIT_NOTE_STATUSES:
        problems.append(
            Problem(
                "status",
                f"{note.status!r} is not one of {', '.join(CREDIT_NOTE_STATUSES)}: set it in "
                "billing",
            )
        )
    if note.invoice_number is None:
        problems.append(
            Problem(
                "invoice_id",
                f"invoice {note.invoice_id} does not exist in billing: point the credit note at "
                "the invoice it credits",
            )
        )
    if note.customer_account is None:
        problems.append(
            Problem(
                "customer_id",
                f"customer {note.customer_id} does not exist in billing: set the invoice's "
                "customer",
            )
        )
    if note.issue_date is None:
        problems.append(Problem("issue_date", "is empty: give the credit note an issue date"))
    if not note.lines:
        problems.append(
            Problem("lines", "the credit note has no lines: add what it credits in billing")
        )
    problems += amount_problems(
        [("subtotal", note.subtotal), ("tax_total", note.tax_total), ("total", note.total)], cur
    )
    for line in note.lines:
        where = f"line {line.line_no}"
        if line.product is None:
            problems.append(
                Problem(
                    f"{where}.product_id",
                    f"product {line.product_id} does not exist in billing: point the line at an "
                    "existing product",
                )
            )
        problems += amount_problems(
            [(f"{where}.amount", line.amount), (f"{where}.tax_amount", line.tax_amount)], cur
        )
    if note.lines and note.subtotal is not None:
        net = sum((li.amount for li in note.lines if li.amount is not None), ZERO)
        if net != note.subtotal:
            problems.append(_sum_problem("subtotal", note.subtotal, net, "the lines' amounts", cur))
    if note.lines and note.tax_total is not None:
        tax = sum((li.tax_amount for li in note.lines if li.tax_amount is not None), ZERO)
        if tax != note.tax_total:
            problems.append(_sum_problem("tax_total", note.tax_total, tax, "the lines' tax", cur))
    if (
        None not in (note.total, note.subtotal, note.tax_total)
        and note.total != note.subtotal + note.tax_total
    ):
        problems.append(
            Problem(
                "total",
                f"{money_text(note.total, cur)} is not subtotal {money_text(note.subtotal, cur)}"
                f" + tax_total {money_text(note.tax_total, cur)}: correct the total in billing",
            )
        )
    return problems


@_and_text
def payment_problems(payment: Payment) -> list[Problem]:
    """What a payment says about itself: status, method, customer, date, amounts, and
    applications that do not exceed it."""
    cur = payment.currency
    problems = currency_problems(cur)
    if payment.status not in PAYMENT_STATUSES:
        problems.append(
            Problem(
                "status",
                f"{payment.status!r} is not one of {', '.join(PAYMENT_STATUSES)}: set it in "
                "billing",
            )
        )
    if payment.method not in PAYMENT_METHODS:
        problems.append(
            Problem(
                "method",
                f"{payment.method!r} is not one of {', '.join(PAYMENT_METHODS)}: set it in billing",
            )
        )
    if payment.customer_account is None:
        problems.append(
            Problem(
                "customer_id",
                f"customer {payment.customer_id} does not exist in billing: set the customer "
                "who paid",
            )
        )
    if payment.received_on is None:
        problems.append(Problem("received_on", "is empty: record the date the money arrived"))
    problems += amount_problems([("amount", payment.amount)], cur, positive=True)
    problems += amount_problems(
        [("processor_fee", payment.processor_fee)]
        + [(f"application {a.id}.amount", a.amount) for a in payment.applications],
        cur,
    )
    for app in payment.applications:
        if app.invoice_number is None:
            problems.append(
                Problem(
                    f"application {app.id}.invoice_id",
                    f"invoice {app.invoice_id} does not exist in billing: apply the payment to "
                    "an existing invoice",
                )
            )
    applied = sum((a.amount for a in payment.applications if a.amount is not None), ZERO)
    if payment.amount is not None and applied > payment.amount:
        top = money_text(payment.amount, cur)
        problems.append(
            Problem(
                "applications",
                f"applied {money_text(applied, cur)} exceeds the payment amount {top}; reduce "
                f"the applications in billing to at most {top} or correct the payment amount",
            )
        )
    return problems


@_and_text
def refund_problems(refund: Refund) -> list[Problem]:
    """What a refund says about itself: customer, source, date and a positive rounded amount."""
    problems = currency_problems(refund.currency)
    if refund.customer_account is None:
        problems.append(
            Problem(
                "customer_id",
                f"customer {refund.customer_id} does not exist in billing: set the customer "
                "paid back",
            )
        )
    if (refund.payment_id is None) == (refund.credit_note_id is None):
        problems.append(
            Problem(
                "payment_id",
                "a refund returns either a payment's unapplied cash or a credit note's credit: "
                "set exactly one of payment_id and credit_note_id in billing",
            )
        )
    elif refund.payment_id is not None and refund.payment_reference is None:
        problems.append(
            Problem(
                "payment_id",
                f"payment {refund.payment_id} does not exist in billing: point the refund at "
                "the payment it returns",
            )
        )
    elif refund.credit_note_id is not None and refund.credit_note_number is None:
        problems.append(
            Problem(
                "credit_note_id",
                f"credit note {refund.credit_note_id} does not exist in billing: point the "
                "refund at the credit note it pays out",
            )
        )
    if refund.refunded_on is None:
        problems.append(Problem("refunded_on", "is empty: record the date of the refund"))
    problems += amount_problems([("amount", refund.amount)], refund.currency, positive=True)
    return problems


@_and_text
def revenue_entry_problems(entry: RevenueEntry) -> list[Problem]:
    """What a schedule entry says about itself: its line, period, status and amount."""
    problems: list[Problem] = []
    if entry.invoice_id is None:
        problems.append(
            Problem(
                "invoice_line_id",
                f"invoice line {entry.invoice_line_id} does not exist in billing: delete the "
                "entry or point it at its line",
            )
        )
    if entry.period.day != 1:
        problems.append(
            Problem(
                "period",
                f"{entry.period} is not the first day of a month: set the period to "
                f"{entry.period.replace(day=1)}",
            )
        )
    if entry.status not in SCHEDULE_STATUSES:
        problems.append(
            Problem(
                "status",
                f"{entry.status!r} is not one of {', '.join(SCHEDULE_STATUSES)}: set it in billing",
            )
        )
    elif entry.status == "recognized" and entry.recognized_on is None:
        problems.append(
            Problem("recognized_on", "is empty for a recognized entry: set the day recognized")
        )
    # Reversals after a credit note or a void are negative: only presence and rounding count.
    problems += amount_problems([("amount", entry.amount)], entry.currency, signed=True)
    return problems
