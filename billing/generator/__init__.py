"""Deterministic, realistic data for the billing source contract (``billing.schema``).

``seed_billing`` fills the contract's tables with the demo company of ``billing.catalog``: five
billing entities and currencies, taxed and tax-exempt customers, monthly and annual
subscriptions with prorated service periods, usage and services billed at a point in time,
discounts, voids, credit notes, partial, late, multi-invoice, failed, reversed and over-payments,
refunds, revenue schedules that sum exactly to what is left of each line, and rows edited after
they were created. ``apply_edits`` then changes some of those records the way billing does after
finsync has synced them once, so tests can check that the next sync picks the changes up.

Everything comes from one ``random.Random(seed)``; no clock, no global state. Timestamps are
derived from the data's dates, so the same arguments always produce the same rows, on SQLite and
PostgreSQL alike.

The generator works customer by customer: all of a customer's records are decided (invoices,
payments, credit notes, statuses) before any of them is written, so no row is ever updated after
insertion and rows go out in large Core ``executemany`` batches.

One module per record kind: ``customers`` (and products), ``invoices``, ``credit_notes`` (and
voids), ``payments`` (and refunds), ``revenue`` (schedules); ``seeding`` drives them customer
by customer, ``edits`` changes seeded records later, ``rows`` holds the working state and
``dates`` the calendar arithmetic. May import ``billing`` (schema, catalog) and ``core`` only.
"""

from billing.generator.edits import EditSummary, apply_edits
from billing.generator.rows import CHUNK_ROWS
from billing.generator.seeding import SeedSummary, seed_billing

__all__ = ["CHUNK_ROWS", "EditSummary", "SeedSummary", "apply_edits", "seed_billing"]
