"""The generator's working state: the rows buffered per table (``Rows``) and the records of
one customer being decided (``Customer``, ``Invoice``, ``Line``) before any is written."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from billing import schema
from billing.catalog import PRODUCTS, CatalogProduct, Entity
from billing.generator.dates import add_months

#: Rows per INSERT executemany call.
CHUNK_ROWS = 5000

ZERO = Decimal(0)

#: Tables in an order in which rows can be inserted (parents before children).
TABLES: tuple[sa.Table, ...] = (
    schema.customers,
    schema.products,
    schema.invoices,
    schema.invoice_lines,
    schema.credit_notes,
    schema.credit_note_lines,
    schema.payments,
    schema.payment_applications,
    schema.refunds,
    schema.revenue_schedule_entries,
)


@dataclass
class Customer:
    """A customer's traits, drawn once: they decide every record of the customer."""

    id: int
    entity: Entity
    currency: str
    jurisdiction: str
    tax_rate: Decimal
    profile: str
    method: str
    annual: bool
    billing_day: int
    terms: int
    signup: int  # index of the first billed month
    plan: CatalogProduct
    seats: int
    support: bool
    usage: bool
    onboarding: bool
    discount_pct: Decimal
    price_factor: Decimal | None
    po_number: str | None


@dataclass
class Line:
    """An invoice line, with its revenue schedule and what credit notes took of it."""

    id: int
    product: CatalogProduct
    amount: Decimal
    tax_amount: Decimal
    tax_rate: Decimal
    parts: list[tuple[date, Decimal]]
    credited: Decimal = ZERO
    credited_tax: Decimal = ZERO


@dataclass
class Invoice:
    """An invoice being decided: its row and lines, what was paid and credited of it."""

    row: dict[str, Any]
    lines: list[Line]
    applied: Decimal = ZERO
    credited: Decimal = ZERO
    void: bool = False
    settled_on: date | None = None
    line_rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        """The invoice's total."""
        return Decimal(self.row["total"])

    @property
    def balance(self) -> Decimal:
        """What is still owed: total less payments applied and credits."""
        return self.total - self.applied - self.credited

    @property
    def issue_date(self) -> date:
        """The invoice's issue date."""
        issue: date = self.row["issue_date"]
        return issue

    def touch(self, at: datetime) -> None:
        """A change of the invoice or its children moves its updated_at."""
        self.row["updated_at"] = max(self.row["updated_at"], at)


class Rows:
    """The rows being generated: the random source, the seeded window, ids per table and the
    buffers of rows not yet written (one customer's records at a time, flushed in batches)."""

    def __init__(self, rng: random.Random, start: date, months: int) -> None:
        self.rng = rng
        self.start = start
        self.months = months
        self.end = add_months(start, months) - timedelta(days=1)
        self.boundary = add_months(start, months)  # entries before it are recognized
        self.last_ids = {table.name: 0 for table in TABLES}
        self.counts = {table.name: 0 for table in TABLES}
        self.buffers: dict[str, list[dict[str, Any]]] = {table.name: [] for table in TABLES}
        self.product_ids = {p.sku: i for i, p in enumerate(PRODUCTS, start=1)}

    def next_id(self, table: str) -> int:
        """The next id of ``table``."""
        self.last_ids[table] += 1
        return self.last_ids[table]

    def emit(self, table: str, row: dict[str, Any]) -> None:
        """Buffer one row of ``table``."""
        self.buffers[table].append(row)
        self.counts[table] += 1

    def buffered(self) -> int:
        """How many rows wait to be written."""
        return sum(len(rows) for rows in self.buffers.values())

    def flush(self, conn: Connection) -> None:
        """Write the buffered rows, parents first, in ``CHUNK_ROWS`` batches."""
        for table in TABLES:
            rows = self.buffers[table.name]
            for i in range(0, len(rows), CHUNK_ROWS):
                conn.execute(table.insert(), rows[i : i + CHUNK_ROWS])
            rows.clear()

    def ts(self, day: date, after: datetime | None = None) -> datetime:
        """A business-hours timestamp on ``day``, strictly later than ``after`` if given."""
        rng = self.rng
        moment = datetime.combine(
            day, time(rng.randint(7, 18), rng.randint(0, 59), rng.randint(0, 59)), tzinfo=UTC
        )
        if after is not None and moment <= after:
            moment = after + timedelta(minutes=rng.randint(1, 90))
        return moment
