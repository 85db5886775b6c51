"""Figures of the monthly finance workbook, read from the billing database and the ledger.

Pure data building: no spreadsheet here. Amounts are summed in Python with ``Decimal`` from
streamed rows (``yield_per``), never in SQL, because SQLite would sum them as floats and a month
can hold a million invoice lines. The document sheets (invoices, credit notes, payments,
exceptions) are generators that look their ledger rows up in chunks, so memory stays flat;
each feeds a ``Tally`` while it streams, which is where the Summary and the Reconciliation
sheet take their per-currency totals from.

Definitions (docs/workbook.md explains them for finance):
- invoiced / tax: ``total`` / ``tax_total`` of invoices issued in the period, voids excluded;
- credited: ``total`` of credit notes issued in the period with status ``issued``;
- collected: ``amount`` of payments received in the period with status ``succeeded``;
- recognized: revenue schedule entries whose period is the month (voided invoices excluded);
- deferred revenue (ratable lines only): opening + billed - credited - recognized = closing.
"""

from __future__ import annotations

import calendar
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from billing import schema as b
from finsync.errors import ConfigError
from mappings.tables import MappingTables
from reports.tax import InvoiceTax, TaxTotal, tax_reconciliation
from sync.state import ledger

ZERO = Decimal(0)
#: Rows fetched per round trip, and source ids looked up in the ledger per query.
CHUNK = 2000
#: Ledger statuses that need someone's attention (the Reconciliation sheet's exceptions).
EXCEPTION_STATUSES = ("failed", "dead", "retry")
AGING_BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")
WATERFALL_MONTHS = 12

T = TypeVar("T")


@dataclass(frozen=True)
class Period:
    """One calendar month: ``start`` (first day) to ``end`` (last day), both inclusive."""

    start: date
    end: date

    @property
    def label(self) -> str:
        """``YYYY-MM``."""
        return f"{self.start:%Y-%m}"


def parse_period(text: str) -> Period:
    """Parse ``YYYY-MM`` into a ``Period``. Raises ConfigError naming ``period``."""
    match = re.fullmatch(r"(\d{4})-(\d{2})", text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ConfigError("period", f"must be a month written YYYY-MM, got {text!r}")
    year, month = int(match.group(1)), int(match.group(2))
    return Period(date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1]))


def add_months(day: date, months: int) -> date:
    """The first day of the month ``months`` after ``day``'s month."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True)
class LedgerInfo:
    """What the ledger says about one billing record in the ERP target."""

    status: str
    internal_id: str | None


@dataclass
class CurrencyTally:
    """Counts and amounts of one kind of document in one currency."""

    count: int = 0
    amount: Decimal = ZERO
    tax: Decimal = ZERO
    synced_count: int = 0
    synced_amount: Decimal = ZERO


@dataclass
class Tally:
    """Per-currency totals of the documents of one kind that count (voids etc. excluded).

    Filled while the kind's rows stream; read by the Summary and Reconciliation sheets.
    """

    kind: str
    by_currency: dict[str, CurrencyTally] = field(default_factory=dict)
    entities: set[str] = field(default_factory=set)
    rows: int = 0

    def add(self, currency: str, amount: Decimal, tax: Decimal, synced: bool) -> None:
        """Count one document that is part of the period's totals."""
        t = self.by_currency.setdefault(currency, CurrencyTally())
        t.count += 1
        t.amount += amount
        t.tax += tax
        if synced:
            t.synced_count += 1
            t.synced_amount += amount


@dataclass(frozen=True)
class InvoiceRow:
    """One invoice issued in the period, with its ERP sync state."""

    number: str
    entity: str
    customer_account: str
    customer_name: str
    issue_date: date
    due_date: date
    currency: str
    net: Decimal
    tax: Decimal
    total: Decimal
    status: str
    memo: str | None
    erp_id: str | None
    sync_status: str


@dataclass(frozen=True)
class CreditNoteRow:
    """One credit note issued in the period, with its ERP sync state."""

    number: str
    invoice_number: str
    entity: str
    customer_account: str
    customer_name: str
    issue_date: date
    currency: str
    net: Decimal
    tax: Decimal
    total: Decimal
    status: str
    reason: str
    erp_id: str | None
    sync_status: str


@dataclass(frozen=True)
class PaymentRow:
    """One payment received in the period; ``applied`` sums all its applications."""

    reference: str
    entity: str
    customer_account: str
    customer_name: str
    received_on: date
    method: str
    currency: str
    amount: Decimal
    applied: Decimal
    unapplied: Decimal
    fee: Decimal
    status: str
    erp_id: str | None
    sync_status: str


@dataclass(frozen=True)
class ExceptionRow:
    """A ledger row that failed, died or waits for a retry, and what to do about it."""

    target: str
    kind: str
    label: str
    customer_account: str | None
    document_date: date | None
    status: str
    attempts: int
    error: str
    action: str
    updated_at: datetime


@dataclass(frozen=True)
class RevenueLine:
    """Revenue recognized in the period for one currency and product family."""

    currency: str
    product_family: str
    revenue_account: str | None
    amount: Decimal


@dataclass
class RollForward:
    """Deferred revenue of one entity and currency across the period (ratable lines)."""

    entity: str
    currency: str
    opening: Decimal = ZERO
    billed: Decimal = ZERO
    credited: Decimal = ZERO
    recognized: Decimal = ZERO

    @property
    def closing(self) -> Decimal:
        """opening + billed - credited - recognized."""
        return self.opening + self.billed - self.credited - self.recognized


@dataclass
class AgingRow:
    """Open receivables of one customer in one currency at period end, by days past due."""

    customer_account: str
    customer_name: str
    currency: str
    buckets: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(AGING_BUCKETS, ZERO))

    @property
    def total(self) -> Decimal:
        """Sum of the buckets."""
        return sum(self.buckets.values(), ZERO)


@dataclass(frozen=True)
class Figures:
    """The small, fully aggregated parts of the report (everything but the document lists)."""

    period: Period
    entity: str | None
    revenue: tuple[RevenueLine, ...]
    roll_forward: tuple[RollForward, ...]
    waterfall_months: tuple[date, ...]
    waterfall: dict[str, tuple[Decimal, ...]]  # currency -> one amount per month, then "later"
    revenue_recon: Tally
    aging: tuple[AgingRow, ...]
    tax: tuple[TaxTotal, ...]  # per jurisdiction and currency, from reports.tax
    tax_variances: tuple[InvoiceTax, ...]  # invoices whose billed tax differs from the engine's
    sync_health: dict[str, dict[str, int]]  # kind -> status -> count (ERP target)
    exceptions_count: int

    def recognized(self) -> dict[str, Decimal]:
        """Revenue recognized in the period per currency."""
        out: dict[str, Decimal] = defaultdict(lambda: ZERO)
        for line in self.revenue:
            out[line.currency] += line.amount
        return dict(out)

    def deferred_closing(self) -> dict[str, Decimal]:
        """Closing deferred revenue per currency (all entities of the report)."""
        out: dict[str, Decimal] = defaultdict(lambda: ZERO)
        for rf in self.roll_forward:
            out[rf.currency] += rf.closing
        return dict(out)


# --- streaming helpers -------------------------------------------------------------------


def _stream(engine: sa.Engine, stmt: sa.Select[Any]) -> Iterator[sa.Row[Any]]:
    """Yield the rows of ``stmt`` in chunks (a server-side cursor on PostgreSQL)."""
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=CHUNK).execute(stmt)
        yield from result


def _chunks(rows: Iterable[T], size: int = CHUNK) -> Iterator[list[T]]:
    batch: list[T] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _ledger_lookup(
    state_engine: sa.Engine, target: str, kind: str, source_ids: Sequence[str]
) -> dict[str, LedgerInfo]:
    stmt = sa.select(ledger.c.source_id, ledger.c.status, ledger.c.internal_id).where(
        ledger.c.target == target, ledger.c.kind == kind, ledger.c.source_id.in_(source_ids)
    )
    with state_engine.connect() as conn:
        return {r.source_id: LedgerInfo(r.status, r.internal_id) for r in conn.execute(stmt)}


def _with_ledger(
    rows: Iterable[Any], state_engine: sa.Engine, target: str, kind: str
) -> Iterator[tuple[Any, LedgerInfo | None]]:
    """Pair each billing row (with an ``id``) with its ledger row, one query per chunk."""
    for batch in _chunks(rows):
        found = _ledger_lookup(state_engine, target, kind, [str(r.id) for r in batch])
        for row in batch:
            yield row, found.get(str(row.id))


def _sync_status(info: LedgerInfo | None) -> str:
    return info.status if info else "not in ledger"


def _in_period(column: Any, period: Period) -> Any:
    return column.between(period.start, period.end)


# --- document sheets ---------------------------------------------------------------------


def invoice_rows(
    billing: sa.Engine,
    state: sa.Engine,
    period: Period,
    entity: str | None,
    target: str,
    tally: Tally,
) -> Iterator[InvoiceRow]:
    """Invoices issued in the period, ordered by currency and number; voids shown, not tallied."""
    i, c = b.invoices, b.customers
    stmt = (
        sa.select(
            i.c.id,
            i.c.number,
            i.c.billing_entity,
            c.c.account_number,
            c.c.name,
            i.c.issue_date,
            i.c.due_date,
            i.c.currency,
            i.c.subtotal,
            i.c.tax_total,
            i.c.total,
            i.c.status,
            i.c.memo,
        )
        .join(c, c.c.id == i.c.customer_id)
        .where(_in_period(i.c.issue_date, period))
        .order_by(i.c.currency, i.c.number)
    )
    if entity:
        stmt = stmt.where(i.c.billing_entity == entity)
    for r, info in _with_ledger(_stream(billing, stmt), state, target, "invoice"):
        tally.rows += 1
        tally.entities.add(r.billing_entity)
        if r.status != "void":
            tally.add(r.currency, r.total, r.tax_total, bool(info and info.status == "synced"))
        yield InvoiceRow(
            r.number,
            r.billing_entity,
            r.account_number,
            r.name,
            r.issue_date,
            r.due_date,
            r.currency,
            r.subtotal,
            r.tax_total,
            r.total,
            r.status,
            r.memo,
            info.internal_id if info else None,
            _sync_status(info),
        )


def credit_note_rows(
    billing: sa.Engine,
    state: sa.Engine,
    period: Period,
    entity: str | None,
    target: str,
    tally: Tally,
) -> Iterator[CreditNoteRow]:
    """Credit notes issued in the period; only status ``issued`` is tallied."""
    n, i, c = b.credit_notes, b.invoices, b.customers
    stmt = (
        sa.select(
            n.c.id,
            n.c.number,
            i.c.number.label("invoice_number"),
            i.c.billing_entity,
            c.c.account_number,
            c.c.name,
            n.c.issue_date,
            n.c.currency,
            n.c.subtotal,
            n.c.tax_total,
            n.c.total,
            n.c.status,
            n.c.reason,
        )
        .join(i, i.c.id == n.c.invoice_id)
        .join(c, c.c.id == n.c.customer_id)
        .where(_in_period(n.c.issue_date, period))
        .order_by(n.c.currency, n.c.number)
    )
    if entity:
        stmt = stmt.where(i.c.billing_entity == entity)
    for r, info in _with_ledger(_stream(billing, stmt), state, target, "credit_note"):
        tally.rows += 1
        tally.entities.add(r.billing_entity)
        if r.status == "issued":
            tally.add(r.currency, r.total, r.tax_total, bool(info and info.status == "synced"))
        yield CreditNoteRow(
            r.number,
            r.invoice_number,
            r.billing_entity,
            r.account_number,
            r.name,
            r.issue_date,
            r.currency,
            r.subtotal,
            r.tax_total,
            r.total,
            r.status,
            r.reason,
            info.internal_id if info else None,
            _sync_status(info),
        )


def payment_rows(
    billing: sa.Engine,
    state: sa.Engine,
    period: Period,
    entity: str | None,
    target: str,
    tally: Tally,
) -> Iterator[PaymentRow]:
    """Payments received in the period with what is applied; only ``succeeded`` is tallied."""
    p, a, c = b.payments, b.payment_applications, b.customers
    stmt = (
        sa.select(
            p.c.id,
            p.c.reference,
            c.c.billing_entity,
            c.c.account_number,
            c.c.name,
            p.c.received_on,
            p.c.method,
            p.c.currency,
            p.c.amount,
            p.c.processor_fee,
            p.c.status,
            a.c.amount.label("applied"),
        )
        .join(c, c.c.id == p.c.customer_id)
        .outerjoin(a, a.c.payment_id == p.c.id)
        .where(_in_period(p.c.received_on, period))
        .order_by(p.c.currency, p.c.reference, p.c.id)
    )
    if entity:
        stmt = stmt.where(c.c.billing_entity == entity)
    for r, info in _with_ledger(
        _grouped_payments(_stream(billing, stmt)), state, target, "payment"
    ):
        tally.rows += 1
        tally.entities.add(r.billing_entity)
        if r.status == "succeeded":
            tally.add(r.currency, r.amount, ZERO, bool(info and info.status == "synced"))
        yield PaymentRow(
            r.reference,
            r.billing_entity,
            r.account_number,
            r.name,
            r.received_on,
            r.method,
            r.currency,
            r.amount,
            r.applied,
            r.amount - r.applied,
            r.processor_fee,
            r.status,
            info.internal_id if info else None,
            _sync_status(info),
        )


@dataclass(frozen=True)
class _Payment:
    id: int
    reference: str
    billing_entity: str
    account_number: str
    name: str
    received_on: date
    method: str
    currency: str
    amount: Decimal
    processor_fee: Decimal
    status: str
    applied: Decimal


def _grouped_payments(rows: Iterable[sa.Row[Any]]) -> Iterator[_Payment]:
    """Fold the payment x application join (ordered by payment) into one item per payment."""
    current: sa.Row[Any] | None = None
    applied = ZERO
    for row in rows:
        if current is not None and row.id != current.id:
            yield _payment(current, applied)
            applied = ZERO
        current = row
        applied += row.applied if row.applied is not None else ZERO
    if current is not None:
        yield _payment(current, applied)


def _payment(r: sa.Row[Any], applied: Decimal) -> _Payment:
    return _Payment(
        r.id,
        r.reference,
        r.billing_entity,
        r.account_number,
        r.name,
        r.received_on,
        r.method,
        r.currency,
        r.amount,
        r.processor_fee,
        r.status,
        applied,
    )


def _action(status: str, error_kind: str | None) -> str:
    if status == "retry":
        return "None yet: finsync retries it automatically; act if it turns dead."
    if status == "dead":
        return (
            "Retries are exhausted: check that the target system is reachable and the "
            "error above, then re-sync the record (finsync resync)."
        )
    if error_kind == "mapping":
        return (
            "Fix the billing data or the mapping file as the error says, then re-sync the "
            "record (finsync resync)."
        )
    return "The target refused the record: correct what the error names, then re-sync it."


def exception_rows(state: sa.Engine) -> Iterator[ExceptionRow]:
    """Every ledger row failed, dead or waiting for a retry, all targets, oldest first."""
    lg = ledger.c
    stmt = (
        sa.select(
            lg.target,
            lg.kind,
            lg.label,
            lg.customer_account,
            lg.document_date,
            lg.status,
            lg.attempts,
            lg.last_error,
            lg.error_kind,
            lg.updated_at,
        )
        .where(lg.status.in_(EXCEPTION_STATUSES))
        .order_by(lg.target, lg.kind, lg.updated_at, lg.id)
    )
    for r in _stream(state, stmt):
        yield ExceptionRow(
            r.target,
            r.kind,
            r.label,
            r.customer_account,
            r.document_date,
            r.status,
            r.attempts,
            r.last_error or "",
            _action(r.status, r.error_kind),
            r.updated_at,
        )


# --- aggregated figures ------------------------------------------------------------------


def build_figures(
    billing: sa.Engine,
    state: sa.Engine,
    *,
    period: Period,
    entity: str | None,
    timezone: ZoneInfo,
    erp_target: str = "netsuite",
    tax_target: str = "avatax",
    mapping: MappingTables | None = None,
) -> Figures:
    """Aggregate revenue, deferred revenue, AR aging, tax and sync health for the period."""
    revenue, rolls, months, waterfall, recon = _revenue(
        billing, state, period, entity, erp_target, mapping
    )
    tax = tax_reconciliation(
        billing,
        state,
        period_start=period.start,
        period_end=period.end,
        entity=entity,
        target=tax_target,
    )
    return Figures(
        period=period,
        entity=entity,
        revenue=revenue,
        roll_forward=rolls,
        waterfall_months=months,
        waterfall=waterfall,
        revenue_recon=recon,
        aging=_aging(billing, period, entity, timezone),
        tax=tax.totals,
        tax_variances=tax.variances,
        sync_health=_sync_health(state, erp_target),
        exceptions_count=_count_exceptions(state),
    )


def _revenue(
    billing: sa.Engine,
    state: sa.Engine,
    period: Period,
    entity: str | None,
    target: str,
    mapping: MappingTables | None,
) -> tuple[
    tuple[RevenueLine, ...],
    tuple[RollForward, ...],
    tuple[date, ...],
    dict[str, tuple[Decimal, ...]],
    Tally,
]:
    i, line, prod, e = b.invoices, b.invoice_lines, b.products, b.revenue_schedule_entries
    rolls: dict[tuple[str, str], RollForward] = {}

    def roll(ent: str, cur: str) -> RollForward:
        return rolls.setdefault((ent, cur), RollForward(ent, cur))

    # Billed: ratable lines of invoices issued up to the period end, voids excluded.
    billed = (
        sa.select(i.c.billing_entity, i.c.currency, i.c.issue_date, line.c.amount)
        .join(line, line.c.invoice_id == i.c.id)
        .join(prod, prod.c.id == line.c.product_id)
        .where(
            i.c.issue_date <= period.end, i.c.status != "void", prod.c.revenue_pattern == "ratable"
        )
    )
    # Credited: credit note lines against ratable invoice lines, issued up to the period end.
    n, nl = b.credit_notes, b.credit_note_lines
    credited = (
        sa.select(i.c.billing_entity, i.c.currency, n.c.issue_date, nl.c.amount)
        .join(line, line.c.id == nl.c.invoice_line_id)
        .join(prod, prod.c.id == line.c.product_id)
        .join(n, n.c.id == nl.c.credit_note_id)
        .join(i, i.c.id == line.c.invoice_id)
        .where(
            n.c.issue_date <= period.end,
            n.c.status == "issued",
            i.c.status != "void",
            prod.c.revenue_pattern == "ratable",
        )
    )
    entries = (
        sa.select(
            e.c.id,
            e.c.period,
            e.c.amount,
            i.c.billing_entity,
            i.c.currency,
            prod.c.product_family,
            prod.c.revenue_pattern,
        )
        .join(line, line.c.id == e.c.invoice_line_id)
        .join(i, i.c.id == line.c.invoice_id)
        .join(prod, prod.c.id == line.c.product_id)
        .where(i.c.status != "void")
        .order_by(e.c.id)
    )
    if entity:
        billed = billed.where(i.c.billing_entity == entity)
        credited = credited.where(i.c.billing_entity == entity)
        entries = entries.where(i.c.billing_entity == entity)

    for r in _stream(billing, billed):
        rf = roll(r.billing_entity, r.currency)
        if r.issue_date < period.start:
            rf.opening += r.amount
        else:
            rf.billed += r.amount
    for r in _stream(billing, credited):
        rf = roll(r.billing_entity, r.currency)
        if r.issue_date < period.start:
            rf.opening -= r.amount
        else:
            rf.credited += r.amount

    months = tuple(add_months(period.start, k) for k in range(1, WATERFALL_MONTHS + 1))
    month_index = {m: k for k, m in enumerate(months)}
    waterfall: dict[str, list[Decimal]] = {}
    recognized: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    recon = Tally("revenue")
    in_period: list[sa.Row[Any]] = []

    def flush() -> None:
        found = _ledger_lookup(state, target, "revenue", [str(r.id) for r in in_period])
        for r in in_period:
            info = found.get(str(r.id))
            recon.add(r.currency, r.amount, ZERO, bool(info and info.status == "synced"))
        in_period.clear()

    for r in _stream(billing, entries):
        ratable = r.revenue_pattern == "ratable"
        if r.period < period.start:
            if ratable:
                roll(r.billing_entity, r.currency).opening -= r.amount
        elif r.period == period.start:
            recognized[(r.currency, r.product_family)] += r.amount
            if ratable:
                roll(r.billing_entity, r.currency).recognized += r.amount
            in_period.append(r)
            if len(in_period) >= CHUNK:
                flush()
        else:
            row = waterfall.setdefault(r.currency, [ZERO] * (WATERFALL_MONTHS + 1))
            row[month_index.get(r.period, WATERFALL_MONTHS)] += r.amount
    if in_period:
        flush()

    families = mapping.product_families if mapping else {}
    revenue = tuple(
        RevenueLine(cur, fam, families[fam].revenue_account if fam in families else None, amt)
        for (cur, fam), amt in sorted(recognized.items())
    )
    return (
        revenue,
        tuple(rolls[k] for k in sorted(rolls)),
        months,
        {cur: tuple(v) for cur, v in sorted(waterfall.items())},
        recon,
    )


def _aging(
    billing: sa.Engine, period: Period, entity: str | None, timezone: ZoneInfo
) -> tuple[AgingRow, ...]:
    """Open balance of every invoice at period end, bucketed by days past due, per customer.

    Reductions are succeeded payments applied on or before the end and credit notes issued
    on or before it. An invoice voided after the period end was still open at the end.
    """
    i, c, a, p, n = (b.invoices, b.customers, b.payment_applications, b.payments, b.credit_notes)
    reductions = sa.union_all(
        sa.select(a.c.invoice_id, a.c.amount)
        .join(p, p.c.id == a.c.payment_id)
        .where(a.c.applied_on <= period.end, p.c.status == "succeeded"),
        sa.select(n.c.invoice_id, n.c.total.label("amount")).where(
            n.c.issue_date <= period.end, n.c.status == "issued"
        ),
    ).subquery()
    stmt = (
        sa.select(
            i.c.id,
            i.c.currency,
            i.c.due_date,
            i.c.total,
            i.c.status,
            i.c.voided_at,
            c.c.account_number,
            c.c.name,
            reductions.c.amount.label("reduction"),
        )
        .join(c, c.c.id == i.c.customer_id)
        .outerjoin(reductions, reductions.c.invoice_id == i.c.id)
        .where(i.c.issue_date <= period.end)
        .order_by(i.c.id)
    )
    if entity:
        stmt = stmt.where(i.c.billing_entity == entity)
    rows: dict[tuple[str, str], AgingRow] = {}

    def settle(r: sa.Row[Any], reduced: Decimal) -> None:
        if r.status == "void" and (
            r.voided_at is None or r.voided_at.astimezone(timezone).date() <= period.end
        ):
            return
        open_amount = r.total - reduced
        if open_amount == ZERO:
            return
        ar = rows.setdefault(
            (r.account_number, r.currency), AgingRow(r.account_number, r.name, r.currency)
        )
        ar.buckets[aging_bucket((period.end - r.due_date).days)] += open_amount

    current: sa.Row[Any] | None = None
    reduced = ZERO
    for r in _stream(billing, stmt):
        if current is not None and r.id != current.id:
            settle(current, reduced)
            reduced = ZERO
        current = r
        reduced += r.reduction if r.reduction is not None else ZERO
    if current is not None:
        settle(current, reduced)
    return tuple(rows[k] for k in sorted(rows, key=lambda k: (k[1], k[0])))


def aging_bucket(days_past_due: int) -> str:
    """The aging bucket of an amount ``days_past_due`` days past its due date."""
    if days_past_due <= 0:
        return "current"
    if days_past_due <= 30:
        return "1-30"
    if days_past_due <= 60:
        return "31-60"
    if days_past_due <= 90:
        return "61-90"
    return "90+"


def _sync_health(state: sa.Engine, target: str) -> dict[str, dict[str, int]]:
    stmt = (
        sa.select(ledger.c.kind, ledger.c.status, sa.func.count())
        .where(ledger.c.target == target)
        .group_by(ledger.c.kind, ledger.c.status)
    )
    out: dict[str, dict[str, int]] = defaultdict(dict)
    with state.connect() as conn:
        for kind, status, count in conn.execute(stmt):
            out[kind][status] = int(count)
    return dict(out)


def _count_exceptions(state: sa.Engine) -> int:
    stmt = sa.select(sa.func.count()).where(ledger.c.status.in_(EXCEPTION_STATUSES))
    with state.connect() as conn:
        return int(conn.execute(stmt).scalar_one())
