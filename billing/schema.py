"""The billing source contract as SQLAlchemy Core tables.

The table and column names are an interface: deployments create views with exactly these names
over their own billing schema (see docs/billing-contract.md). finsync only reads them; the
generator in ``billing.generator`` writes them for the demo and the tests.
"""

from __future__ import annotations

import sqlalchemy as sa

from finsync.db import ExactDecimal, UTCDateTime

metadata = sa.MetaData()


def _ts(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, UTCDateTime(), nullable=nullable)


customers = sa.Table(
    "customers",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("account_number", sa.Text, nullable=False, unique=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("email", sa.Text),
    sa.Column("billing_entity", sa.Text, nullable=False),
    sa.Column("currency", sa.CHAR(3), nullable=False),
    sa.Column("country", sa.CHAR(2)),
    sa.Column("region", sa.Text),
    sa.Column("city", sa.Text),
    sa.Column("postal_code", sa.Text),
    sa.Column("address_line1", sa.Text),
    sa.Column("tax_exempt", sa.Boolean, nullable=False),
    sa.Column("exemption_number", sa.Text),
    _ts("created_at"),
    _ts("updated_at"),
)

products = sa.Table(
    "products",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("sku", sa.Text, nullable=False, unique=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("product_family", sa.Text, nullable=False),
    sa.Column("revenue_pattern", sa.Text, nullable=False),
    sa.Column("tax_code", sa.Text),
    _ts("updated_at"),
)

invoices = sa.Table(
    "invoices",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("number", sa.Text, nullable=False, unique=True),
    sa.Column("customer_id", sa.BigInteger, sa.ForeignKey("customers.id"), nullable=False),
    sa.Column("billing_entity", sa.Text, nullable=False),
    sa.Column("currency", sa.CHAR(3), nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("issue_date", sa.Date, nullable=False),
    sa.Column("due_date", sa.Date, nullable=False),
    sa.Column("subtotal", ExactDecimal(), nullable=False),
    sa.Column("tax_total", ExactDecimal(), nullable=False),
    sa.Column("total", ExactDecimal(), nullable=False),
    sa.Column("memo", sa.Text),
    _ts("voided_at", nullable=True),
    _ts("created_at"),
    _ts("updated_at"),
)

invoice_lines = sa.Table(
    "invoice_lines",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("invoice_id", sa.BigInteger, sa.ForeignKey("invoices.id"), nullable=False),
    sa.Column("line_no", sa.Integer, nullable=False),
    sa.Column("product_id", sa.BigInteger, sa.ForeignKey("products.id"), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("quantity", ExactDecimal(), nullable=False),
    sa.Column("unit_price", ExactDecimal(), nullable=False),
    sa.Column("discount", ExactDecimal(), nullable=False),
    sa.Column("amount", ExactDecimal(), nullable=False),
    sa.Column("tax_rate", ExactDecimal(), nullable=False),
    sa.Column("tax_amount", ExactDecimal(), nullable=False),
    sa.Column("tax_jurisdiction", sa.Text),
    sa.Column("service_start", sa.Date),
    sa.Column("service_end", sa.Date),
    _ts("updated_at"),
)

credit_notes = sa.Table(
    "credit_notes",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("number", sa.Text, nullable=False, unique=True),
    sa.Column("invoice_id", sa.BigInteger, sa.ForeignKey("invoices.id"), nullable=False),
    sa.Column("customer_id", sa.BigInteger, sa.ForeignKey("customers.id"), nullable=False),
    sa.Column("currency", sa.CHAR(3), nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("issue_date", sa.Date, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("subtotal", ExactDecimal(), nullable=False),
    sa.Column("tax_total", ExactDecimal(), nullable=False),
    sa.Column("total", ExactDecimal(), nullable=False),
    _ts("created_at"),
    _ts("updated_at"),
)

credit_note_lines = sa.Table(
    "credit_note_lines",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("credit_note_id", sa.BigInteger, sa.ForeignKey("credit_notes.id"), nullable=False),
    sa.Column("line_no", sa.Integer, nullable=False),
    sa.Column("invoice_line_id", sa.BigInteger, sa.ForeignKey("invoice_lines.id")),
    sa.Column("product_id", sa.BigInteger, sa.ForeignKey("products.id"), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("amount", ExactDecimal(), nullable=False),
    sa.Column("tax_amount", ExactDecimal(), nullable=False),
    _ts("updated_at"),
)

payments = sa.Table(
    "payments",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("reference", sa.Text, nullable=False, unique=True),
    sa.Column("customer_id", sa.BigInteger, sa.ForeignKey("customers.id"), nullable=False),
    sa.Column("currency", sa.CHAR(3), nullable=False),
    sa.Column("amount", ExactDecimal(), nullable=False),
    sa.Column("received_on", sa.Date, nullable=False),
    sa.Column("method", sa.Text, nullable=False),
    sa.Column("processor_fee", ExactDecimal(), nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    _ts("created_at"),
    _ts("updated_at"),
)

payment_applications = sa.Table(
    "payment_applications",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("payment_id", sa.BigInteger, sa.ForeignKey("payments.id"), nullable=False),
    sa.Column("invoice_id", sa.BigInteger, sa.ForeignKey("invoices.id"), nullable=False),
    sa.Column("amount", ExactDecimal(), nullable=False),
    sa.Column("applied_on", sa.Date, nullable=False),
    _ts("updated_at"),
)

refunds = sa.Table(
    "refunds",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("reference", sa.Text, nullable=False, unique=True),
    sa.Column("customer_id", sa.BigInteger, sa.ForeignKey("customers.id"), nullable=False),
    sa.Column("payment_id", sa.BigInteger, sa.ForeignKey("payments.id")),
    sa.Column("credit_note_id", sa.BigInteger, sa.ForeignKey("credit_notes.id")),
    sa.Column("currency", sa.CHAR(3), nullable=False),
    sa.Column("amount", ExactDecimal(), nullable=False),
    sa.Column("refunded_on", sa.Date, nullable=False),
    _ts("created_at"),
    _ts("updated_at"),
)

revenue_schedule_entries = sa.Table(
    "revenue_schedule_entries",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("invoice_line_id", sa.BigInteger, sa.ForeignKey("invoice_lines.id"), nullable=False),
    sa.Column("period", sa.Date, nullable=False),
    sa.Column("amount", ExactDecimal(), nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("recognized_on", sa.Date),
    _ts("updated_at"),
)

# Indexes a deployment should have on its billing side for incremental reads (keyset on
# updated_at, id). The generator creates them; a deployment's views inherit its own.
for _table in (
    customers,
    products,
    invoices,
    credit_notes,
    payments,
    refunds,
    revenue_schedule_entries,
):
    sa.Index(f"ix_{_table.name}_updated_at_id", _table.c.updated_at, _table.c.id)
sa.Index("ix_invoices_customer_id", invoices.c.customer_id)
sa.Index("ix_credit_notes_invoice_id", credit_notes.c.invoice_id)
sa.Index("ix_payments_customer_id", payments.c.customer_id)
sa.Index("ix_payment_applications_invoice_id", payment_applications.c.invoice_id)
sa.Index("ix_refunds_payment_id", refunds.c.payment_id)
sa.Index("ix_refunds_credit_note_id", refunds.c.credit_note_id)
sa.Index("ix_invoice_lines_invoice_id", invoice_lines.c.invoice_id)
sa.Index("ix_credit_note_lines_credit_note_id", credit_note_lines.c.credit_note_id)
sa.Index("ix_payment_applications_payment_id", payment_applications.c.payment_id)
sa.Index("ix_revenue_schedule_entries_line", revenue_schedule_entries.c.invoice_line_id)
