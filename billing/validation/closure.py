"""The cross-record pass over billing, kind by kind in dependency order: the facts kept of
accepted records (customers, invoices and their lines, what payments and credit notes have
left), the checks that need them, and the rejection closure: a record that refers to a
rejected record is rejected too, naming it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from billing.records import (
    CreditNote,
    Customer,
    Invoice,
    Payment,
    Product,
    Refund,
    SourceRecord,
)
from billing.validation.in_record import (
    credit_note_problems,
    customer_problems,
    invoice_problems,
    payment_problems,
    product_problems,
    refund_problems,
)
from billing.validation.verdicts import Rejection
from billing.validation.wording import ZERO, date_order_problem, fix_first, money_text
from core.errors import Problem
from core.money import is_known_currency


@dataclass(slots=True)
class _CustomerFacts:
    label: str
    billing_entity: str
    currency: str


@dataclass(slots=True)
class InvoiceFacts:
    """What later kinds need of an accepted invoice."""

    label: str
    customer_id: int
    currency: str
    status: str
    issue_date: date | None
    total: Decimal
    applied: Decimal = ZERO  # by accepted succeeded payments


@dataclass(slots=True)
class LineFacts:
    """What credit notes and revenue schedules need of an accepted invoice line."""

    invoice_id: int
    line_no: int
    amount: Decimal
    pattern: str | None
    service_start: date | None
    service_end: date | None
    credited: Decimal = ZERO  # by accepted issued credit notes


@dataclass(slots=True)
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
class Pass:
    """The state of one validation pass: the rejections so far and the facts of the
    accepted records that later kinds are checked against."""

    entities: Collection[str] | None
    rejections: list[Rejection] = field(default_factory=list)
    rejected: set[tuple[str, int]] = field(default_factory=set)
    customers: dict[int, _CustomerFacts] = field(default_factory=dict)
    rejected_customers: dict[int, str] = field(default_factory=dict)  # id -> label
    products: dict[int, str] = field(default_factory=dict)  # accepted: id -> revenue pattern
    rejected_products: dict[int, str] = field(default_factory=dict)  # id -> label
    invoices: dict[int, InvoiceFacts] = field(default_factory=dict)
    rejected_invoices: dict[int, str] = field(default_factory=dict)
    lines: dict[int, LineFacts] = field(default_factory=dict)
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
                    Problem("customer_id", fix_first(self.rejected_customers[customer_id]))
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


def check_customers(state: Pass, records: Iterable[SourceRecord]) -> None:
    """Customers: in-record checks, known entity, unique account numbers."""
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


def check_products(state: Pass, products: Mapping[int, Product]) -> None:
    """Products: in-record checks and unique SKUs."""
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


def check_invoices(state: Pass, records: Iterable[SourceRecord]) -> None:
    """Invoices: in-record checks, their customer (currency, entity), products, unique numbers."""
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
                        fix_first(state.rejected_products[line.product_id]),
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
        state.invoices[inv.id] = InvoiceFacts(
            inv.label, inv.customer_id, inv.currency, inv.status, inv.issue_date, inv.total
        )
        for line in inv.lines:
            product = line.product
            state.lines[line.id] = LineFacts(
                inv.id,
                line.line_no,
                ZERO if inv.status == "void" else line.amount,
                product.revenue_pattern if product else None,
                line.service_start,
                line.service_end,
            )


def _invoice_link(state: Pass, invoice_id: int, where: str) -> list[Problem]:
    if invoice_id in state.rejected_invoices:
        return [Problem(where, fix_first(state.rejected_invoices[invoice_id]))]
    return []


def check_credit_notes(state: Pass, records: Iterable[SourceRecord]) -> None:
    """Credit notes, in issue order: their invoice and its lines, what the invoice still owes."""
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
                    date_order_problem(
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


def check_payments(state: Pass, records: Iterable[SourceRecord]) -> None:
    """Payments: their customer, the invoices they pay and what those have left to pay."""
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
                    date_order_problem(
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


def check_refunds(state: Pass, records: Iterable[SourceRecord]) -> None:
    """Refunds, in refund order: the payment or credit note they return and what it has left."""
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
            problems.append(Problem(where, fix_first(state.rejected_sources[key])))
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
                    if source.left > ZERO
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
                    date_order_problem(
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
