"""The seeding driver: ``seed_billing`` fills the contract's tables customer by customer, each
customer's records decided in full before they are buffered and written in large batches."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from billing import schema
from billing.generator.credit_notes import decide_void_or_credit, late_credit
from billing.generator.customers import new_customer, products
from billing.generator.dates import add_months
from billing.generator.invoices import finish, month_invoice
from billing.generator.payments import pay
from billing.generator.rows import CHUNK_ROWS, TABLES, Rows


@dataclass(frozen=True)
class SeedSummary:
    """What ``seed_billing`` wrote: rows per table and the months covered."""

    customers: int
    products: int
    invoices: int
    invoice_lines: int
    credit_notes: int
    credit_note_lines: int
    payments: int
    payment_applications: int
    refunds: int
    revenue_schedule_entries: int
    first_period: date  # first day of the first seeded month
    last_period: date  # first day of the last seeded month

    def rows(self) -> list[tuple[str, int]]:
        """(table name, row count) pairs in insertion order, for printing."""
        return [(table.name, int(getattr(self, table.name))) for table in TABLES]


def row_counts(conn: Connection) -> dict[str, int]:
    """Rows per table of the contract."""
    return {
        table.name: int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
        for table in TABLES
    }


def empty(conn: Connection) -> None:
    """Delete every row of the contract's tables."""
    if conn.dialect.name == "postgresql":
        # Row-by-row DELETE re-checks each foreign key against tables full of dead rows, which
        # is quadratic; TRUNCATE of all the tables together is instant and transactional.
        names = ", ".join(conn.dialect.identifier_preparer.format_table(t) for t in TABLES)
        conn.execute(sa.text(f"TRUNCATE {names}"))
    else:
        for table in reversed(TABLES):
            conn.execute(table.delete())


def seed_customer(rows: Rows, index: int) -> None:
    """Decide all of customer ``index``'s records (invoices, credits, payments, statuses), then
    buffer them."""
    cust = new_customer(rows, index)
    invoices = [
        inv for m in range(cust.signup, rows.months) if (inv := month_invoice(rows, cust, m))
    ]
    for inv in invoices:
        decide_void_or_credit(rows, cust, inv)
    pay(rows, cust, invoices)
    for inv in invoices:
        late_credit(rows, cust, inv)
    for inv in invoices:
        finish(rows, cust, inv)


def seed_billing(
    engine: Engine,
    *,
    customers: int,
    months: int,
    seed: int,
    start: date = date(2025, 11, 1),
    progress: Callable[[int, int], None] | None = None,
    replace: bool = False,
) -> SeedSummary:
    """Fill the billing contract's tables with ``customers`` customers over ``months`` months.

    Creates the tables if absent. Raises ValueError if they already hold rows (unless
    ``replace``, which empties them first) or if the arguments are out of range. The same
    arguments always write the same rows. ``progress(done, total)`` is called with the number of
    customers written so far.
    """
    if customers < 1 or months < 1:
        raise ValueError("customers and months must be at least 1")
    if start.day != 1:
        raise ValueError(f"start must be the first day of a month, got {start}")
    schema.metadata.create_all(engine)
    seeder = Rows(random.Random(seed), start, months)
    with engine.begin() as conn:
        counts = row_counts(conn)
        if any(counts.values()):
            if not replace:
                held = ", ".join(f"{name}: {n}" for name, n in counts.items() if n)
                raise ValueError(
                    f"billing tables already hold rows ({held}); pass replace=True to empty "
                    "them first"
                )
            empty(conn)
        products(seeder)
        for index in range(customers):
            seed_customer(seeder, index)
            if seeder.buffered() >= CHUNK_ROWS:
                seeder.flush(conn)
                if progress is not None:
                    progress(index + 1, customers)
        seeder.flush(conn)
    if progress is not None:
        progress(customers, customers)
    return SeedSummary(
        **seeder.counts, first_period=start, last_period=add_months(start, months - 1)
    )
