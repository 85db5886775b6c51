"""Hand-made billing rows for tests: sound by default, broken on request.

Each builder method inserts one record (with its child rows) and returns its id. Totals are
computed from the lines unless a test overrides them to make a malformed record.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from billing import schema as b
from core.money import round_money

T0 = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)


def view_like_metadata() -> sa.MetaData:
    """The contract's tables as a deployment's views look: no foreign keys, no NOT NULL.

    Bad billing data (an invoice of a missing customer, a NULL date) can then be inserted, as it
    can appear through views over a real billing schema.
    """
    metadata = sa.MetaData()
    for table in b.metadata.sorted_tables:
        sa.Table(
            table.name,
            metadata,
            *[
                sa.Column(
                    c.name,
                    c.type,
                    primary_key=c.primary_key,
                    autoincrement=False,
                    nullable=c.primary_key is False,
                )
                for c in table.columns
            ],
        )
    return metadata


class BillingBuilder:
    """Inserts billing rows into ``engine`` (view-like tables created on first use)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        view_like_metadata().create_all(engine)
        self._ids = itertools.count(1)
        self.now = T0
        self._products: dict[str, int] = {}
        with engine.begin() as conn:
            for sku, family, pattern, tax_code in (
                ("plat-pro", "platform", "ratable", "SW054000"),
                ("onboarding", "services", "point_in_time", "S0000000"),
                ("cdn-pro", "platform", "ratable", "SW054000"),  # not in the mapping file
            ):
                pid = next(self._ids)
                conn.execute(
                    b.products.insert().values(
                        id=pid,
                        sku=sku,
                        name=sku.title(),
                        product_family=family,
                        revenue_pattern=pattern,
                        tax_code=tax_code,
                        updated_at=T0,
                    )
                )
                self._products[sku] = pid

    def tick(self, seconds: int = 1) -> datetime:
        """Move the billing clock forward and return it."""
        self.now += timedelta(seconds=seconds)
        return self.now

    def product_id(self, sku: str) -> int:
        """Id of a product inserted by the builder."""
        return self._products[sku]

    def customer(
        self,
        account: str = "",
        *,
        entity: str = "acme-us",
        currency: str = "USD",
        updated_at: datetime | None = None,
        **overrides: Any,
    ) -> int:
        """Insert a customer; returns its id."""
        cid = next(self._ids)
        stamp = updated_at or self.tick()
        row = {
            "id": cid,
            "account_number": account or f"C-{cid:04d}",
            "name": f"Customer {cid}",
            "email": f"billing{cid}@example.com",
            "billing_entity": entity,
            "currency": currency,
            "country": "US",
            "region": "CA",
            "city": "San Francisco",
            "postal_code": "94105",
            "address_line1": "1 Market St",
            "tax_exempt": False,
            "exemption_number": None,
            "created_at": stamp,
            "updated_at": stamp,
        } | overrides
        with self.engine.begin() as conn:
            conn.execute(b.customers.insert().values(**row))
        return cid

    def invoice(
        self,
        customer_id: int,
        *,
        number: str = "",
        currency: str = "USD",
        entity: str = "acme-us",
        lines: list[dict[str, Any]] | None = None,
        updated_at: datetime | None = None,
        **overrides: Any,
    ) -> int:
        """Insert an invoice with lines (default: one line of plat-pro); returns its id."""
        iid = next(self._ids)
        stamp = updated_at or self.tick()
        lines = lines if lines is not None else [{}]
        line_rows = []
        for n, spec in enumerate(lines, start=1):
            quantity = Decimal(spec.get("quantity", "1"))
            unit_price = Decimal(spec.get("unit_price", "100.00"))
            discount = Decimal(spec.get("discount", "0"))
            rate = Decimal(spec.get("tax_rate", "0.0725"))
            if "amount" in spec:
                amount = Decimal(spec["amount"])
            else:
                amount = round_money(quantity * unit_price - discount, currency)
            if "tax_amount" in spec:
                tax = Decimal(spec["tax_amount"])
            else:
                tax = round_money(amount * rate, currency)
            line_rows.append(
                {
                    "id": next(self._ids),
                    "invoice_id": iid,
                    "line_no": n,
                    "product_id": spec.get(
                        "product_id", self._products[spec.get("sku", "plat-pro")]
                    ),
                    "description": spec.get("description", "Platform Pro, monthly"),
                    "quantity": quantity,
                    "unit_price": unit_price,
                    "discount": discount,
                    "amount": amount,
                    "tax_rate": rate,
                    "tax_amount": tax,
                    "tax_jurisdiction": spec.get("tax_jurisdiction", "US-CA"),
                    "service_start": spec.get("service_start", date(2026, 1, 1)),
                    "service_end": spec.get("service_end", date(2026, 1, 31)),
                    "updated_at": stamp,
                }
            )
        subtotal = sum((r["amount"] for r in line_rows), Decimal(0))
        tax_total = sum((r["tax_amount"] for r in line_rows), Decimal(0))
        row = {
            "id": iid,
            "number": number or f"INV-{iid:05d}",
            "customer_id": customer_id,
            "billing_entity": entity,
            "currency": currency,
            "status": "open",
            "issue_date": date(2026, 1, 5),
            "due_date": date(2026, 2, 4),
            "subtotal": subtotal,
            "tax_total": tax_total,
            "total": subtotal + tax_total,
            "memo": None,
            "voided_at": None,
            "created_at": stamp,
            "updated_at": stamp,
        } | overrides
        with self.engine.begin() as conn:
            conn.execute(b.invoices.insert().values(**row))
            if line_rows:
                conn.execute(b.invoice_lines.insert(), line_rows)
        return iid

    def update_invoice(self, invoice_id: int, **values: Any) -> datetime:
        """Change invoice columns, moving updated_at; returns the new updated_at."""
        stamp = values.pop("updated_at", None) or self.tick()
        with self.engine.begin() as conn:
            conn.execute(
                b.invoices.update()
                .where(b.invoices.c.id == invoice_id)
                .values(updated_at=stamp, **values)
            )
        return stamp

    def set_line_amount(self, invoice_id: int, line_no: int, unit_price: str) -> None:
        """Re-price one line of an invoice and recompute its totals (a billing edit)."""
        stamp = self.tick()
        with self.engine.begin() as conn:
            line = (
                conn.execute(
                    sa.select(b.invoice_lines).where(
                        b.invoice_lines.c.invoice_id == invoice_id,
                        b.invoice_lines.c.line_no == line_no,
                    )
                )
                .mappings()
                .one()
            )
            invoice = (
                conn.execute(sa.select(b.invoices).where(b.invoices.c.id == invoice_id))
                .mappings()
                .one()
            )
            currency = invoice["currency"]
            amount = round_money(
                line["quantity"] * Decimal(unit_price) - line["discount"], currency
            )
            tax = round_money(amount * line["tax_rate"], currency)
            conn.execute(
                b.invoice_lines.update()
                .where(b.invoice_lines.c.id == line["id"])
                .values(
                    unit_price=Decimal(unit_price), amount=amount, tax_amount=tax, updated_at=stamp
                )
            )
            lines = (
                conn.execute(
                    sa.select(b.invoice_lines).where(b.invoice_lines.c.invoice_id == invoice_id)
                )
                .mappings()
                .all()
            )
            subtotal = sum((r["amount"] for r in lines), Decimal(0))
            tax_total = sum((r["tax_amount"] for r in lines), Decimal(0))
            conn.execute(
                b.invoices.update()
                .where(b.invoices.c.id == invoice_id)
                .values(
                    subtotal=subtotal,
                    tax_total=tax_total,
                    total=subtotal + tax_total,
                    updated_at=stamp,
                )
            )

    def payment(
        self,
        customer_id: int,
        amount: str,
        *,
        applications: list[tuple[int, str]] = (),
        currency: str = "USD",
        reference: str = "",
        updated_at: datetime | None = None,
        **overrides: Any,
    ) -> int:
        """Insert a payment applied to (invoice id, amount) pairs; returns its id."""
        pid = next(self._ids)
        stamp = updated_at or self.tick()
        row = {
            "id": pid,
            "reference": reference or f"PAY-{pid:05d}",
            "customer_id": customer_id,
            "currency": currency,
            "amount": Decimal(amount),
            "received_on": date(2026, 1, 20),
            "method": "card",
            "processor_fee": Decimal("0"),
            "status": "succeeded",
            "created_at": stamp,
            "updated_at": stamp,
        } | overrides
        with self.engine.begin() as conn:
            conn.execute(b.payments.insert().values(**row))
            for invoice_id, applied in applications:
                conn.execute(
                    b.payment_applications.insert().values(
                        id=next(self._ids),
                        payment_id=pid,
                        invoice_id=invoice_id,
                        amount=Decimal(applied),
                        applied_on=date(2026, 1, 20),
                        updated_at=stamp,
                    )
                )
        return pid

    def credit_note(
        self,
        invoice_id: int,
        customer_id: int,
        amount: str,
        tax: str = "0",
        *,
        currency: str = "USD",
        number: str = "",
        **overrides: Any,
    ) -> int:
        """Insert a one-line credit note against an invoice; returns its id."""
        nid = next(self._ids)
        stamp = self.tick()
        row = {
            "id": nid,
            "number": number or f"CN-{nid:05d}",
            "invoice_id": invoice_id,
            "customer_id": customer_id,
            "currency": currency,
            "status": "issued",
            "issue_date": date(2026, 1, 25),
            "reason": "service credit",
            "subtotal": Decimal(amount),
            "tax_total": Decimal(tax),
            "total": Decimal(amount) + Decimal(tax),
            "created_at": stamp,
            "updated_at": stamp,
        } | overrides
        with self.engine.begin() as conn:
            conn.execute(b.credit_notes.insert().values(**row))
            conn.execute(
                b.credit_note_lines.insert().values(
                    id=next(self._ids),
                    credit_note_id=nid,
                    line_no=1,
                    invoice_line_id=None,
                    product_id=self._products["plat-pro"],
                    description="Service credit",
                    amount=Decimal(amount),
                    tax_amount=Decimal(tax),
                    updated_at=stamp,
                )
            )
        return nid
