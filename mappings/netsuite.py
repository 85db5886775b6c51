"""Billing records -> NetSuite documents (pure: no I/O, no clock, no float).

Each ``map_*`` function returns one ``Document`` whose payload is a transport-neutral,
JSON-compatible dict that both NetSuite connectors (SOAP and REST) translate:

- field names are NetSuite's record field names (``tranDate``, ``itemList``, ``applyList``);
- amounts are exact decimal strings rounded to the currency (``"1234.50"``, JPY ``"7400"``,
  KWD ``"15.250"``); quantities, rates and tax percentages are exact decimal strings too;
- dates are ISO ``YYYY-MM-DD`` strings (NetSuite dates are calendar dates);
- references to records finsync itself syncs are ``{"externalId": ...}``; references to ids from
  the mapping file are ``{"internalId": ...}``;
- sublists are plain lists under ``itemList``, ``applyList``, ``addressbookList``;
- an apply line's ``doc`` is an invoice unless its reference names another record ``type``
  (a refund applies to a ``customerPayment`` or a ``creditMemo``).

Conventions worth knowing:

- Service periods: billing's ``service_start``..``service_end`` are inclusive on both sides and so
  are NetSuite's ``revRecStartDate``..``revRecEndDate``; the dates pass through unchanged (no
  "+1 day" as for exclusive-end sources).
- Discounts: a line's ``amount`` is billing's net amount (after discount). ``rate`` is
  ``amount / quantity`` when that division is exact (so quantity x rate = amount), otherwise
  rounded to ``RATE_DECIMALS`` places while ``amount`` stays exact.
- Tax: each line carries billing's own tax amount as ``tax1Amt`` (and ``taxRate1`` in percent);
  the lines' ``tax1Amt`` sum to billing's tax total, so NetSuite's total (sum of ``amount`` plus
  ``tax1Amt``) equals billing's total. The header ``taxTotal`` is not sent: NetSuite computes it
  and refuses writes to it.
- Voids: a voided invoice or credit note, and a failed or reversed payment, maps to operation
  ``"void"``. Its payload is what NetSuite's own direct void leaves behind: every amount zero,
  no applications, memo starting with ``VOID``. NetSuite's 2023_2 SOAP endpoint has no void
  operation, so connectors write that payload with an upsert on the same external id.
- Refunds: billing refunds have no status of their own. One whose payment failed or was
  reversed, or whose credit note was voided, has nothing left to refund: billing validation
  rejects it, so it is quarantined and never sent.

Every ``map_*`` raises one ``MappingError`` listing every problem with its field path and fix.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Any

from billing.records import (
    CreditNote,
    Customer,
    Invoice,
    InvoiceLine,
    Payment,
    Product,
    Refund,
)
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
from core.netsuite_countries import NETSUITE_COUNTRIES
from mappings.limits import netsuite_problems
from mappings.tables import MappingTables

#: The target name of every document this module builds.
TARGET = "netsuite"
#: Decimal places of a line rate when amount / quantity is not exact.
RATE_DECIMALS = 8
#: The tax code key used for tax-exempt customers in the mapping file's [tax_codes] table.
EXEMPT_TAX_CODE = "EXEMPT"

_ZERO = Decimal(0)
_VOID_MEMO = "VOID"


def customer_external_id(account_number: str) -> str:
    """The NetSuite externalId of the customer with billing account number ``account_number``."""
    return f"finsync:cust:{account_number}"


def invoice_external_id(number: str) -> str:
    """The NetSuite externalId of the invoice numbered ``number`` in billing."""
    return f"finsync:inv:{number}"


def credit_note_external_id(number: str) -> str:
    """The NetSuite externalId of the credit note numbered ``number`` in billing."""
    return f"finsync:cn:{number}"


def payment_external_id(reference: str) -> str:
    """The NetSuite externalId of the payment with billing reference ``reference``."""
    return f"finsync:pay:{reference}"


def refund_external_id(reference: str) -> str:
    """The NetSuite externalId of the refund with billing reference ``reference``."""
    return f"finsync:ref:{reference}"


def _ref(internal_id: str) -> dict[str, str]:
    return {"internalId": internal_id}


def _ext(external_id: str) -> dict[str, str]:
    return {"externalId": external_id}


#: Exact enough for any billing amount and quantity: rates are computed and checked here.
_RATE_CONTEXT = Context(prec=50)
_RATE_QUANTUM = Decimal(1).scaleb(-RATE_DECIMALS)


def _rate(amount: Decimal, quantity: Decimal, unit_price: Decimal) -> str:
    """The rate NetSuite multiplies by the quantity: exact when it can be, else rounded.

    The usual line (no discount) has amount = quantity x unit price: its rate is the unit
    price, with no division.
    """
    if quantity == _ZERO:
        return decimal_text(unit_price)
    exact = _RATE_CONTEXT
    if (
        exact.multiply(unit_price, quantity) == amount
        and unit_price.normalize().as_tuple().exponent >= -RATE_DECIMALS  # type: ignore[operator]
    ):
        return decimal_text(unit_price)
    rate = exact.divide(amount, quantity)
    if exact.multiply(rate, quantity) == amount and -rate.as_tuple().exponent <= RATE_DECIMALS:  # type: ignore[operator]
        return decimal_text(rate)
    return decimal_text(rate.quantize(_RATE_QUANTUM, rounding=ROUND_HALF_UP))


class _Lookups:
    """Collects lookup problems while resolving mapping-table ids."""

    def __init__(self, tables: MappingTables, problems: list[Problem]) -> None:
        self.t = tables
        self.problems = problems

    def subsidiary(self, entity: str | None, field: str = "billing_entity") -> dict[str, str]:
        mapping = self.t.entities.get(entity or "")
        if mapping is None:
            self.problems.append(
                Problem(
                    field,
                    f"no NetSuite subsidiary mapped for billing entity {entity!r}: add "
                    f"[entities.{entity}] with netsuite_subsidiary to the "
                    f"{self.t.describe('entities')}",
                )
            )
            return {}
        return _ref(mapping.netsuite_subsidiary)

    def currency(self, code: str, field: str = "currency") -> dict[str, str]:
        internal = self.t.currencies.get(code)
        if internal is None:
            self.problems.append(
                Problem(
                    field,
                    f"no NetSuite currency mapped for {code!r}: add it to the "
                    f"{self.t.describe('currencies')}",
                )
            )
            return {}
        return _ref(internal)

    def header_segments(self, entity: str | None) -> dict[str, dict[str, str]]:
        """department/class/location of the billing entity, where the mapping file sets them."""
        mapping = self.t.entities.get(entity or "")
        if mapping is None:
            return {}
        out: dict[str, dict[str, str]] = {}
        for name, value in (
            ("department", mapping.department),
            ("class", mapping.class_),
            ("location", mapping.location),
        ):
            if value is not None:
                out[name] = _ref(value)
        return out

    def line(
        self,
        where: str,
        product: Product | None,
        entity: str | None,
        exempt: bool,
    ) -> dict[str, Any]:
        """item, taxCode, department and class of one line of ``product``."""
        out: dict[str, Any] = {}
        if product is None:
            return out  # billing.validation already reported the missing product
        item = self.t.items.get(product.sku)
        if item is None:
            self.problems.append(
                Problem(
                    f"{where}.product",
                    f"no item mapped for SKU {product.sku!r}: add it to {self.t.describe('items')}",
                )
            )
        else:
            out["item"] = _ref(item)
        tax_key = EXEMPT_TAX_CODE if exempt else product.tax_code
        if tax_key is None:
            self.problems.append(
                Problem(
                    f"{where}.product",
                    f"product {product.sku!r} has no tax code: set products.tax_code in billing",
                )
            )
        elif tax_key not in self.t.tax_codes:
            why = "tax-exempt customers use" if exempt else f"product {product.sku!r} has"
            self.problems.append(
                Problem(
                    f"{where}.tax_code",
                    f"no NetSuite tax code mapped for {tax_key!r} ({why} it): "
                    f"add it to {self.t.describe('tax_codes')}",
                )
            )
        else:
            out["taxCode"] = _ref(self.t.tax_codes[tax_key])
        family = self.t.product_families.get(product.product_family)
        entity_map = self.t.entities.get(entity or "")
        if family is None:
            self.problems.append(
                Problem(
                    f"{where}.product",
                    f"no accounts mapped for product family "
                    f"{product.product_family!r}: add [product_families."
                    f"{product.product_family}] to the mapping file "
                    f"({self.t.describe('product_families')})",
                )
            )
        else:
            department = family.department or (entity_map.department if entity_map else None)
            class_ = family.class_ or (entity_map.class_ if entity_map else None)
            if department is None:
                self.problems.append(
                    Problem(
                        f"{where}.department",
                        f"no department mapped for product family "
                        f"{product.product_family!r} or billing entity "
                        f"{entity!r}: set department in "
                        f"{self.t.describe('product_families')} or "
                        f"{self.t.describe('entities')}",
                    )
                )
            else:
                out["department"] = _ref(department)
            if class_ is not None:
                out["class"] = _ref(class_)
        return out


#: Billing fields behind the NetSuite fields whose length is checked (see mappings/limits.py).
_CUSTOMER_SOURCES = {"externalId": "account_number"}
_PAYMENT_SOURCES = {"externalId": "reference", "tranId": "reference", "memo": "reference"}
_REFUND_SOURCES = _PAYMENT_SOURCES


def _raise_if(label: str, problems: list[Problem]) -> None:
    if problems:
        raise MappingError(label, problems)


def _document(
    kind: str,
    record_id: int,
    external_id: str,
    record_type: str,
    label: str,
    payload: dict[str, Any],
    depends_on: Iterable[DocKey],
    *,
    void: bool = False,
) -> Document:
    deps = tuple(dict.fromkeys(depends_on))  # dedupe, keep order
    return Document(
        target=TARGET,
        kind=kind,
        source_id=str(record_id),
        external_id=external_id,
        record_type=record_type,
        label=label,
        payload=payload,
        operation="void" if void else "upsert",
        depends_on=deps,
    )


def map_customer(c: Customer, t: MappingTables) -> Document:
    """Map a billing customer to a NetSuite ``customer`` (a company, not a person).

    Raises MappingError with every problem found.
    """
    problems = customer_problems(c)
    look = _Lookups(t, problems)
    subsidiary = look.subsidiary(c.billing_entity)
    currency = look.currency(c.currency)
    if c.country and c.country not in NETSUITE_COUNTRIES:
        problems.append(
            Problem(
                "country",
                f"{c.country!r} is not a country NetSuite lists (2023_2 Country enumeration);"
                " correct the customer's country in billing to its ISO 3166 alpha-2 code",
            )
        )
    _raise_if(c.label, problems)
    payload: dict[str, Any] = {
        "entityId": c.account_number,
        "companyName": c.name.strip(),
        "isPerson": False,
        "subsidiary": subsidiary,
        "currency": currency,
    }
    if c.email:
        payload["email"] = c.email
    address = {
        key: value
        for key, value in (
            ("addr1", c.address_line1),
            ("city", c.city),
            ("state", c.region),
            ("zip", c.postal_code),
            ("country", c.country),
        )
        if value
    }
    if address:
        payload["addressbookList"] = [
            {"defaultBilling": True, "defaultShipping": True, "addressbookAddress": address}
        ]
    external_id = customer_external_id(c.account_number)
    _raise_if(c.label, netsuite_problems(external_id, payload, sources=_CUSTOMER_SOURCES))
    return _document("customer", c.id, external_id, "customer", c.label, payload, ())


def _tax_percent(rate: Decimal) -> str:
    return decimal_text(rate * 100)


def _invoice_line(
    line: InvoiceLine,
    currency: str,
    refs: dict[str, Any],
    void: bool,
) -> dict[str, Any]:
    out: dict[str, Any] = {k: refs[k] for k in ("item",) if k in refs}
    out["description"] = line.description
    if void:
        out.update(quantity="0", rate="0", amount=amount_text(_ZERO, currency))
    else:
        out.update(
            quantity=decimal_text(line.quantity),
            rate=_rate(line.amount, line.quantity, line.unit_price),
            amount=amount_text(line.amount, currency),
        )
    for key in ("taxCode", "department", "class"):
        if key in refs:
            out[key] = refs[key]
    out["taxRate1"] = _tax_percent(line.tax_rate)
    out["tax1Amt"] = amount_text(_ZERO if void else line.tax_amount, currency)
    if line.service_start is not None and line.service_end is not None:
        # Both sides inclusive: pass the dates through unchanged.
        out["revRecStartDate"] = line.service_start.isoformat()
        out["revRecEndDate"] = line.service_end.isoformat()
    return out


def _void_memo(memo: str | None) -> str:
    return f"{_VOID_MEMO}: {memo}" if memo else _VOID_MEMO


def map_invoice(inv: Invoice, t: MappingTables, *, customer: Customer | None = None) -> Document:
    """Map a billing invoice to a NetSuite ``invoice``.

    ``customer`` (the invoice's customer) decides tax-exempt handling: lines of an exempt
    customer carry the mapping file's EXEMPT tax code. A voided invoice maps to operation
    ``void`` (see the module docstring). Raises MappingError with every problem found.
    """
    problems = invoice_problems(inv)
    look = _Lookups(t, problems)
    subsidiary = look.subsidiary(inv.billing_entity)
    currency = look.currency(inv.currency)
    exempt = bool(customer and customer.id == inv.customer_id and customer.tax_exempt)
    line_refs = [
        look.line(f"line {li.line_no}", li.product, inv.billing_entity, exempt) for li in inv.lines
    ]
    _raise_if(inv.label, problems)
    assert inv.issue_date is not None and inv.due_date is not None
    assert inv.customer_account is not None
    void = inv.status == "void" or inv.voided_at is not None
    payload: dict[str, Any] = {
        "tranId": inv.number,
        "entity": _ext(customer_external_id(inv.customer_account)),
        "subsidiary": subsidiary,
        "currency": currency,
        "tranDate": inv.issue_date.isoformat(),
        "dueDate": inv.due_date.isoformat(),
        **look.header_segments(inv.billing_entity),
    }
    memo = _void_memo(inv.memo) if void else inv.memo
    if memo:
        payload["memo"] = memo
    payload["itemList"] = [
        _invoice_line(li, inv.currency, refs, void)
        for li, refs in zip(inv.lines, line_refs, strict=True)
    ]
    numbers = [li.line_no for li in inv.lines]
    _raise_if(
        inv.label,
        netsuite_problems(invoice_external_id(inv.number), payload, line_numbers=numbers),
    )
    return _document(
        "invoice",
        inv.id,
        invoice_external_id(inv.number),
        "invoice",
        inv.label,
        payload,
        [DocKey("customer", str(inv.customer_id))],
        void=void,
    )


def map_credit_note(
    note: CreditNote,
    t: MappingTables,
    *,
    customer: Customer | None = None,
) -> Document:
    """Map a billing credit note to a NetSuite ``creditMemo`` created from its invoice.

    The memo is applied to that invoice up to what the invoice still owed in billing
    (``note.invoice_open_amount``); the rest of the credit stays unapplied, as billing refunded
    it. ``customer`` decides tax-exempt handling as in ``map_invoice``. A voided credit note maps
    to operation ``void``. Raises MappingError.
    """
    problems = credit_note_problems(note)
    look = _Lookups(t, problems)
    subsidiary = look.subsidiary(note.billing_entity)
    currency = look.currency(note.currency)
    exempt = bool(customer and customer.id == note.customer_id and customer.tax_exempt)
    line_refs = [
        look.line(f"line {li.line_no}", li.product, note.billing_entity, exempt)
        for li in note.lines
    ]
    if not note.lines:
        problems.append(
            Problem("lines", "the credit note has no lines: NetSuite needs at least one item line")
        )
    _raise_if(note.label, problems)
    assert note.issue_date is not None and note.invoice_number is not None
    assert note.customer_account is not None
    void = note.status == "void"
    cur = note.currency
    invoice_ref = _ext(invoice_external_id(note.invoice_number))
    lines = []
    for li, refs in zip(note.lines, line_refs, strict=True):
        line: dict[str, Any] = {}
        if "item" in refs:
            line["item"] = refs["item"]
        line["description"] = li.description
        amount = _ZERO if void else li.amount
        line.update(quantity="1", rate=amount_text(amount, cur), amount=amount_text(amount, cur))
        for key in ("taxCode", "department", "class"):
            if key in refs:
                line[key] = refs[key]
        line["tax1Amt"] = amount_text(_ZERO if void else li.tax_amount, cur)
        lines.append(line)
    reason = _void_memo(note.reason) if void else note.reason
    payload: dict[str, Any] = {
        "tranId": note.number,
        "entity": _ext(customer_external_id(note.customer_account)),
        "subsidiary": subsidiary,
        "currency": currency,
        "tranDate": note.issue_date.isoformat(),
        "createdFrom": invoice_ref,
        **look.header_segments(note.billing_entity),
    }
    if reason:
        payload["memo"] = reason
    payload["itemList"] = lines
    payload["autoApply"] = False
    applied = note.total
    if note.invoice_open_amount is not None:
        applied = max(_ZERO, min(note.total, note.invoice_open_amount))
    payload["applyList"] = (
        []
        if void or applied == _ZERO
        else [{"doc": invoice_ref, "apply": True, "amount": amount_text(applied, cur)}]
    )
    numbers = [li.line_no for li in note.lines]
    _raise_if(
        note.label,
        netsuite_problems(
            credit_note_external_id(note.number),
            payload,
            sources={"memo": "reason"},
            line_numbers=numbers,
        ),
    )
    deps = [DocKey("customer", str(note.customer_id)), DocKey("invoice", str(note.invoice_id))]
    return _document(
        "credit_note",
        note.id,
        credit_note_external_id(note.number),
        "creditMemo",
        note.label,
        payload,
        deps,
        void=void,
    )


def map_payment(p: Payment, t: MappingTables) -> Document:
    """Map a billing payment to a NetSuite ``customerPayment`` applied to its invoices.

    Applications to the same invoice are summed into one apply line; the unapplied remainder
    stays unapplied (``autoApply`` false). A failed or reversed payment maps to operation
    ``void`` with nothing applied. Raises MappingError with every problem found.
    """
    problems = payment_problems(p)
    look = _Lookups(t, problems)
    subsidiary = look.subsidiary(p.billing_entity)
    currency = look.currency(p.currency)
    _raise_if(p.label, problems)
    assert p.received_on is not None and p.customer_account is not None
    void = p.status in ("failed", "reversed")
    cur = p.currency
    applied: dict[str, Decimal] = {}
    invoice_ids: dict[str, int] = {}
    for app in p.applications:
        assert app.invoice_number is not None
        applied[app.invoice_number] = applied.get(app.invoice_number, _ZERO) + app.amount
        invoice_ids[app.invoice_number] = app.invoice_id
    payload: dict[str, Any] = {
        "tranId": p.reference,
        "customer": _ext(customer_external_id(p.customer_account)),
        "subsidiary": subsidiary,
        "currency": currency,
        "tranDate": p.received_on.isoformat(),
        "payment": amount_text(_ZERO if void else p.amount, cur),
        "memo": (
            f"{_VOID_MEMO}: payment {p.status} ({p.method})"
            if void
            else f"{p.method} payment {p.reference}"
        ),
        "autoApply": False,
        "applyList": []
        if void
        else [
            {
                "doc": _ext(invoice_external_id(number)),
                "apply": True,
                "amount": amount_text(amount, cur),
            }
            for number, amount in applied.items()
        ],
    }
    _raise_if(
        p.label,
        netsuite_problems(payment_external_id(p.reference), payload, sources=_PAYMENT_SOURCES),
    )
    deps = [DocKey("customer", str(p.customer_id))]
    deps += [DocKey("invoice", str(invoice_ids[n])) for n in applied]
    return _document(
        "payment",
        p.id,
        payment_external_id(p.reference),
        "customerPayment",
        p.label,
        payload,
        deps,
        void=void,
    )


def map_refund(r: Refund, t: MappingTables) -> Document:
    """Map a billing refund to a NetSuite ``customerRefund``.

    The refund applies to what it pays back, by external id: the ``customerPayment`` whose
    unapplied cash it returns, or the ``creditMemo`` whose credit it pays out. Its amount is
    that apply line's (NetSuite computes the refund's ``total`` from it). The refunded document
    is a dependency, so the refund waits for it. Raises MappingError with every problem found.
    """
    problems = refund_problems(r)
    look = _Lookups(t, problems)
    subsidiary = look.subsidiary(r.billing_entity)
    currency = look.currency(r.currency)
    _raise_if(r.label, problems)
    assert r.refunded_on is not None and r.customer_account is not None
    if r.payment_id is not None:
        assert r.payment_reference is not None
        source: dict[str, str] = {
            "externalId": payment_external_id(r.payment_reference),
            "type": "customerPayment",
        }
        source_key = DocKey("payment", str(r.payment_id))
        what = f"payment {r.payment_reference}"
    else:
        assert r.credit_note_id is not None and r.credit_note_number is not None
        source = {"externalId": credit_note_external_id(r.credit_note_number), "type": "creditMemo"}
        source_key = DocKey("credit_note", str(r.credit_note_id))
        what = f"credit note {r.credit_note_number}"
    payload: dict[str, Any] = {
        "tranId": r.reference,
        "customer": _ext(customer_external_id(r.customer_account)),
        "subsidiary": subsidiary,
        "currency": currency,
        "tranDate": r.refunded_on.isoformat(),
        "memo": f"refund {r.reference} of {what}",
        "applyList": [{"doc": source, "apply": True, "amount": amount_text(r.amount, r.currency)}],
    }
    _raise_if(
        r.label,
        netsuite_problems(refund_external_id(r.reference), payload, sources=_REFUND_SOURCES),
    )
    return _document(
        "refund",
        r.id,
        refund_external_id(r.reference),
        "customerRefund",
        r.label,
        payload,
        [DocKey("customer", str(r.customer_id)), source_key],
    )
