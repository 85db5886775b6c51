"""Incremental reads of the billing database, per kind, by keyset (updated_at, id).

A cursor remembers the last (updated_at, id) read for a target and kind. The next read starts
``lookback`` before it, so rows committed late with an older ``updated_at`` and rows sharing one
``updated_at`` are never missed; the ledger skips what it already holds unchanged. Pages are read
by keyset, never by OFFSET, so the cost follows the changes, not the history.

Records come out as the frozen dataclasses of ``billing.records``, with the child rows and the
few facts of related rows (customer account number, invoice number) the mappings need.

A ``RecordCache`` shares the records one run has built already: billing validation reads every
record, and the extraction that follows takes a record from the cache when billing's row still
has the record's ``updated_at`` (so a record changed meanwhile is built again from its row).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, RowMapping

from billing import schema as b
from billing.records import (
    CreditNote,
    CreditNoteLine,
    Customer,
    Invoice,
    InvoiceLine,
    Kind,
    Payment,
    PaymentApplication,
    Product,
    Refund,
    RevenueEntry,
    SourceRecord,
)

KIND_TABLES: dict[str, sa.Table] = {
    "customer": b.customers,
    "invoice": b.invoices,
    "credit_note": b.credit_notes,
    "payment": b.payments,
    "refund": b.refunds,
    "revenue": b.revenue_schedule_entries,
}


@dataclass(frozen=True, order=True)
class Cursor:
    """Position of an incremental read: the last (updated_at, id) handed out."""

    updated_at: datetime
    last_id: int


@dataclass(frozen=True)
class Page:
    """One page of changed records of a kind, with the customers they refer to."""

    kind: str
    records: tuple[SourceRecord, ...]
    customers: Mapping[int, Customer] = field(default_factory=dict)
    invoice_dates: Mapping[int, date | None] = field(default_factory=dict)  # credit notes' invoices
    end: Cursor | None = None  # the cursor after this page


#: Kinds a ``RecordCache`` keeps: those extraction reads by ``BillingReader.changes``.
CACHED_KINDS = ("customer", "invoice", "credit_note", "payment", "refund")
#: At most this many records are kept for one run (beyond it extraction reads them again):
#: the cache trades memory for a second read of billing, up to a few hundred megabytes.
CACHE_LIMIT = 250_000


class RecordCache:
    """Source records built during one run, by kind and billing id, up to ``limit`` records."""

    def __init__(self, limit: int = CACHE_LIMIT) -> None:
        self._limit = limit
        self._size = 0
        self._records: dict[str, dict[int, SourceRecord]] = {}

    def keep(self, kind: str, records: Iterable[SourceRecord]) -> None:
        """Remember ``records`` of ``kind`` (the kinds extraction reads, while room is left)."""
        if kind not in CACHED_KINDS:
            return
        held = self._records.setdefault(kind, {})
        for record in records:
            if self._size >= self._limit:
                return
            if record.id not in held:
                self._size += 1
            held[record.id] = record

    def holds(self, kind: str) -> bool:
        """True when some records of ``kind`` are cached."""
        return bool(self._records.get(kind))

    def get(self, kind: str, record_id: int) -> SourceRecord | None:
        """The cached record of ``kind`` with ``record_id``, if any."""
        return self._records.get(kind, {}).get(record_id)


def _chunks(values: Sequence[int], size: int = 900) -> Iterator[Sequence[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _among(
    conn: Connection, column: sa.ColumnElement[Any], ids: Sequence[int]
) -> Iterator[sa.ColumnElement[bool]]:
    """``column`` among ``ids``, in chunks the database takes: one array parameter per 10,000
    ids on PostgreSQL (a long IN list costs more to send and parse than to run), IN lists of
    900 on SQLite (its variable limit)."""
    if conn.dialect.name == "postgresql":
        for chunk in _chunks(ids, 10_000):
            yield column == sa.any_(
                sa.bindparam(None, list(chunk), type_=postgresql.ARRAY(sa.BigInteger()))
            )
        return
    for chunk in _chunks(ids):
        yield column.in_(chunk)


class BillingReader:
    """Reads source records from the billing database over one connection.

    With a ``cache``, every record ``all_records`` builds is kept in it, and ``changes`` takes
    from it the records whose row is unchanged since.
    """

    def __init__(self, connection: Connection, *, cache: RecordCache | None = None) -> None:
        self._conn = connection
        self._cache = cache
        self._products: dict[int, Product] | None = None
        # Customers live across pages: a page reads only those it has not seen (the reader
        # lives for one pass, so a customer changed meanwhile is read again by the next one).
        self._customers: dict[int, Customer] = {}

    # -- related rows -----------------------------------------------------------------------

    def products(self) -> dict[int, Product]:
        """All products by id (a small table, read once per reader)."""
        if self._products is None:
            rows = self._conn.execute(sa.select(b.products)).mappings()
            self._products = {r["id"]: Product(**dict(r)) for r in rows}
        return self._products

    def _rows_by_id(
        self, table: sa.Table, ids: Iterable[int], *columns: str
    ) -> dict[int, RowMapping]:
        """Rows of ``table`` by id (only ``columns`` and the id, when given)."""
        wanted = sorted({i for i in ids if i is not None})
        selected = [table.c.id, *(table.c[c] for c in columns)] if columns else [table]
        found: dict[int, RowMapping] = {}
        for among in _among(self._conn, table.c.id, wanted):
            query = sa.select(*selected).where(among)
            for row in self._conn.execute(query).mappings():
                found[row["id"]] = row
        return found

    def _children(
        self, table: sa.Table, fk: sa.Column[Any], ids: Sequence[int], order: sa.Column[Any]
    ) -> dict[int, list[RowMapping]]:
        out: dict[int, list[RowMapping]] = defaultdict(list)
        for among in _among(self._conn, fk, sorted(set(ids))):
            query = sa.select(table).where(among).order_by(fk, order)
            for row in self._conn.execute(query).mappings():
                out[row[fk.name]].append(row)
        return out

    def customers_by_id(self, ids: Iterable[int | None]) -> dict[int, Customer]:
        """Customers by id, for the ids that exist (each read once per reader)."""
        wanted = {i for i in ids if i is not None}
        unseen = wanted - self._customers.keys()
        if self._cache is not None and unseen:
            for i in list(unseen):
                cached = self._cache.get("customer", i)
                if isinstance(cached, Customer):
                    self._customers[i] = cached
                    unseen.discard(i)
        for i, r in self._rows_by_id(b.customers, unseen).items():
            self._customers[i] = Customer(**dict(r))
        return {i: self._customers[i] for i in wanted if i in self._customers}

    # -- builders ---------------------------------------------------------------------------

    def _invoices(
        self, rows: Sequence[RowMapping], customers: Mapping[int, Customer]
    ) -> list[Invoice]:
        products = self.products()
        lines = self._children(
            b.invoice_lines,
            b.invoice_lines.c.invoice_id,
            [r["id"] for r in rows],
            b.invoice_lines.c.line_no,
        )
        out = []
        for r in rows:
            customer = customers.get(r["customer_id"])
            out.append(
                Invoice(
                    id=r["id"],
                    number=r["number"],
                    customer_id=r["customer_id"],
                    customer_account=customer.account_number if customer else None,
                    billing_entity=r["billing_entity"],
                    currency=r["currency"],
                    status=r["status"],
                    issue_date=r["issue_date"],
                    due_date=r["due_date"],
                    subtotal=r["subtotal"],
                    tax_total=r["tax_total"],
                    total=r["total"],
                    memo=r["memo"],
                    voided_at=r["voided_at"],
                    created_at=r["created_at"],
                    updated_at=r["updated_at"],
                    lines=tuple(
                        InvoiceLine(
                            id=li["id"],
                            line_no=li["line_no"],
                            product=products.get(li["product_id"]),
                            product_id=li["product_id"],
                            description=li["description"],
                            quantity=li["quantity"],
                            unit_price=li["unit_price"],
                            discount=li["discount"],
                            amount=li["amount"],
                            tax_rate=li["tax_rate"],
                            tax_amount=li["tax_amount"],
                            tax_jurisdiction=li["tax_jurisdiction"],
                            service_start=li["service_start"],
                            service_end=li["service_end"],
                        )
                        for li in lines.get(r["id"], [])
                    ),
                )
            )
        return out

    def _credit_notes(
        self,
        rows: Sequence[RowMapping],
        customers: Mapping[int, Customer],
        invoices: Mapping[int, RowMapping],
    ) -> list[CreditNote]:
        products = self.products()
        open_amounts = self._open_before_credit(rows, invoices)
        lines = self._children(
            b.credit_note_lines,
            b.credit_note_lines.c.credit_note_id,
            [r["id"] for r in rows],
            b.credit_note_lines.c.line_no,
        )
        out = []
        for r in rows:
            customer = customers.get(r["customer_id"])
            invoice = invoices.get(r["invoice_id"])
            out.append(
                CreditNote(
                    id=r["id"],
                    number=r["number"],
                    invoice_id=r["invoice_id"],
                    invoice_number=invoice["number"] if invoice else None,
                    customer_id=r["customer_id"],
                    customer_account=customer.account_number if customer else None,
                    billing_entity=invoice["billing_entity"] if invoice else None,
                    currency=r["currency"],
                    status=r["status"],
                    issue_date=r["issue_date"],
                    reason=r["reason"],
                    subtotal=r["subtotal"],
                    tax_total=r["tax_total"],
                    total=r["total"],
                    created_at=r["created_at"],
                    updated_at=r["updated_at"],
                    invoice_open_amount=open_amounts.get(r["id"]),
                    lines=tuple(
                        CreditNoteLine(
                            id=li["id"],
                            line_no=li["line_no"],
                            invoice_line_id=li["invoice_line_id"],
                            product=products.get(li["product_id"]),
                            product_id=li["product_id"],
                            description=li["description"],
                            amount=li["amount"],
                            tax_amount=li["tax_amount"],
                        )
                        for li in lines.get(r["id"], [])
                    ),
                )
            )
        return out

    def _open_before_credit(
        self, rows: Sequence[RowMapping], invoices: Mapping[int, RowMapping]
    ) -> dict[int, Decimal]:
        """Per credit note: its invoice's total less payments applied and earlier credits."""
        invoice_ids = sorted({r["invoice_id"] for r in rows if r["invoice_id"] in invoices})
        paid: dict[int, Decimal] = defaultdict(Decimal)
        credits: dict[int, list[tuple[date, int, Decimal]]] = defaultdict(list)
        apps, notes = b.payment_applications, b.credit_notes
        for among in _among(self._conn, apps.c.invoice_id, invoice_ids):
            for invoice_id, amount in self._conn.execute(
                sa.select(apps.c.invoice_id, apps.c.amount).where(among)
            ):
                paid[invoice_id] += amount
        for among in _among(self._conn, notes.c.invoice_id, invoice_ids):
            for invoice_id, note_id, issued, total in self._conn.execute(
                sa.select(notes.c.invoice_id, notes.c.id, notes.c.issue_date, notes.c.total).where(
                    among, notes.c.status != "void"
                )
            ):
                credits[invoice_id].append((issued or date.min, note_id, total))
        result: dict[int, Decimal] = {}
        for r in rows:
            invoice = invoices.get(r["invoice_id"])
            if invoice is None:
                continue
            mine = (r["issue_date"] or date.min, r["id"])
            earlier = sum(
                (total for issued, nid, total in credits[r["invoice_id"]] if (issued, nid) < mine),
                Decimal(0),
            )
            result[r["id"]] = invoice["total"] - paid[r["invoice_id"]] - earlier
        return result

    def _payments(
        self, rows: Sequence[RowMapping], customers: Mapping[int, Customer]
    ) -> list[Payment]:
        apps = self._children(
            b.payment_applications,
            b.payment_applications.c.payment_id,
            [r["id"] for r in rows],
            b.payment_applications.c.id,
        )
        invoices = self._rows_by_id(
            b.invoices, (a["invoice_id"] for group in apps.values() for a in group), "number"
        )
        out = []
        for r in rows:
            customer = customers.get(r["customer_id"])
            out.append(
                Payment(
                    id=r["id"],
                    reference=r["reference"],
                    customer_id=r["customer_id"],
                    customer_account=customer.account_number if customer else None,
                    billing_entity=customer.billing_entity if customer else None,
                    currency=r["currency"],
                    amount=r["amount"],
                    received_on=r["received_on"],
                    method=r["method"],
                    processor_fee=r["processor_fee"],
                    status=r["status"],
                    created_at=r["created_at"],
                    updated_at=r["updated_at"],
                    applications=tuple(
                        PaymentApplication(
                            id=a["id"],
                            invoice_id=a["invoice_id"],
                            invoice_number=(
                                invoices[a["invoice_id"]]["number"]
                                if a["invoice_id"] in invoices
                                else None
                            ),
                            amount=a["amount"],
                            applied_on=a["applied_on"],
                        )
                        for a in apps.get(r["id"], [])
                    ),
                )
            )
        return out

    def _refunds(
        self, rows: Sequence[RowMapping], customers: Mapping[int, Customer]
    ) -> list[Refund]:
        payments = self._rows_by_id(b.payments, (r["payment_id"] for r in rows), "reference")
        notes = self._rows_by_id(b.credit_notes, (r["credit_note_id"] for r in rows), "number")
        out = []
        for r in rows:
            customer = customers.get(r["customer_id"])
            payment = payments.get(r["payment_id"]) if r["payment_id"] is not None else None
            note = notes.get(r["credit_note_id"]) if r["credit_note_id"] is not None else None
            out.append(
                Refund(
                    id=r["id"],
                    reference=r["reference"],
                    customer_id=r["customer_id"],
                    customer_account=customer.account_number if customer else None,
                    billing_entity=customer.billing_entity if customer else None,
                    payment_id=r["payment_id"],
                    payment_reference=payment["reference"] if payment else None,
                    credit_note_id=r["credit_note_id"],
                    credit_note_number=note["number"] if note else None,
                    currency=r["currency"],
                    amount=r["amount"],
                    refunded_on=r["refunded_on"],
                    created_at=r["created_at"],
                    updated_at=r["updated_at"],
                )
            )
        return out

    def _revenue(self, rows: Sequence[RowMapping]) -> list[RevenueEntry]:
        products = self.products()
        lines = self._rows_by_id(
            b.invoice_lines, (r["invoice_line_id"] for r in rows), "invoice_id", "product_id"
        )
        invoices = self._rows_by_id(
            b.invoices,
            (li["invoice_id"] for li in lines.values()),
            "number",
            "billing_entity",
            "currency",
        )
        out = []
        for r in rows:
            line = lines.get(r["invoice_line_id"])
            invoice = invoices.get(line["invoice_id"]) if line is not None else None
            out.append(
                RevenueEntry(
                    id=r["id"],
                    invoice_line_id=r["invoice_line_id"],
                    invoice_id=invoice["id"] if invoice else None,
                    invoice_number=invoice["number"] if invoice else None,
                    billing_entity=invoice["billing_entity"] if invoice else None,
                    currency=invoice["currency"] if invoice else None,
                    product=products.get(line["product_id"]) if line is not None else None,
                    period=r["period"],
                    amount=r["amount"],
                    status=r["status"],
                    recognized_on=r["recognized_on"],
                    updated_at=r["updated_at"],
                )
            )
        return out

    def build(self, kind: str, rows: Sequence[RowMapping]) -> Page:
        """Turn raw rows of ``kind`` into a page of source records."""
        customer_ids = (
            [r["customer_id"] for r in rows] if "customer_id" in KIND_TABLES[kind].c else []
        )
        customers = self.customers_by_id(customer_ids)
        records: list[SourceRecord]
        invoice_dates: dict[int, date | None] = {}
        if kind == "customer":
            records = [Customer(**dict(r)) for r in rows]
            customers = {c.id: c for c in records if isinstance(c, Customer)}
        elif kind == "invoice":
            records = list(self._invoices(rows, customers))
        elif kind == "credit_note":
            invoices = self._rows_by_id(
                b.invoices,
                (r["invoice_id"] for r in rows),
                "number",
                "billing_entity",
                "total",
                "issue_date",
            )
            invoice_dates = {i: r["issue_date"] for i, r in invoices.items()}
            records = list(self._credit_notes(rows, customers, invoices))
        elif kind == "payment":
            records = list(self._payments(rows, customers))
        elif kind == "refund":
            records = list(self._refunds(rows, customers))
        elif kind == "revenue":
            records = list(self._revenue(rows))
        else:
            raise ValueError(f"unknown kind {kind!r}")
        end = Cursor(rows[-1]["updated_at"], rows[-1]["id"]) if rows else None
        return Page(
            kind=kind,
            records=tuple(records),
            customers=customers,
            invoice_dates=invoice_dates,
            end=end,
        )

    # -- reads ------------------------------------------------------------------------------

    def changes(
        self, kind: Kind | str, since: Cursor | None, *, lookback: timedelta, page_size: int
    ) -> Iterator[Page]:
        """Pages of records of ``kind`` changed after ``since`` minus ``lookback``.

        ``since=None`` reads everything (a full re-read). Within a run the keyset moves strictly
        forward, so equal timestamps are handled by the id tie-breaker.
        """
        table = KIND_TABLES[kind]
        key = sa.tuple_(table.c.updated_at, table.c.id)
        position: tuple[datetime, int] | None = None
        if since is not None:
            position = (since.updated_at - lookback, 0)
        while True:
            cached = self._cache is not None and self._cache.holds(kind)
            # With records cached, a page reads only the keys and builds the records it misses.
            selected = [table.c.id, table.c.updated_at] if cached else [table]
            query = sa.select(*selected).order_by(table.c.updated_at, table.c.id).limit(page_size)
            if position is not None:
                query = query.where(
                    key
                    > sa.tuple_(
                        sa.literal(position[0], table.c.updated_at.type),
                        sa.literal(position[1], sa.BigInteger()),
                    )
                )
            rows = list(self._conn.execute(query).mappings())
            if not rows:
                return
            yield self._cached_page(kind, rows) if cached else self.build(kind, rows)
            if len(rows) < page_size:
                return
            position = (rows[-1]["updated_at"], rows[-1]["id"])

    def _cached_page(self, kind: str, keys: Sequence[RowMapping]) -> Page:
        """The page of the rows with these (id, updated_at) keys: the cache's record where it
        has the same ``updated_at``, else the record built from billing's row now."""
        assert self._cache is not None
        records: dict[int, SourceRecord] = {}
        missing: list[int] = []
        for row in keys:
            record = self._cache.get(kind, row["id"])
            if record is not None and record.updated_at == row["updated_at"]:
                records[row["id"]] = record
            else:
                missing.append(row["id"])
        if missing:
            records.update((r.id, r) for r in self.by_ids(kind, missing).records)
        page = tuple(records[row["id"]] for row in keys if row["id"] in records)
        customers: dict[int, Customer]
        if kind == "customer":
            customers = {c.id: c for c in page if isinstance(c, Customer)}
        else:
            customers = self.customers_by_id(getattr(r, "customer_id", None) for r in page)
        invoice_dates: dict[int, date | None] = {}
        if kind == "credit_note":
            invoices = self._rows_by_id(
                b.invoices, (r.invoice_id for r in page if isinstance(r, CreditNote)), "issue_date"
            )
            invoice_dates = {i: r["issue_date"] for i, r in invoices.items()}
        return Page(
            kind=kind,
            records=page,
            customers=customers,
            invoice_dates=invoice_dates,
            end=Cursor(keys[-1]["updated_at"], keys[-1]["id"]),
        )

    def all_records(self, kind: str, *, page_size: int = 1000) -> Iterator[SourceRecord]:
        """Every record of ``kind`` by id, page by page (for validation: ``BillingSource``).

        Revenue entries come by (invoice_line_id, id), so each line's schedule comes together.
        """
        table = KIND_TABLES[kind]
        order = (table.c.invoice_line_id, table.c.id) if kind == "revenue" else (table.c.id,)
        position: tuple[int, ...] | None = None
        while True:
            query = sa.select(table).order_by(*order).limit(page_size)
            if position is not None:
                query = query.where(
                    sa.tuple_(*order)
                    > sa.tuple_(*(sa.literal(v, sa.BigInteger()) for v in position))
                )
            rows = list(self._conn.execute(query).mappings())
            if not rows:
                return
            records = self.build(kind, rows).records
            if self._cache is not None:
                self._cache.keep(kind, records)
            yield from records
            if len(rows) < page_size:
                return
            position = tuple(rows[-1][c.name] for c in order)

    def by_ids(self, kind: str, ids: Sequence[int]) -> Page:
        """Records of ``kind`` with the given billing ids (for re-syncs)."""
        table = KIND_TABLES[kind]
        rows: list[RowMapping] = []
        for among in _among(self._conn, table.c.id, sorted(set(ids))):
            rows += self._conn.execute(
                sa.select(table).where(among).order_by(table.c.id)
            ).mappings()
        return self.build(kind, rows)
