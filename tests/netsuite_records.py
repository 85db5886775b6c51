"""Billing records for the NetSuite mapping and connector tests (plain constructors, no I/O)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from billing.records import (
    CreditNote,
    CreditNoteLine,
    Customer,
    Invoice,
    InvoiceLine,
    Payment,
    PaymentApplication,
    Product,
    Refund,
)
from mappings.tables import MappingTables, load_mapping_file

TS = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)
D = Decimal

PRODUCTS = {
    "plat-pro": Product(2, "plat-pro", "Platform Pro", "platform", "ratable", "SW054000", TS),
    "seats": Product(3, "seats", "Additional seats", "platform", "ratable", "SW054000", TS),
    "onboarding": Product(
        6, "onboarding", "Onboarding", "services", "point_in_time", "S0000000", TS
    ),
    "cdn-pro": Product(9, "cdn-pro", "CDN Pro", "platform", "ratable", "SW054000", TS),
}


def tables() -> MappingTables:
    """The example mapping file, which the sandbox's ids match."""
    return load_mapping_file(Path(__file__).resolve().parents[1] / "mapping.example.toml")


def customer(
    cid: int = 1,
    account: str = "C-0001",
    *,
    entity: str = "acme-us",
    currency: str = "USD",
    exempt: bool = False,
    name: str = "Globex Corp",
) -> Customer:
    """A US company customer in California."""
    return Customer(
        id=cid,
        account_number=account,
        name=name,
        email="ap@globex.example",
        billing_entity=entity,
        currency=currency,
        country="US",
        region="CA",
        city="San Francisco",
        postal_code="94105",
        address_line1="1 Market St",
        tax_exempt=exempt,
        exemption_number="EX-123" if exempt else None,
        created_at=TS,
        updated_at=TS,
    )


def line(
    no: int,
    sku: str,
    qty: str,
    price: str,
    discount: str,
    amount: str,
    rate: str,
    tax: str,
    start: date | None = None,
    end: date | None = None,
) -> InvoiceLine:
    """One invoice line of ``sku``."""
    product = PRODUCTS.get(sku)
    return InvoiceLine(
        id=100 + no,
        line_no=no,
        product=product,
        product_id=product.id if product else 99,
        description=f"{sku} line {no}",
        quantity=D(qty),
        unit_price=D(price),
        discount=D(discount),
        amount=D(amount),
        tax_rate=D(rate),
        tax_amount=D(tax),
        tax_jurisdiction="US-CA",
        service_start=start,
        service_end=end,
    )


def invoice(
    iid: int = 10,
    number: str = "INV-1042",
    *,
    lines: tuple[InvoiceLine, ...] = (),
    cust: Customer | None = None,
    entity: str = "acme-us",
    currency: str = "USD",
    status: str = "open",
    memo: str | None = "March subscription",
) -> Invoice:
    """An invoice whose totals are the sums of its lines."""
    cust = cust or customer()
    subtotal = sum((li.amount for li in lines), D(0))
    tax = sum((li.tax_amount for li in lines), D(0))
    return Invoice(
        id=iid,
        number=number,
        customer_id=cust.id,
        customer_account=cust.account_number,
        billing_entity=entity,
        currency=currency,
        status=status,
        issue_date=date(2024, 3, 1),
        due_date=date(2024, 3, 31),
        subtotal=subtotal,
        tax_total=tax,
        total=subtotal + tax,
        memo=memo,
        voided_at=TS if status == "void" else None,
        created_at=TS,
        updated_at=TS,
        lines=lines,
    )


def usd_invoice(
    iid: int = 10, number: str = "INV-1042", cust: Customer | None = None, status: str = "open"
) -> Invoice:
    """Two lines: a discounted subscription with a service period, and an onboarding fee."""
    return invoice(
        iid,
        number,
        cust=cust,
        status=status,
        lines=(
            line(
                1,
                "plat-pro",
                "3",
                "199.00",
                "50.00",
                "547.00",
                "0.0725",
                "39.66",
                date(2024, 3, 1),
                date(2024, 3, 31),
            ),
            line(2, "onboarding", "1", "1500.00", "0", "1500.00", "0.0725", "108.75"),
        ),
    )


def credit_note(
    nid: int = 20, number: str = "CN-7", inv: Invoice | None = None, status: str = "issued"
) -> CreditNote:
    """A credit of the invoice's onboarding line."""
    inv = inv or usd_invoice()
    li = CreditNoteLine(
        id=201,
        line_no=1,
        invoice_line_id=102,
        product=PRODUCTS["onboarding"],
        product_id=6,
        description="Onboarding refunded",
        amount=D("1500.00"),
        tax_amount=D("108.75"),
    )
    return CreditNote(
        id=nid,
        number=number,
        invoice_id=inv.id,
        invoice_number=inv.number,
        customer_id=inv.customer_id,
        customer_account=inv.customer_account,
        billing_entity=inv.billing_entity,
        currency=inv.currency,
        status=status,
        issue_date=date(2024, 3, 15),
        reason="Onboarding cancelled",
        subtotal=D("1500.00"),
        tax_total=D("108.75"),
        total=D("1608.75"),
        created_at=TS,
        updated_at=TS,
        lines=(li,),
    )


def payment(
    pid: int = 30,
    reference: str = "PAY-9",
    *,
    cust: Customer | None = None,
    amount: str = "700.00",
    apps: tuple[tuple[int, str, str], ...] = (),
    status: str = "succeeded",
    currency: str = "USD",
    entity: str = "acme-us",
) -> Payment:
    """A payment with applications (invoice id, invoice number, amount)."""
    cust = cust or customer()
    return Payment(
        id=pid,
        reference=reference,
        customer_id=cust.id,
        customer_account=cust.account_number,
        billing_entity=entity,
        currency=currency,
        amount=D(amount),
        received_on=date(2024, 3, 20),
        method="wire",
        processor_fee=D("0"),
        status=status,
        created_at=TS,
        updated_at=TS,
        applications=tuple(
            PaymentApplication(
                id=300 + i,
                invoice_id=iid,
                invoice_number=num,
                amount=D(amt),
                applied_on=date(2024, 3, 20),
            )
            for i, (iid, num, amt) in enumerate(apps)
        ),
    )


def refund(
    rid: int = 40,
    reference: str = "RF-7",
    *,
    cust: Customer | None = None,
    amount: str = "50.00",
    payment_of: tuple[int, str] | None = (30, "PAY-9"),
    credit_note_of: tuple[int, str] | None = None,
    currency: str = "USD",
    entity: str = "acme-us",
) -> Refund:
    """A refund of a payment (id, reference) or of a credit note (id, number)."""
    cust = cust or customer()
    return Refund(
        id=rid,
        reference=reference,
        customer_id=cust.id,
        customer_account=cust.account_number,
        billing_entity=entity,
        payment_id=payment_of[0] if payment_of else None,
        payment_reference=payment_of[1] if payment_of else None,
        credit_note_id=credit_note_of[0] if credit_note_of else None,
        credit_note_number=credit_note_of[1] if credit_note_of else None,
        currency=currency,
        amount=D(amount),
        refunded_on=date(2024, 3, 25),
        created_at=TS,
        updated_at=TS,
    )
