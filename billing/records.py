"""Source records: frozen snapshots of billing rows as finsync reads them.

``sync.extract`` builds them from the billing database; ``mappings`` turns them into target
documents. They carry exactly what the billing contract holds, nothing derived.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

Kind = Literal["customer", "invoice", "credit_note", "payment", "refund", "revenue"]

#: The order in which kinds are pushed: a document's dependencies come before it.
KIND_ORDER: tuple[Kind, ...] = (
    "customer",
    "invoice",
    "credit_note",
    "payment",
    "refund",
    "revenue",
)


@dataclass(frozen=True, slots=True)
class Customer:
    id: int
    account_number: str
    name: str
    email: str | None
    billing_entity: str
    currency: str
    country: str | None
    region: str | None
    city: str | None
    postal_code: str | None
    address_line1: str | None
    tax_exempt: bool
    exemption_number: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def label(self) -> str:
        """How messages name this record."""
        return f"customer {self.account_number}"


@dataclass(frozen=True, slots=True)
class Product:
    id: int
    sku: str
    name: str
    product_family: str
    revenue_pattern: str
    tax_code: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    id: int
    line_no: int
    product: Product | None  # None when the line points at a product that does not exist
    product_id: int
    description: str
    quantity: Decimal
    unit_price: Decimal
    discount: Decimal
    amount: Decimal
    tax_rate: Decimal
    tax_amount: Decimal
    tax_jurisdiction: str | None
    service_start: date | None
    service_end: date | None


@dataclass(frozen=True, slots=True)
class Invoice:
    id: int
    number: str
    customer_id: int
    customer_account: str | None  # the customer's account number, None if the customer is missing
    billing_entity: str
    currency: str
    status: str
    issue_date: date | None
    due_date: date | None
    subtotal: Decimal
    tax_total: Decimal
    total: Decimal
    memo: str | None
    voided_at: datetime | None
    created_at: datetime
    updated_at: datetime
    lines: tuple[InvoiceLine, ...]

    @property
    def label(self) -> str:
        """How messages name this record."""
        return f"invoice {self.number}"


@dataclass(frozen=True, slots=True)
class CreditNoteLine:
    id: int
    line_no: int
    invoice_line_id: int | None
    product: Product | None
    product_id: int
    description: str
    amount: Decimal
    tax_amount: Decimal


@dataclass(frozen=True, slots=True)
class CreditNote:
    id: int
    number: str
    invoice_id: int
    invoice_number: str | None
    customer_id: int
    customer_account: str | None
    billing_entity: str | None  # from its invoice
    currency: str
    status: str
    issue_date: date | None
    reason: str
    subtotal: Decimal
    tax_total: Decimal
    total: Decimal
    created_at: datetime
    updated_at: datetime
    lines: tuple[CreditNoteLine, ...]
    #: What the invoice still owed in billing after its payments and earlier credit notes;
    #: the part of the credit above it is unapplied (refunded). None when not known.
    invoice_open_amount: Decimal | None = None

    @property
    def label(self) -> str:
        """How messages name this record."""
        return f"credit note {self.number}"


@dataclass(frozen=True, slots=True)
class PaymentApplication:
    id: int
    invoice_id: int
    invoice_number: str | None
    amount: Decimal
    applied_on: date


@dataclass(frozen=True, slots=True)
class Payment:
    id: int
    reference: str
    customer_id: int
    customer_account: str | None
    billing_entity: str | None  # from its customer
    currency: str
    amount: Decimal
    received_on: date | None
    method: str
    processor_fee: Decimal
    status: str
    created_at: datetime
    updated_at: datetime
    applications: tuple[PaymentApplication, ...]

    @property
    def unapplied(self) -> Decimal:
        """Cash received but not applied to any invoice."""
        return self.amount - sum((a.amount for a in self.applications), Decimal(0))

    @property
    def label(self) -> str:
        """How messages name this record."""
        return f"payment {self.reference}"


@dataclass(frozen=True, slots=True)
class Refund:
    id: int
    reference: str
    customer_id: int
    customer_account: str | None
    billing_entity: str | None
    payment_id: int | None
    payment_reference: str | None
    credit_note_id: int | None
    credit_note_number: str | None
    currency: str
    amount: Decimal
    refunded_on: date | None
    created_at: datetime
    updated_at: datetime

    @property
    def label(self) -> str:
        """How messages name this record."""
        return f"refund {self.reference}"


@dataclass(frozen=True, slots=True)
class RevenueEntry:
    """One revenue schedule entry, with what a journal needs to know about its line."""

    id: int
    invoice_line_id: int
    invoice_id: int | None  # None (and the next three) when the line does not exist in billing
    invoice_number: str | None
    billing_entity: str | None
    currency: str | None
    product: Product | None
    period: date
    amount: Decimal
    status: str
    recognized_on: date | None
    updated_at: datetime

    @property
    def label(self) -> str:
        """How messages name this record."""
        if self.invoice_number is None:
            return f"revenue entry {self.id} ({self.period:%Y-%m})"
        return f"revenue entry {self.id} (invoice {self.invoice_number}, {self.period:%Y-%m})"


SourceRecord = Customer | Invoice | CreditNote | Payment | Refund | RevenueEntry
