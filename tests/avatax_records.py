"""Billing records for the AvaTax mapping, connector and reconciliation tests (no I/O)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from billing.records import CreditNote, CreditNoteLine, Customer, Invoice, InvoiceLine, Product
from mappings.tables import MappingTables, load_mapping_file

TS = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
D = Decimal

PRODUCTS = {
    "plat-pro": Product(2, "plat-pro", "Platform Pro", "platform", "ratable", "SW054000", TS),
    "onboarding": Product(
        6, "onboarding", "Onboarding services", "services", "point_in_time", "S0000000", TS
    ),
}

#: Where customers live, by billing entity: (country, region, city, postal code, street).
ADDRESSES = {
    "acme-us": ("US", "CA", "San Francisco", "94105", "1 Market St"),
    "acme-de": ("DE", None, "Berlin", "10115", "Invalidenstr. 1"),
    "acme-jp": ("JP", None, "Tokyo", "100-0001", "1-1 Chiyoda"),
    "acme-kw": ("KW", None, "Kuwait City", "13001", "Gulf Rd 1"),
}
CURRENCIES = {"acme-us": "USD", "acme-de": "EUR", "acme-jp": "JPY", "acme-kw": "KWD"}


def tables() -> MappingTables:
    """The example mapping file: its AvaTax company codes are the sandbox's."""
    return load_mapping_file(Path(__file__).resolve().parents[1] / "mapping.example.toml")


def customer(
    cid: int = 1,
    account: str = "C-0001",
    *,
    entity: str = "acme-us",
    region: str | None = "CA",
    exempt: bool = False,
) -> Customer:
    """A company customer of ``entity``; US customers live in ``region``."""
    country, default_region, city, postal, street = ADDRESSES[entity]
    return Customer(
        id=cid,
        account_number=account,
        name="Globex Corp",
        email="ap@globex.example",
        billing_entity=entity,
        currency=CURRENCIES[entity],
        country=country,
        region=region if country == "US" else default_region,
        city=city,
        postal_code=postal,
        address_line1=street,
        tax_exempt=exempt,
        exemption_number="EX-778899" if exempt else None,
        created_at=TS,
        updated_at=TS,
    )


def line(
    line_no: int,
    sku: str,
    quantity: str,
    unit_price: str,
    amount: str,
    tax_rate: str,
    tax: str,
    jurisdiction: str | None,
    *,
    line_id: int | None = None,
) -> InvoiceLine:
    """An invoice line whose amounts are given as written on the invoice."""
    return InvoiceLine(
        id=line_id or line_no,
        line_no=line_no,
        product=PRODUCTS[sku],
        product_id=PRODUCTS[sku].id,
        description=PRODUCTS[sku].name,
        quantity=D(quantity),
        unit_price=D(unit_price),
        discount=D(0),
        amount=D(amount),
        tax_rate=D(tax_rate),
        tax_amount=D(tax),
        tax_jurisdiction=jurisdiction,
        service_start=None,
        service_end=None,
    )


def invoice(
    iid: int = 10,
    number: str = "INV-2026-0010",
    *,
    cust: Customer | None = None,
    lines: tuple[InvoiceLine, ...] | None = None,
    status: str = "open",
    issue_date: date = date(2026, 3, 5),
) -> Invoice:
    """An invoice of ``cust`` (default: a Californian customer) with consistent totals."""
    cust = cust or customer()
    if lines is None:
        lines = (
            line(1, "plat-pro", "2", "199.00", "398.00", "0.0725", "28.86", "US-CA"),
            line(2, "onboarding", "1", "1500.00", "1500.00", "0.0725", "108.75", "US-CA"),
        )
    subtotal = sum((li.amount for li in lines), D(0))
    tax = sum((li.tax_amount for li in lines), D(0))
    return Invoice(
        id=iid,
        number=number,
        customer_id=cust.id,
        customer_account=cust.account_number,
        billing_entity=cust.billing_entity,
        currency=cust.currency,
        status=status,
        issue_date=issue_date,
        due_date=date(2026, 4, 4),
        subtotal=subtotal,
        tax_total=tax,
        total=subtotal + tax,
        memo=None,
        voided_at=TS if status == "void" else None,
        created_at=TS,
        updated_at=TS,
        lines=lines,
    )


def credit_note(
    inv: Invoice, nid: int = 50, number: str = "CN-2026-0050", *, status: str = "issued"
) -> CreditNote:
    """A credit note for the invoice's first line, in full, tax included."""
    first = inv.lines[0]
    cn_line = CreditNoteLine(
        id=1,
        line_no=1,
        invoice_line_id=first.id,
        product=first.product,
        product_id=first.product_id,
        description=f"Credit: {first.description}",
        amount=first.amount,
        tax_amount=first.tax_amount,
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
        issue_date=date(2026, 3, 20),
        reason="Service not delivered",
        subtotal=first.amount,
        tax_total=first.tax_amount,
        total=first.amount + first.tax_amount,
        created_at=TS,
        updated_at=TS,
        lines=(cn_line,),
    )


__all__ = ["credit_note", "customer", "invoice", "line", "replace", "tables"]
