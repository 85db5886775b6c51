"""Billing records -> Tryton documents (pure: no I/O, no clock, no float).

Tryton keeps one company per billing entity (``[tryton.companies]``), each with its own chart;
payloads name accounts and journals by their Tryton codes, which the connector resolves in the
document's company (and checks at start). Amounts, quantities and prices are exact decimal
strings, dates ISO strings. References to documents finsync syncs are external ids: the party of
an invoice is ``party`` = the customer's external id, a payment's invoices are invoice external
ids; the connector finds them by the reference Tryton stores.

- Customers -> parties (``code`` = billing account number; the external id is kept as a party
  identifier, which is what the connector searches).
- Invoices -> customer invoices posted in the invoice journal. Tryton's invoice lines post to
  revenue-type accounts only, so every line credits its product family's revenue account and a
  ratable line is then deferred by a ``deferrals`` pair (debit revenue, credit deferred revenue,
  posted in the general journal, as Tryton's own invoice deferral does); the revenue journals
  move it back month by month. Billing's tax amounts are exact, so taxes are manual invoice taxes
  (one per jurisdiction and rate) on the tax account of the product's tax code.
- Credit notes -> credit invoices (negative quantities, manual negative taxes), each line linked
  to the line of the invoice it credits (``credits`` names that invoice); ratable lines reverse
  their deferral.
- Payments and refunds -> account moves in the cash journal against the customer's receivable
  line, a payment's applications listing the invoices it pays. Failed or reversed payments and
  voided invoices or credit notes map to operation ``void``: Tryton never deletes posted
  documents, so the connector reverses them with a document of their own.
- Revenue journals (``mappings.revrec``) -> account moves: ``journal_move`` translates the
  journal's GL accounts through ``[tryton.accounts]``.

Every ``map_*`` raises one ``MappingError`` listing every problem with its field path and fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Any

from billing.records import CreditNote, Customer, Invoice, Payment, Product, Refund
from billing.validation import (
    credit_note_problems,
    customer_problems,
    invoice_problems,
    payment_problems,
    refund_problems,
)
from core.documents import DocKey, Document
from core.errors import MappingError, Problem
from core.money import amount_text, decimal_text
from mappings.netsuite import (
    credit_note_external_id,
    customer_external_id,
    invoice_external_id,
    payment_external_id,
    refund_external_id,
)
from mappings.revrec import JournalKey
from mappings.tables import MappingTables, TrytonTables

#: The target name of every document this module builds.
TARGET = "tryton"
#: Decimal places of a Tryton unit price (its ``price_decimal`` default).
PRICE_DECIMALS = 4
_ZERO = Decimal(0)


def _quantity_price(amount: Decimal, quantity: Decimal) -> tuple[str, str]:
    """(quantity, unit price) whose product is exactly ``amount``: the billed quantity when the
    price it implies fits Tryton's price digits, else quantity 1 at the amount."""
    if quantity > _ZERO:
        with localcontext() as ctx:
            ctx.prec = 50
            price = amount / quantity
            exponent = price.normalize().as_tuple().exponent
            if (
                price * quantity == amount
                and isinstance(exponent, int)
                and -exponent <= PRICE_DECIMALS
            ):
                return decimal_text(quantity), decimal_text(price)
    return "1", decimal_text(amount)


class _Look:
    """Collects lookup problems while resolving mapping-table codes."""

    def __init__(self, tables: MappingTables, problems: list[Problem]) -> None:
        self.t = tables
        self.problems = problems
        self.tryton: TrytonTables = tables.tryton or TrytonTables(
            companies={},
            accounts={},
            taxes={},
            payment_methods={},
            receivable_account="",
            refund_account="",
        )
        if tables.tryton is None:
            problems.append(
                Problem(
                    "mapping",
                    f"{tables.source} has no [tryton] section: add it (see mapping.example.toml)",
                )
            )

    def company(self, entity: str | None, field: str = "billing_entity") -> str:
        company = self.tryton.companies.get(entity or "")
        if company is None and self.t.tryton is not None:
            self.problems.append(
                Problem(
                    field,
                    f"no Tryton company mapped for billing entity {entity!r}: add "
                    f'{entity} = "<company id>" to the {self.t.describe("tryton.companies")}',
                )
            )
        return company or ""

    def account(self, gl_account: str, where: str, what: str) -> str:
        code = self.tryton.accounts.get(gl_account)
        if code is None and self.t.tryton is not None:
            self.problems.append(
                Problem(
                    where,
                    f"no Tryton account mapped for {what} GL account {gl_account!r}: add "
                    f'"{gl_account}" = "<account code>" to the '
                    f"{self.t.describe('tryton.accounts')}",
                )
            )
        return code or ""

    def family(self, product: Product, where: str) -> tuple[str, str] | None:
        """(revenue account, deferred revenue account) codes of the product's family."""
        family = self.t.product_families.get(product.product_family)
        if family is None:
            self.problems.append(
                Problem(
                    f"{where}.product",
                    f"no accounts mapped for product family {product.product_family!r}: add "
                    f"[product_families.{product.product_family}] to the "
                    f"{self.t.describe('product_families')}",
                )
            )
            return None
        revenue = self.account(family.revenue_account, f"{where}.product", "revenue")
        deferred = self.account(
            family.deferred_revenue_account, f"{where}.product", "deferred revenue"
        )
        return revenue, deferred

    def tax_account(self, product: Product, where: str) -> str:
        code = self.tryton.taxes.get(product.tax_code or "")
        if code is None and self.t.tryton is not None:
            self.problems.append(
                Problem(
                    f"{where}.tax_code",
                    f"no Tryton tax account mapped for tax code {product.tax_code!r} "
                    f"(product {product.sku!r}): add it to the {self.t.describe('tryton.taxes')}",
                )
            )
        return code or ""


def _document(
    kind: str,
    record_id: int,
    external_id: str,
    record_type: str,
    label: str,
    payload: dict[str, Any],
    depends_on: tuple[DocKey, ...] = (),
    *,
    void: bool = False,
) -> Document:
    return Document(
        target=TARGET,
        kind=kind,
        source_id=str(record_id),
        external_id=external_id,
        record_type=record_type,
        label=label,
        payload=payload,
        operation="void" if void else "upsert",
        depends_on=tuple(dict.fromkeys(depends_on)),
    )


def map_customer(c: Customer, t: MappingTables) -> Document:
    """A billing customer -> a Tryton party. Raises MappingError with every problem found."""
    problems = customer_problems(c)
    look = _Look(t, problems)
    look.company(c.billing_entity)
    if problems:
        raise MappingError(c.label, problems)
    address = {
        key: value
        for key, value in (
            ("street", c.address_line1),
            ("city", c.city),
            ("postal_code", c.postal_code),
            ("country", c.country),
            ("subdivision", c.region),
        )
        if value
    }
    payload: dict[str, Any] = {
        "code": c.account_number,
        "name": c.name.strip(),
        "address": address,
    }
    if c.email:
        payload["email"] = c.email
    return _document(
        "customer", c.id, customer_external_id(c.account_number), "party.party", c.label, payload
    )


def _tax_lines(
    items: list[tuple[str, str, Decimal, Decimal]], currency: str
) -> list[dict[str, str]]:
    """Manual taxes: one per (account, description), summing base and tax exactly."""
    sums: dict[tuple[str, str], list[Decimal]] = {}
    for account, description, base, tax in items:
        if tax == _ZERO:
            continue
        entry = sums.setdefault((account, description), [_ZERO, _ZERO])
        entry[0] += base
        entry[1] += tax
    return [
        {
            "description": description,
            "base": amount_text(base, currency),
            "amount": amount_text(tax, currency),
            "account": account,
        }
        for (account, description), (base, tax) in sorted(sums.items())
    ]


def _invoice_payload(inv: Invoice, t: MappingTables, problems: list[Problem]) -> dict[str, Any]:
    look = _Look(t, problems)
    company = look.company(inv.billing_entity)
    lines: list[dict[str, Any]] = []
    taxes: list[tuple[str, str, Decimal, Decimal]] = []
    deferrals: dict[tuple[str, str], Decimal] = {}
    for line in inv.lines:
        where = f"line {line.line_no}"
        if line.product is None:
            continue  # validate.py reported it
        accounts = look.family(line.product, where)
        if line.tax_amount != _ZERO:
            percent = decimal_text(line.tax_rate * 100)
            taxes.append(
                (
                    look.tax_account(line.product, where),
                    f"{line.tax_jurisdiction or 'tax'} {percent}%",
                    line.amount,
                    line.tax_amount,
                )
            )
        if accounts is None:
            continue
        revenue, deferred = accounts
        quantity, price = _quantity_price(line.amount, line.quantity)
        description = line.description or line.product.name
        if quantity != decimal_text(line.quantity):
            description += f" ({decimal_text(line.quantity)} x {decimal_text(line.unit_price)})"
        lines.append(
            {
                "sequence": line.line_no,
                "description": description,
                "quantity": quantity,
                "unit_price": price,
                "account": revenue,
            }
        )
        if line.product.revenue_pattern == "ratable" and line.amount != _ZERO:
            key = (revenue, deferred)
            deferrals[key] = deferrals.get(key, _ZERO) + line.amount
    return {
        "company": company,
        "party": customer_external_id(inv.customer_account or ""),
        "number": inv.number,
        "invoice_date": inv.issue_date.isoformat() if inv.issue_date else None,
        "currency": inv.currency,
        "journal": look.tryton.invoice_journal,
        "account": look.tryton.receivable_account,
        "description": inv.number if not inv.memo else f"{inv.number} {inv.memo}"[:200],
        "lines": lines,
        "taxes": _tax_lines(taxes, inv.currency),
        "deferrals": [
            {"revenue_account": r, "deferred_account": d, "amount": amount_text(a, inv.currency)}
            for (r, d), a in sorted(deferrals.items())
        ],
        "deferral_journal": look.tryton.general_journal,
        "total": amount_text(inv.total, inv.currency),
    }


def map_invoice(inv: Invoice, t: MappingTables) -> Document:
    """A billing invoice -> a posted Tryton customer invoice (see the module doc).

    Raises MappingError with every problem found.
    """
    problems = invoice_problems(inv)
    payload = _invoice_payload(inv, t, problems)
    if problems:
        raise MappingError(inv.label, problems)
    void = inv.status == "void" or inv.voided_at is not None
    if void:
        voided = inv.voided_at or inv.updated_at
        payload["void_date"] = voided.date().isoformat()
    deps = (DocKey("customer", str(inv.customer_id)),)
    return _document(
        "invoice",
        inv.id,
        invoice_external_id(inv.number),
        "account.invoice",
        inv.label,
        payload,
        deps,
        void=void,
    )


def map_credit_note(note: CreditNote, t: MappingTables) -> Document:
    """A billing credit note -> a posted Tryton credit invoice linked to the invoice it credits.

    Raises MappingError with every problem found.
    """
    problems = credit_note_problems(note)
    look = _Look(t, problems)
    company = look.company(note.billing_entity)
    lines: list[dict[str, Any]] = []
    taxes: list[tuple[str, str, Decimal, Decimal]] = []
    deferrals: dict[tuple[str, str], Decimal] = {}
    for line in note.lines:
        where = f"line {line.line_no}"
        if line.product is None:
            continue
        accounts = look.family(line.product, where)
        if line.tax_amount != _ZERO:
            taxes.append(
                (
                    look.tax_account(line.product, where),
                    f"tax credited by {note.number}",
                    -line.amount,
                    -line.tax_amount,
                )
            )
        if accounts is None:
            continue
        revenue, deferred = accounts
        lines.append(
            {
                "sequence": line.line_no,
                "description": line.description or line.product.name,
                "quantity": "-1",
                "unit_price": decimal_text(line.amount),
                "account": revenue,
            }
        )
        if line.product.revenue_pattern == "ratable" and line.amount != _ZERO:
            key = (revenue, deferred)
            deferrals[key] = deferrals.get(key, _ZERO) - line.amount
    if problems:
        raise MappingError(note.label, problems)
    payload = {
        "company": company,
        "party": customer_external_id(note.customer_account or ""),
        "number": note.number,
        "invoice_date": note.issue_date.isoformat() if note.issue_date else None,
        "currency": note.currency,
        "journal": look.tryton.invoice_journal,
        "account": look.tryton.receivable_account,
        "description": f"{note.number} credits {note.invoice_number}: {note.reason}"[:200],
        "credits": invoice_external_id(note.invoice_number or ""),
        "lines": lines,
        "taxes": _tax_lines(taxes, note.currency),
        "deferrals": [
            {"revenue_account": r, "deferred_account": d, "amount": amount_text(a, note.currency)}
            for (r, d), a in sorted(deferrals.items())
        ],
        "deferral_journal": look.tryton.general_journal,
        "total": amount_text(-note.total, note.currency),
    }
    if note.status == "void":
        payload["void_date"] = note.updated_at.date().isoformat()
    deps = (
        DocKey("customer", str(note.customer_id)),
        DocKey("invoice", str(note.invoice_id)),
    )
    return _document(
        "credit_note",
        note.id,
        credit_note_external_id(note.number),
        "account.invoice",
        note.label,
        payload,
        deps,
        void=note.status == "void",
    )


def map_payment(p: Payment, t: MappingTables) -> Document:
    """A billing payment -> a cash move against the customer's receivable, paying its invoices.

    Raises MappingError with every problem found.
    """
    problems = payment_problems(p)
    look = _Look(t, problems)
    company = look.company(p.billing_entity)
    cash = look.tryton.payment_methods.get(p.method)
    if cash is None and t.tryton is not None:
        problems.append(
            Problem(
                "method",
                f"no Tryton account mapped for payment method {p.method!r}: add it to the "
                f"{t.describe('tryton.payment_methods')}",
            )
        )
    if problems:
        raise MappingError(p.label, problems)
    assert p.received_on is not None  # payment_problems checked it
    payload = {
        "company": company,
        "party": customer_external_id(p.customer_account or ""),
        "date": p.received_on.isoformat(),
        "journal": look.tryton.cash_journal,
        "description": f"{p.method} payment {p.reference}",
        "cash_account": cash,
        "receivable_account": look.tryton.receivable_account,
        "amount": amount_text(p.amount, p.currency),
        "applications": [
            {
                "invoice": invoice_external_id(a.invoice_number or ""),
                "amount": amount_text(a.amount, p.currency),
            }
            for a in sorted(p.applications, key=lambda a: a.id)
        ],
    }
    deps = (
        DocKey("customer", str(p.customer_id)),
        *(DocKey("invoice", str(a.invoice_id)) for a in p.applications),
    )
    return _document(
        "payment",
        p.id,
        payment_external_id(p.reference),
        "account.move",
        p.label,
        payload,
        deps,
        void=p.status in ("failed", "reversed"),
    )


def map_refund(r: Refund, t: MappingTables) -> Document:
    """A billing refund -> a cash move paying money back against the customer's receivable.

    Raises MappingError with every problem found.
    """
    problems = refund_problems(r)
    look = _Look(t, problems)
    company = look.company(r.billing_entity)
    if problems:
        raise MappingError(r.label, problems)
    assert r.refunded_on is not None  # refund_problems checked it
    what = (
        f"credit note {r.credit_note_number}"
        if r.credit_note_number
        else f"payment {r.payment_reference}"
    )
    payload = {
        "company": company,
        "party": customer_external_id(r.customer_account or ""),
        "date": r.refunded_on.isoformat(),
        "journal": look.tryton.cash_journal,
        "description": f"refund {r.reference} of {what}",
        "cash_account": look.tryton.refund_account,
        "receivable_account": look.tryton.receivable_account,
        "amount": amount_text(-r.amount, r.currency),
        "applications": [],
    }
    deps: list[DocKey] = [DocKey("customer", str(r.customer_id))]
    if r.credit_note_id is not None:
        deps.append(DocKey("credit_note", str(r.credit_note_id)))
    if r.payment_id is not None:
        deps.append(DocKey("payment", str(r.payment_id)))
    return _document(
        "refund",
        r.id,
        refund_external_id(r.reference),
        "account.move",
        r.label,
        payload,
        tuple(deps),
    )


@dataclass(frozen=True)
class ConnectorTables:
    """The mapping tables as the Tryton connector takes them (``check_mapping``): the
    ``[tryton]`` section, and the translation of revenue journals, which is mapping code."""

    tables: MappingTables

    @property
    def source(self) -> str:
        """The mapping file, for messages."""
        return self.tables.source

    @property
    def tryton(self) -> TrytonTables | None:
        """The ``[tryton]`` section, or None when the file has none."""
        return self.tables.tryton

    def journal_move(self, document: Document) -> dict[str, Any]:
        """``journal_move`` of ``document`` with these tables."""
        return journal_move(document, self.tables)


def journal_move(document: Document, t: MappingTables) -> dict[str, Any]:
    """The Tryton move of a revenue journal document built by ``mappings.revrec``.

    Lines keep their debit and credit; GL accounts become Tryton account codes. Raises
    MappingError naming the journal and every account that has no Tryton code.
    """
    problems: list[Problem] = []
    look = _Look(t, problems)
    try:
        key = JournalKey.parse(document.source_id)
    except ValueError:
        raise MappingError(
            document.label, [Problem("source_id", "not a revenue journal")]
        ) from None
    company = look.company(key.entity)
    payload: Mapping[str, Any] = document.payload
    lines = []
    for n, line in enumerate(payload.get("lineList", ()), start=1):
        gl = str(line["account"]["internalId"])
        lines.append(
            {
                "account": look.account(gl, f"line {n}.account", "journal"),
                "debit": line.get("debit", "0"),
                "credit": line.get("credit", "0"),
                "description": line.get("memo", ""),
            }
        )
    if problems:
        raise MappingError(document.label, problems)
    return {
        "company": company,
        "date": payload["tranDate"],
        "journal": look.tryton.general_journal,
        "description": payload.get("memo", document.label),
        "currency": key.currency,
        "lines": lines,
    }
