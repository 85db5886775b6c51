"""Billing-level validation: every invariant of the billing contract, checked in one place.

finsync does not repair billing's data. A record that breaks the contract (docs/billing-contract.md)
is *rejected*: the sync quarantines it on every target alike and the workbook leaves it out of its
totals, listing it with the reason. Two layers:

- in-record checks (``invoice_problems`` and friends): what one record says about itself (its
  lines add up, amounts are rounded to its currency, dates are ordered). The target mappings call
  them too, so a mapping handed a bad record on its own still refuses it;
- ``validate_billing``: one streaming pass over billing that adds what needs other records (the
  customer, product, invoice, payment or credit note a record refers to; what an invoice still
  owes after earlier credit notes; what a payment or credit note has left after earlier refunds;
  revenue schedules against their lines; unique numbers). A record that depends on a rejected
  record is rejected too, naming it.

Every ``Problem`` names the field, says what is wrong with amounts at the currency's scale
(``12.00``, not ``12.000000``), and says what to do in billing. Pure: no I/O of its own; the
records come from a ``BillingSource`` (``sync.extract.BillingReader``).
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import date
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from billing.records import (
    CreditNote,
    Customer,
    Invoice,
    Payment,
    Product,
    Refund,
    RevenueEntry,
    SourceRecord,
)
from core.errors import Problem
from core.money import (
    amount_text,
    decimal_text,
    is_known_currency,
    is_rounded,
    quantum,
    round_money,
)

#: Rejection kinds, in the order rejections are listed.
REJECTION_KINDS = (
    "customer",
    "product",
    "invoice",
    "credit_note",
    "payment",
    "refund",
    "revenue_entry",
)
#: Values billing's status and enumeration columns may hold (docs/billing-contract.md).
INVOICE_STATUSES = ("open", "paid", "void", "uncollectible")
CREDIT_NOTE_STATUSES = ("issued", "void")
PAYMENT_STATUSES = ("succeeded", "failed", "reversed")
PAYMENT_METHODS = ("card", "ach", "wire", "check")
REVENUE_PATTERNS = ("ratable", "point_in_time")
SCHEDULE_STATUSES = ("scheduled", "recognized")

_ZERO = Decimal(0)


@dataclass(frozen=True)
class Rejection:
    """A billing record that breaks the contract, with every reason and its fix."""

    kind: str  # one of REJECTION_KINDS
    record_id: int  # billing primary key
    label: str  # how messages name the record, e.g. "invoice INV-1001"
    currency: str | None  # as billing holds it (may be invalid)
    amount: Decimal | None  # the record's total or amount as billing holds it
    problems: tuple[Problem, ...]

    @property
    def message(self) -> str:
        """One line: the record, then each field with what is wrong and what to do."""
        return f"{self.label}: " + "; ".join(str(p) for p in self.problems)


class Verdicts:
    """The outcome of one validation pass: the rejected records, in kind order then id."""

    def __init__(self, rejections: Iterable[Rejection] = ()) -> None:
        order = {kind: i for i, kind in enumerate(REJECTION_KINDS)}
        self.rejections: tuple[Rejection, ...] = tuple(
            sorted(rejections, key=lambda r: (order.get(r.kind, len(order)), r.record_id))
        )
        self._by_key = {(r.kind, r.record_id): r for r in self.rejections}

    def rejected(self, kind: str, record_id: int) -> Rejection | None:
        """The rejection of record ``record_id`` of ``kind``, or None when it is sound."""
        return self._by_key.get((kind, record_id))

    def of_kind(self, kind: str) -> tuple[Rejection, ...]:
        """The rejections of one kind, by id."""
        return tuple(r for r in self.rejections if r.kind == kind)

    def ids(self, kind: str) -> frozenset[int]:
        """The billing ids of the rejected records of one kind."""
        return frozenset(r.record_id for r in self.rejections if r.kind == kind)

    def __len__(self) -> int:
        return len(self.rejections)


class BillingSource(Protocol):
    """Where validation reads billing from (``sync.extract.BillingReader`` is one)."""

    def products(self) -> Mapping[int, Product]:
        """Every product by id."""
        ...

    def all_records(self, kind: str) -> Iterator[SourceRecord]:
        """Every record of ``kind`` (customer, invoice, credit_note, payment, refund, revenue),
        by id; revenue entries by (invoice_line_id, id), so a line's schedule comes together."""
        ...


# -- wording --------------------------------------------------------------------------------


def money_text(amount: Decimal, currency: str | None) -> str:
    """``amount`` as people read it: at the currency's scale when it is rounded to it, else
    exactly as billing holds it (without a database column's trailing zeros)."""
    if currency and is_known_currency(currency) and is_rounded(amount, currency):
        return amount_text(amount, currency)
    return decimal_text(amount)


def _plain(value: Decimal) -> str:
    """A quantity, price or rate without a database column's trailing zeros."""
    return money_text(value, None)


def _fix_first(what: str) -> str:
    return f"{what} is rejected (see its own message): fix it in billing first"


# -- in-record checks -----------------------------------------------------------------------


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
        if not signed and (amount < _ZERO or (positive and amount == _ZERO)):
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


def _date_order_problem(where: str, later: date, earlier: date, earlier_name: str) -> Problem:
    return Problem(
        where,
        f"{later} is before {earlier_name} {earlier}: correct the dates in billing",
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
            _date_order_problem("due_date", invoice.due_date, invoice.issue_date, "the issue date")
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
        if line.quantity is None or line.quantity < _ZERO:
            problems.append(
                Problem(
                    f"{where}.quantity",
                    f"is {line.quantity}; credit with a credit note instead of a negative line",
                )
            )
        if line.tax_rate is None or line.tax_rate < _ZERO:
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
                        f"{money_text(line.amount, cur)} is not quantity {_plain(line.quantity)} x "
                        f"unit_price {_plain(line.unit_price)} - discount "
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
                    f"{money_text(line.amount, cur)} x tax_rate {_plain(line.tax_rate)} = "
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
                _date_order_problem(
                    f"{where}.service_end", line.service_end, line.service_start, "service_start"
                )
            )
    if invoice.lines and all(li.amount is not None for li in invoice.lines):
        lines_net = sum((li.amount for li in invoice.lines), _ZERO)
        if invoice.subtotal is not None and lines_net != invoice.subtotal:
            problems.append(
                _sum_problem("subtotal", invoice.subtotal, lines_net, "the lines' amounts", cur)
            )
    if invoice.lines and all(li.tax_amount is not None for li in invoice.lines):
        lines_tax = sum((li.tax_amount for li in invoice.lines), _ZERO)
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
        net = sum((li.amount for li in note.lines if li.amount is not None), _ZERO)
        if net != note.subtotal:
            problems.append(_sum_problem("subtotal", note.subtotal, net, "the lines' amounts", cur))
    if note.lines and note.tax_total is not None:
        tax = sum((li.tax_amount for li in note.lines if li.tax_amount is not None), _ZERO)
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
    applied = sum((a.amount for a in payment.applications if a.amount is not None), _ZERO)
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


# -- the cross-record pass ------------------------------------------------------------------


@dataclass
class _CustomerFacts:
    label: str
    billing_entity: str
    currency: str


@dataclass
class _InvoiceFacts:
    label: str
    customer_id: int
    currency: str
    status: str
    issue_date: date | None
    total: Decimal
    applied: Decimal = _ZERO  # by accepted succeeded payments


@dataclass
class _LineFacts:
    invoice_id: int
    line_no: int
    amount: Decimal
    pattern: str | None
    service_start: date | None
    service_end: date | None
    credited: Decimal = _ZERO  # by accepted issued credit notes


@dataclass
class _Remaining:
    """What a payment or credit note has left to refund."""

    label: str
    customer_id: int
    currency: str
    day: date | None
    left: Decimal
    usable: bool  # False for failed/reversed payments and void credit notes
    status: str


@dataclass
class _Pass:
    entities: Collection[str] | None
    rejections: list[Rejection] = field(default_factory=list)
    rejected: set[tuple[str, int]] = field(default_factory=set)
    customers: dict[int, _CustomerFacts] = field(default_factory=dict)
    rejected_customers: dict[int, str] = field(default_factory=dict)  # id -> label
    products: dict[int, str] = field(default_factory=dict)  # accepted: id -> revenue pattern
    rejected_products: dict[int, str] = field(default_factory=dict)  # id -> label
    invoices: dict[int, _InvoiceFacts] = field(default_factory=dict)
    rejected_invoices: dict[int, str] = field(default_factory=dict)
    lines: dict[int, _LineFacts] = field(default_factory=dict)
    payments: dict[int, _Remaining] = field(default_factory=dict)
    notes: dict[int, _Remaining] = field(default_factory=dict)
    rejected_sources: dict[tuple[str, int], str] = field(default_factory=dict)

    def reject(
        self,
        kind: str,
        record_id: int,
        label: str,
        currency: str | None,
        amount: Decimal | None,
        problems: list[Problem],
    ) -> None:
        self.rejections.append(
            Rejection(kind, record_id, label, currency, amount, tuple(dict.fromkeys(problems)))
        )
        self.rejected.add((kind, record_id))

    def entity_problems(self, entity: str | None) -> list[Problem]:
        if self.entities is None or entity in self.entities:
            return []
        return [
            Problem(
                "billing_entity",
                f"{entity!r} is not a known billing entity ({', '.join(sorted(self.entities))}):"
                " correct it in billing, or add the entity to the mapping file's [entities]",
            )
        ]

    def customer_link(
        self, customer_id: int, currency: str | None, *, what: str
    ) -> tuple[list[Problem], _CustomerFacts | None]:
        """The customer a record refers to must be sound and bill in the record's currency."""
        facts = self.customers.get(customer_id)
        if facts is None:
            if customer_id in self.rejected_customers:
                return [
                    Problem("customer_id", _fix_first(self.rejected_customers[customer_id]))
                ], None
            return [], None  # missing: the in-record check said so
        if currency and is_known_currency(currency) and facts.currency != currency:
            return [
                Problem(
                    "currency",
                    f"{currency!r} differs from {facts.label}'s currency {facts.currency!r}: "
                    f"every document of a customer is in its currency; correct the {what}'s "
                    "currency in billing",
                )
            ], facts
        return [], facts


def _customers(state: _Pass, records: Iterable[SourceRecord]) -> None:
    seen: dict[str, int] = {}
    for c in records:
        assert isinstance(c, Customer)
        problems = customer_problems(c) + state.entity_problems(c.billing_entity)
        first = seen.setdefault(c.account_number, c.id)
        if first != c.id:
            problems.append(
                Problem(
                    "account_number",
                    f"{c.account_number!r} is also the account number of customer id {first}: "
                    "give each customer its own account number in billing",
                )
            )
        if problems:
            state.reject("customer", c.id, c.label, c.currency, None, problems)
            state.rejected_customers[c.id] = c.label
        else:
            state.customers[c.id] = _CustomerFacts(c.label, c.billing_entity, c.currency)


def _products(state: _Pass, products: Mapping[int, Product]) -> None:
    seen: dict[str, int] = {}
    for product_id in sorted(products):
        p = products[product_id]
        problems = product_problems(p)
        first = seen.setdefault(p.sku, p.id)
        if first != p.id:
            problems.append(
                Problem(
                    "sku",
                    f"{p.sku!r} is also the SKU of product id {first}: give each product its own "
                    "SKU in billing",
                )
            )
        label = f"product {p.sku}"
        if problems:
            state.reject("product", p.id, label, None, None, problems)
            state.rejected_products[p.id] = label
        else:
            state.products[p.id] = p.revenue_pattern


def _invoices(state: _Pass, records: Iterable[SourceRecord]) -> None:
    seen: dict[str, int] = {}
    for inv in records:
        assert isinstance(inv, Invoice)
        problems = invoice_problems(inv)
        link, customer = state.customer_link(inv.customer_id, inv.currency, what="invoice")
        problems += link
        problems += state.entity_problems(inv.billing_entity)
        if customer is not None and inv.billing_entity != customer.billing_entity:
            problems.append(
                Problem(
                    "billing_entity",
                    f"{inv.billing_entity!r} differs from {customer.label}'s entity "
                    f"{customer.billing_entity!r}: an invoice is billed by its customer's entity;"
                    " correct it in billing",
                )
            )
        for line in inv.lines:
            if line.product_id in state.rejected_products:
                problems.append(
                    Problem(
                        f"line {line.line_no}.product_id",
                        _fix_first(state.rejected_products[line.product_id]),
                    )
                )
        first = seen.setdefault(inv.number, inv.id)
        if first != inv.id:
            problems.append(
                Problem(
                    "number",
                    f"{inv.number!r} is also the number of invoice id {first}: give each invoice "
                    "its own number in billing",
                )
            )
        if problems:
            state.reject("invoice", inv.id, inv.label, inv.currency, inv.total, problems)
            state.rejected_invoices[inv.id] = inv.label
            continue
        state.invoices[inv.id] = _InvoiceFacts(
            inv.label, inv.customer_id, inv.currency, inv.status, inv.issue_date, inv.total
        )
        for line in inv.lines:
            product = line.product
            state.lines[line.id] = _LineFacts(
                inv.id,
                line.line_no,
                _ZERO if inv.status == "void" else line.amount,
                product.revenue_pattern if product else None,
                line.service_start,
                line.service_end,
            )


def _invoice_link(state: _Pass, invoice_id: int, where: str) -> list[Problem]:
    if invoice_id in state.rejected_invoices:
        return [Problem(where, _fix_first(state.rejected_invoices[invoice_id]))]
    return []


def _credit_notes(state: _Pass, records: Iterable[SourceRecord]) -> None:
    notes = [n for n in records if isinstance(n, CreditNote)]
    # What an invoice still owes is taken in the order the credit notes were issued.
    notes.sort(key=lambda n: (n.issue_date or date.min, n.id))
    duplicates = _duplicates((n.id, n.number) for n in notes)
    credited: dict[int, Decimal] = defaultdict(Decimal)  # invoice id -> accepted credit
    for note in notes:
        cur = note.currency
        problems = credit_note_problems(note)
        if note.id in duplicates:
            problems.append(
                Problem(
                    "number",
                    f"{note.number!r} is also the number of credit note id "
                    f"{duplicates[note.id]}: give each credit note its own number in billing",
                )
            )
        problems += _invoice_link(state, note.invoice_id, "invoice_id")
        link, _customer = state.customer_link(note.customer_id, cur, what="credit note")
        problems += link
        invoice = state.invoices.get(note.invoice_id)
        if invoice is not None:
            if note.customer_id != invoice.customer_id:
                problems.append(
                    Problem(
                        "customer_id",
                        f"customer id {note.customer_id} is not the customer of {invoice.label}"
                        f" (customer id {invoice.customer_id}): set the invoice's customer",
                    )
                )
            if cur != invoice.currency:
                problems.append(
                    Problem(
                        "currency",
                        f"{cur!r} differs from {invoice.label}'s currency {invoice.currency!r}: "
                        "a credit note is in its invoice's currency; correct it in billing",
                    )
                )
            if (
                note.issue_date is not None
                and invoice.issue_date is not None
                and note.issue_date < invoice.issue_date
            ):
                problems.append(
                    _date_order_problem(
                        "issue_date", note.issue_date, invoice.issue_date, f"{invoice.label}'s date"
                    )
                )
            if note.status == "issued" and invoice.status == "void":
                problems.append(
                    Problem(
                        "invoice_id",
                        f"{invoice.label} is void, so nothing is left to credit: void the credit "
                        "note in billing",
                    )
                )
            if note.status == "issued" and note.total is not None:
                left = invoice.total - credited[note.invoice_id]
                if note.total > left:
                    problems.append(
                        Problem(
                            "total",
                            f"{money_text(note.total, cur)} exceeds what {invoice.label} still "
                            f"owes after earlier credit notes ({money_text(left, cur)} of "
                            f"{money_text(invoice.total, cur)}): credit at most "
                            f"{money_text(left, cur)} in billing",
                        )
                    )
        line_credit: dict[int, Decimal] = defaultdict(Decimal)
        for line in note.lines:
            if line.invoice_line_id is None or line.amount is None:
                continue
            facts = state.lines.get(line.invoice_line_id)
            if facts is None or facts.invoice_id != note.invoice_id:
                if invoice is not None:
                    problems.append(
                        Problem(
                            f"line {line.line_no}.invoice_line_id",
                            f"invoice line {line.invoice_line_id} is not a line of "
                            f"{invoice.label}: point the credit note line at the line it credits",
                        )
                    )
                continue
            line_credit[line.invoice_line_id] += line.amount
            if note.status == "issued":
                left = (
                    facts.amount
                    - facts.credited
                    - (line_credit[line.invoice_line_id] - line.amount)
                )
                if line.amount > left:
                    problems.append(
                        Problem(
                            f"line {line.line_no}.amount",
                            f"{money_text(line.amount, cur)} exceeds what is left to credit on "
                            f"{invoice.label if invoice else 'its invoice'} line "
                            f"{facts.line_no} ({money_text(left, cur)}): credit at most that",
                        )
                    )
        if problems:
            state.reject("credit_note", note.id, note.label, cur, note.total, problems)
            state.rejected_sources[("credit_note", note.id)] = note.label
            continue
        if note.status == "issued":
            credited[note.invoice_id] += note.total
            for line_id, amount in line_credit.items():
                state.lines[line_id].credited += amount
        state.notes[note.id] = _Remaining(
            note.label,
            note.customer_id,
            cur,
            note.issue_date,
            note.total,
            note.status == "issued",
            note.status,
        )


def _payments(state: _Pass, records: Iterable[SourceRecord]) -> None:
    seen: dict[str, int] = {}
    for p in records:
        assert isinstance(p, Payment)
        cur = p.currency
        problems = payment_problems(p)
        link, _customer = state.customer_link(p.customer_id, cur, what="payment")
        problems += link
        first = seen.setdefault(p.reference, p.id)
        if first != p.id:
            problems.append(
                Problem(
                    "reference",
                    f"{p.reference!r} is also the reference of payment id {first}: give each "
                    "payment its own reference in billing",
                )
            )
        if p.status in ("failed", "reversed") and p.applications:
            problems.append(
                Problem(
                    "applications",
                    f"a {p.status} payment cannot pay invoices: remove its applications in billing",
                )
            )
        per_invoice: dict[int, Decimal] = defaultdict(Decimal)
        for app in p.applications:
            where = f"application {app.id}.invoice_id"
            problems += _invoice_link(state, app.invoice_id, where)
            invoice = state.invoices.get(app.invoice_id)
            if invoice is None or app.amount is None:
                continue
            per_invoice[app.invoice_id] += app.amount
            if invoice.customer_id != p.customer_id:
                problems.append(
                    Problem(
                        where,
                        f"{invoice.label} belongs to customer id {invoice.customer_id}, not to "
                        f"the payer (customer id {p.customer_id}): apply the payment only to "
                        "the payer's invoices",
                    )
                )
            if invoice.currency != cur:
                problems.append(
                    Problem(
                        where,
                        f"{invoice.label} is in {invoice.currency}, the payment in {cur}: apply "
                        "a payment only to invoices in its currency",
                    )
                )
            if invoice.status == "void":
                problems.append(
                    Problem(
                        where,
                        f"{invoice.label} is void: remove the application in billing (the "
                        "money stays unapplied and may be refunded)",
                    )
                )
            if (
                app.applied_on is not None
                and invoice.issue_date is not None
                and app.applied_on < invoice.issue_date
            ):
                problems.append(
                    _date_order_problem(
                        f"application {app.id}.applied_on",
                        app.applied_on,
                        invoice.issue_date,
                        f"{invoice.label}'s date",
                    )
                )
        if p.status == "succeeded":
            for invoice_id, amount in per_invoice.items():
                invoice = state.invoices[invoice_id]
                left = invoice.total - invoice.applied
                if amount > left:
                    problems.append(
                        Problem(
                            "applications",
                            f"apply {money_text(amount, cur)} to {invoice.label}, which has "
                            f"only {money_text(left, cur)} left to pay of "
                            f"{money_text(invoice.total, cur)}: apply at most that in billing "
                            "(the rest stays unapplied)",
                        )
                    )
        if problems:
            state.reject("payment", p.id, p.label, cur, p.amount, problems)
            state.rejected_sources[("payment", p.id)] = p.label
            continue
        if p.status == "succeeded":
            for invoice_id, amount in per_invoice.items():
                state.invoices[invoice_id].applied += amount
        state.payments[p.id] = _Remaining(
            p.label,
            p.customer_id,
            cur,
            p.received_on,
            p.unapplied,
            p.status == "succeeded",
            p.status,
        )


def _refunds(state: _Pass, records: Iterable[SourceRecord]) -> None:
    refunds = [r for r in records if isinstance(r, Refund)]
    duplicates = _duplicates((r.id, r.reference) for r in refunds)
    # What is left to refund is taken in the order the refunds were made.
    for r in sorted(refunds, key=lambda r: (r.refunded_on or date.min, r.id)):
        cur = r.currency
        problems = refund_problems(r)
        link, _customer = state.customer_link(r.customer_id, cur, what="refund")
        problems += link
        if r.id in duplicates:
            problems.append(
                Problem(
                    "reference",
                    f"{r.reference!r} is also the reference of refund id {duplicates[r.id]}: "
                    "give each refund its own reference in billing",
                )
            )
        source: _Remaining | None = None
        where = "payment_id"
        if r.payment_id is not None and r.credit_note_id is None:
            key = ("payment", r.payment_id)
            source = state.payments.get(r.payment_id)
        elif r.credit_note_id is not None and r.payment_id is None:
            key = ("credit_note", r.credit_note_id)
            source = state.notes.get(r.credit_note_id)
            where = "credit_note_id"
        else:
            key = ("", 0)
        if key in state.rejected_sources:
            problems.append(Problem(where, _fix_first(state.rejected_sources[key])))
        if source is not None:
            if source.customer_id != r.customer_id:
                problems.append(
                    Problem(
                        "customer_id",
                        f"customer id {r.customer_id} is not the customer of {source.label} "
                        f"(customer id {source.customer_id}): refund the customer who paid",
                    )
                )
            if source.currency != cur:
                problems.append(
                    Problem(
                        "currency",
                        f"{cur!r} differs from {source.label}'s currency {source.currency!r}: "
                        "a refund is in the currency of what it returns",
                    )
                )
            if not source.usable:
                problems.append(
                    Problem(
                        where,
                        f"{source.label} is {source.status}, so there is nothing to refund: "
                        "delete the refund in billing",
                    )
                )
            elif r.amount is not None and r.amount > source.left:
                what = "unapplied cash" if where == "payment_id" else "credit"
                left = money_text(source.left, cur)
                fix = (
                    f"refund at most {left} in billing"
                    if source.left > _ZERO
                    else "delete the refund in billing or point it at what it really returns"
                )
                problems.append(
                    Problem(
                        "amount",
                        f"{money_text(r.amount, cur)} exceeds the {what} left on "
                        f"{source.label} after earlier refunds ({left}): {fix}",
                    )
                )
            if r.refunded_on is not None and source.day is not None and r.refunded_on < source.day:
                problems.append(
                    _date_order_problem(
                        "refunded_on", r.refunded_on, source.day, f"{source.label}'s date"
                    )
                )
        if problems:
            state.reject("refund", r.id, r.label, cur, r.amount, problems)
            continue
        assert source is not None
        source.left -= r.amount


def _duplicates(numbers: Iterable[tuple[int, str]]) -> dict[int, int]:
    """Record id -> the id of the first record (by id) that already holds its number."""
    first: dict[str, int] = {}
    out: dict[int, int] = {}
    for record_id, number in sorted(numbers):
        holder = first.setdefault(number, record_id)
        if holder != record_id:
            out[record_id] = holder
    return out


def _month(day: date) -> date:
    return day.replace(day=1)


def _revenue(state: _Pass, records: Iterable[SourceRecord]) -> None:
    """Schedule entries come grouped by line: judge each line's schedule as a whole."""
    group: list[RevenueEntry] = []
    for entry in records:
        assert isinstance(entry, RevenueEntry)
        if group and group[0].invoice_line_id != entry.invoice_line_id:
            _schedule(state, group)
            group = []
        group.append(entry)
    if group:
        _schedule(state, group)


def _schedule(state: _Pass, entries: list[RevenueEntry]) -> None:
    line = state.lines.get(entries[0].invoice_line_id)
    invoice = state.invoices.get(line.invoice_id) if line else None
    total = sum((e.amount for e in entries if e.amount is not None), _ZERO)
    cur = entries[0].currency
    sum_problem: Problem | None = None
    if line is not None and total != line.amount - line.credited:
        expected = line.amount - line.credited
        void = invoice is not None and invoice.status == "void"
        sum_problem = Problem(
            "amount",
            f"the schedule of {invoice.label if invoice else 'its invoice'} line {line.line_no} "
            f"adds up to {money_text(total, cur)}, not to "
            + (
                "zero for a void invoice"
                if void
                else f"the line's amount less credits {money_text(expected, cur)}"
            )
            + ": correct the line's schedule entries in billing",
        )
    for entry in entries:
        problems = revenue_entry_problems(entry)
        if entry.invoice_id is not None and entry.invoice_id in state.rejected_invoices:
            problems.append(
                Problem("invoice_line_id", _fix_first(state.rejected_invoices[entry.invoice_id]))
            )
        if line is not None and invoice is not None:
            problems += _period_problems(entry, line, invoice)
        if sum_problem is not None:
            problems.append(sum_problem)
        if problems:
            state.reject(
                "revenue_entry", entry.id, entry.label, entry.currency, entry.amount, problems
            )


def _period_problems(
    entry: RevenueEntry, line: _LineFacts, invoice: _InvoiceFacts
) -> list[Problem]:
    """Revenue is earned inside the service period (the issue month for a point-in-time line);
    a reversal (negative) may fall later, in the month of the credit note or void."""
    if line.pattern == "ratable" and line.service_start and line.service_end:
        first, last = _month(line.service_start), _month(line.service_end)
        what = f"the service period {line.service_start} to {line.service_end}"
    elif invoice.issue_date is not None:
        first = last = _month(invoice.issue_date)
        what = f"the issue month of {invoice.label}"
    else:
        return []
    month = _month(entry.period)
    if month < first or (month > last and entry.amount is not None and entry.amount > _ZERO):
        return [
            Problem(
                "period",
                f"{entry.period:%Y-%m} is outside {what}: date the entry inside it in billing",
            )
        ]
    return []


def validate_billing(source: BillingSource, *, entities: Collection[str] | None = None) -> Verdicts:
    """Check every billing record against the contract, in one streaming pass.

    ``entities`` are the billing entity codes finsync knows (the mapping file's [entities]);
    None accepts any entity. Returns the rejected records with their problems.
    """
    state = _Pass(entities=entities)
    _customers(state, source.all_records("customer"))
    _products(state, source.products())
    _invoices(state, source.all_records("invoice"))
    _credit_notes(state, source.all_records("credit_note"))
    _payments(state, source.all_records("payment"))
    _refunds(state, source.all_records("refund"))
    _revenue(state, source.all_records("revenue"))
    return Verdicts(state.rejections)
