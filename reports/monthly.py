"""Figures of the monthly finance workbook, read from the billing database and the ledger.

Pure data building: no spreadsheet here. Amounts are summed in Python with ``Decimal`` from
streamed rows (``yield_per``), never in SQL, because SQLite would sum them as floats and a month
can hold a million invoice lines. The document sheets (invoices, credit notes, payments,
exceptions) are generators that look their ledger rows up in chunks, so memory stays flat;
each feeds a ``Tally`` while it streams, which is where the Summary and the Reconciliation
sheet take their per-currency totals from.

Every figure follows docs/accounting.md (the policy a controller reviews): invoiced, voided,
credited, collected, refunded, recognized, the deferred roll-forward, open receivables by aging
bucket and customer credit balances, each taken by its accounting date; an invoice's void date is
``voided_at`` in the company's time zone.
"""

from __future__ import annotations

import calendar
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from billing import schema as b
from billing.validation import Rejection, validate_billing
from core.errors import ConfigError
from mappings import revrec as rr
from mappings.tables import MappingTables
from reports.tax import InvoiceTax, TaxTotal, tax_figures
from sync.extract import BillingReader
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


#: What a document sheet row counts as (its "Counted as" column, which the totals select on).
INVOICED = "invoiced"
VOIDED = "voided"
VOID_IN_MONTH = "void in its month"
CREDITED = "credited"
COLLECTED = "collected"
REFUNDED = "refunded"
NOT_COUNTED = "not counted"


@dataclass(frozen=True)
class LedgerInfo:
    """What the ledger says about one billing record in the ERP target."""

    status: str
    internal_id: str | None
    operation: str = "upsert"

    @property
    def synced(self) -> bool:
        """The target holds the record's latest version."""
        return self.status == "synced"


#: Rejection kinds whose records carry money (a customer or schedule entry adds to the count).
MONEY_KINDS = ("invoice", "credit_note", "payment", "refund")


@dataclass(frozen=True)
class LeftOut:
    """Billing records validation rejected: left out of every figure, listed on Exceptions."""

    rejections: tuple[Rejection, ...] = ()

    @cached_property
    def _ids(self) -> dict[str, frozenset[int]]:
        ids: dict[str, set[int]] = defaultdict(set)
        for r in self.rejections:
            ids[r.kind].add(r.record_id)
        return {kind: frozenset(v) for kind, v in ids.items()}

    def ids(self, kind: str) -> frozenset[int]:
        """The rejected ids of ``kind``."""
        return self._ids.get(kind, frozenset())

    def has(self, kind: str, record_id: int | None) -> bool:
        """True when record ``record_id`` of ``kind`` was rejected."""
        return record_id is not None and record_id in self._ids.get(kind, ())

    def per_currency(self) -> dict[str, tuple[int, Decimal]]:
        """Per currency code as billing holds it: (records left out, their money)."""
        out: dict[str, tuple[int, Decimal]] = {}
        for r in self.rejections:
            code = r.currency if r.currency is not None else "(none)"
            count, money = out.get(code, (0, ZERO))
            if r.kind in MONEY_KINDS and r.amount is not None:
                money += r.amount
            out[code] = (count + 1, money)
        return dict(sorted(out.items()))


def find_left_out(billing: sa.Engine, mapping: MappingTables | None) -> LeftOut:
    """Validate billing (``billing.validation``) and return what the figures leave out.

    With a mapping file, billing entities it does not know are rejected too.
    """
    entities = set(mapping.entities) if mapping is not None else None
    with billing.connect() as conn:
        verdicts = validate_billing(BillingReader(conn), entities=entities)
    return LeftOut(verdicts.rejections)


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

    def add(
        self,
        currency: str,
        amount: Decimal,
        tax: Decimal,
        synced: bool,
        synced_amount: Decimal | None = None,
    ) -> None:
        """Count one document that is part of the period's totals.

        ``synced_amount`` is what the target holds when it differs from ``amount`` (a journal).
        """
        t = self.by_currency.setdefault(currency, CurrencyTally())
        t.count += 1
        t.amount += amount
        t.tax += tax
        if synced:
            t.synced_count += 1
        if synced or synced_amount is not None:
            t.synced_amount += amount if synced_amount is None else synced_amount


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
    voided_on: date | None
    counted_as: str
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
    counted_as: str
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
    counted_as: str
    erp_id: str | None
    sync_status: str


@dataclass(frozen=True)
class RefundRow:
    """One refund paid in the period: of a payment's unapplied cash or of a credit note."""

    reference: str
    entity: str
    customer_account: str
    customer_name: str
    refunded_on: date
    refund_of: str
    currency: str
    amount: Decimal
    counted_as: str
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
    voided: Decimal = ZERO
    recognized: Decimal = ZERO

    @property
    def closing(self) -> Decimal:
        """opening + billed - credited - voided - recognized."""
        return self.opening + self.billed - self.credited - self.voided - self.recognized


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


@dataclass
class CreditBalanceRow:
    """What the company owes one customer in one currency at period end (docs/accounting.md)."""

    customer_account: str
    customer_name: str
    currency: str
    unapplied_cash: Decimal = ZERO
    over_credit: Decimal = ZERO
    refunded: Decimal = ZERO

    @property
    def balance(self) -> Decimal:
        """unapplied cash + over-credit - refunds."""
        return self.unapplied_cash + self.over_credit - self.refunded


@dataclass(frozen=True)
class JournalLine:
    """One revenue journal of the period (entity, currency) against the entries it aggregates."""

    entity: str
    currency: str
    entries: int
    scheduled: Decimal  # the ratable schedule entries of the period, whatever their status
    recognized: Decimal  # of them, the ones billing has recognized (what the journal posts)
    posted: Decimal | None  # net of the journal and its adjustments as last sent; None: never
    sync_status: str


@dataclass(frozen=True)
class Figures:
    """The small, fully aggregated parts of the report (everything but the document lists)."""

    period: Period
    entity: str | None
    revenue: tuple[RevenueLine, ...]
    roll_forward: tuple[RollForward, ...]
    waterfall_months: tuple[date, ...]
    waterfall: dict[str, tuple[Decimal, ...]]  # currency -> one amount per month, then "later"
    later_reductions: dict[str, Decimal]  # currency -> credits and voids after the period end
    journals: tuple[JournalLine, ...]
    aging: tuple[AgingRow, ...]
    credit_balances: tuple[CreditBalanceRow, ...]
    tax: tuple[TaxTotal, ...]  # per jurisdiction and currency, from reports.tax
    tax_variances: tuple[InvoiceTax, ...]  # invoices whose billed tax differs from the engine's
    sync_health: dict[str, dict[str, int]]  # kind -> status -> count (ERP target)
    exceptions_count: int
    left_out: LeftOut = LeftOut()

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

    def open_receivable(self) -> dict[str, Decimal]:
        """What customers owe at period end per currency (the aging total)."""
        out: dict[str, Decimal] = defaultdict(lambda: ZERO)
        for row in self.aging:
            out[row.currency] += row.total
        return dict(out)

    def credit_balance(self) -> dict[str, Decimal]:
        """What the company owes customers at period end per currency."""
        out: dict[str, Decimal] = defaultdict(lambda: ZERO)
        for row in self.credit_balances:
            out[row.currency] += row.balance
        return dict(out)

    def journal_tally(self) -> Tally:
        """The revenue journals as a Reconciliation tally: scheduled against posted."""
        tally = Tally("revenue")
        for j in self.journals:
            tally.add(
                j.currency,
                j.scheduled,
                ZERO,
                j.sync_status == "synced" and j.posted == j.scheduled,
                synced_amount=ZERO if j.posted is None else j.posted,
            )
        return tally


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
    stmt = sa.select(
        ledger.c.source_id, ledger.c.status, ledger.c.internal_id, ledger.c.operation
    ).where(ledger.c.target == target, ledger.c.kind == kind, ledger.c.source_id.in_(source_ids))
    with state_engine.connect() as conn:
        return {
            r.source_id: LedgerInfo(r.status, r.internal_id, r.operation)
            for r in conn.execute(stmt)
        }


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


def void_date(status: str, voided_at: datetime | None, issued: date, tz: ZoneInfo) -> date | None:
    """The company-time date an invoice was voided, or None when it is not void.

    A void without ``voided_at`` (which validation rejects) is taken as voided when issued.
    """
    if voided_at is not None:
        return voided_at.astimezone(tz).date()
    return issued if status == "void" else None


def _day_start(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)


def invoice_counted_as(issued: date, voided_on: date | None, period: Period) -> str:
    """What an invoice listed for ``period`` counts as (docs/accounting.md, Voids)."""
    if issued < period.start:
        return VOIDED
    if voided_on is not None and voided_on <= period.end:
        return VOID_IN_MONTH
    return INVOICED


def invoice_rows(
    billing: sa.Engine,
    state: sa.Engine,
    period: Period,
    entity: str | None,
    target: str,
    tally: Tally,
    *,
    voids: Tally,
    timezone: ZoneInfo,
    left_out: LeftOut = LeftOut(),
) -> Iterator[InvoiceRow]:
    """Invoices issued in the period and earlier invoices voided in it, by currency and number.

    ``tally`` counts the invoiced ones, ``voids`` the earlier ones voided in the period; an
    invoice issued and voided in the period is listed and counted in neither.
    """
    i, c = b.invoices, b.customers
    voided_in_period = sa.and_(
        i.c.issue_date < period.start,
        i.c.voided_at >= _day_start(period.start, timezone),
        i.c.voided_at < _day_start(period.end + timedelta(days=1), timezone),
    )
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
            i.c.voided_at,
            i.c.memo,
        )
        .join(c, c.c.id == i.c.customer_id)
        .where(sa.or_(_in_period(i.c.issue_date, period), voided_in_period))
        .order_by(i.c.currency, i.c.number)
    )
    if entity:
        stmt = stmt.where(i.c.billing_entity == entity)
    for r, info in _with_ledger(_stream(billing, stmt), state, target, "invoice"):
        if left_out.has("invoice", r.id):
            continue
        tally.rows += 1
        tally.entities.add(r.billing_entity)
        voided_on = void_date(r.status, r.voided_at, r.issue_date, timezone)
        counted_as = invoice_counted_as(r.issue_date, voided_on, period)
        if counted_as == INVOICED:
            tally.add(r.currency, r.total, r.tax_total, bool(info and info.synced))
        elif counted_as == VOIDED:
            void_synced = bool(info and info.synced and info.operation == "void")
            voids.add(r.currency, r.total, r.tax_total, void_synced)
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
            voided_on,
            counted_as,
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
    *,
    left_out: LeftOut = LeftOut(),
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
        if left_out.has("credit_note", r.id):
            continue
        tally.rows += 1
        tally.entities.add(r.billing_entity)
        counted_as = CREDITED if r.status == "issued" else f"{NOT_COUNTED} ({r.status})"
        if counted_as == CREDITED:
            tally.add(r.currency, r.total, r.tax_total, bool(info and info.synced))
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
            counted_as,
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
    *,
    left_out: LeftOut = LeftOut(),
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
        if left_out.has("payment", r.id):
            continue
        tally.rows += 1
        tally.entities.add(r.billing_entity)
        counted_as = COLLECTED if r.status == "succeeded" else f"{NOT_COUNTED} ({r.status})"
        if counted_as == COLLECTED:
            tally.add(r.currency, r.amount, ZERO, bool(info and info.synced))
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
            counted_as,
            info.internal_id if info else None,
            _sync_status(info),
        )


def refund_rows(
    billing: sa.Engine,
    state: sa.Engine,
    period: Period,
    entity: str | None,
    target: str,
    tally: Tally,
    *,
    left_out: LeftOut = LeftOut(),
) -> Iterator[RefundRow]:
    """Refunds paid in the period, by currency and reference; every one is tallied."""
    r_, c, p, n = b.refunds, b.customers, b.payments, b.credit_notes
    stmt = (
        sa.select(
            r_.c.id,
            r_.c.reference,
            c.c.billing_entity,
            c.c.account_number,
            c.c.name,
            r_.c.refunded_on,
            p.c.reference.label("payment_reference"),
            n.c.number.label("credit_note_number"),
            r_.c.currency,
            r_.c.amount,
        )
        .join(c, c.c.id == r_.c.customer_id)
        .outerjoin(p, p.c.id == r_.c.payment_id)
        .outerjoin(n, n.c.id == r_.c.credit_note_id)
        .where(_in_period(r_.c.refunded_on, period))
        .order_by(r_.c.currency, r_.c.reference)
    )
    if entity:
        stmt = stmt.where(c.c.billing_entity == entity)
    for r, info in _with_ledger(_stream(billing, stmt), state, target, "refund"):
        if left_out.has("refund", r.id):
            continue
        tally.rows += 1
        tally.entities.add(r.billing_entity)
        tally.add(r.currency, r.amount, ZERO, bool(info and info.synced))
        if r.payment_reference is not None:
            refund_of = f"payment {r.payment_reference}"
        elif r.credit_note_number is not None:
            refund_of = f"credit note {r.credit_note_number}"
        else:
            refund_of = ""
        yield RefundRow(
            r.reference,
            r.billing_entity,
            r.account_number,
            r.name,
            r.refunded_on,
            refund_of,
            r.currency,
            r.amount,
            REFUNDED,
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
    left_out: LeftOut | None = None,
) -> Figures:
    """Aggregate revenue, deferred revenue, AR aging, credit balances, tax and sync health.

    ``left_out`` are the records validation rejected (``find_left_out`` when None): every
    figure leaves them out.
    """
    out = find_left_out(billing, mapping) if left_out is None else left_out
    revenue = _revenue(billing, period, entity, timezone, mapping, out)
    tax_totals, tax_variances = tax_figures(
        billing,
        state,
        period_start=period.start,
        period_end=period.end,
        entity=entity,
        target=tax_target,
        left_out=out.ids("invoice"),
    )
    aging, credit_balances = _receivables(billing, period, entity, timezone, out)
    return Figures(
        period=period,
        entity=entity,
        revenue=revenue.lines,
        roll_forward=revenue.rolls,
        waterfall_months=revenue.months,
        waterfall=revenue.waterfall,
        later_reductions=revenue.later_reductions,
        journals=_journals(state, erp_target, period, revenue.journal_entries),
        aging=aging,
        credit_balances=credit_balances,
        tax=tax_totals,
        tax_variances=tax_variances,
        sync_health=_sync_health(state, erp_target),
        exceptions_count=_count_exceptions(state),
        left_out=out,
    )


@dataclass
class _JournalEntries:
    """The ratable schedule entries of the period of one (entity, currency)."""

    count: int = 0
    scheduled: Decimal = ZERO
    recognized: Decimal = ZERO


@dataclass(frozen=True)
class _Revenue:
    lines: tuple[RevenueLine, ...]
    rolls: tuple[RollForward, ...]
    months: tuple[date, ...]
    waterfall: dict[str, tuple[Decimal, ...]]
    later_reductions: dict[str, Decimal]
    journal_entries: dict[tuple[str, str], _JournalEntries]


@dataclass
class _RatableLine:
    entity: str
    currency: str
    issued: date
    amount: Decimal
    voided_on: date | None
    credited: list[tuple[date, Decimal]] = field(default_factory=list)


def _sums(
    billing: sa.Engine,
    stmt: sa.Select[Any],
    keys: Sequence[str],
    excluded: Sequence[tuple[Any, frozenset[int]]],
) -> dict[tuple[Any, ...], Decimal]:
    """Sum ``stmt``'s ``amount`` per ``keys`` (labels of its columns), leaving out its rows whose
    column is in the ids beside it in ``excluded``; ``stmt`` has a unique ``id`` column.

    PostgreSQL sums NUMERIC exactly, so it aggregates (and the few excluded rows are read back
    and taken off); SQLite holds money as text and would sum floats, so its rows stream into
    ``Decimal`` sums here.
    """
    sums: dict[tuple[Any, ...], Decimal] = defaultdict(lambda: ZERO)
    counts: dict[tuple[Any, ...], int] = defaultdict(int)
    if billing.dialect.name != "postgresql":
        for r in _stream(billing, stmt):
            if not any(getattr(r, col.name) in ids for col, ids in excluded):
                key = tuple(getattr(r, k) for k in keys)
                sums[key] += r.amount
                counts[key] += 1
        return dict(sums)
    rows = stmt.subquery()
    grouped = sa.select(
        *(rows.c[k] for k in keys),
        sa.func.count().label("rows"),
        sa.func.sum(rows.c.amount).label("amount"),
    ).group_by(*(rows.c[k] for k in keys))
    with billing.connect() as conn:  # a few rows: no server-side cursor, so a full plan
        for r in conn.execute(grouped):
            key = tuple(r[: len(keys)])
            sums[key] += r.amount
            counts[key] += r.rows
    taken: set[int] = set()
    for col, ids in excluded:
        for chunk in _chunks(sorted(ids)):
            for r in _stream(billing, stmt.where(col.in_(chunk))):
                if r.id not in taken:
                    taken.add(r.id)
                    key = tuple(getattr(r, k) for k in keys)
                    sums[key] -= r.amount
                    counts[key] -= 1
    # A key whose every row is left out has no figure at all (as if never read).
    return {key: amount for key, amount in sums.items() if counts[key] > 0}


def _revenue(
    billing: sa.Engine,
    period: Period,
    entity: str | None,
    timezone: ZoneInfo,
    mapping: MappingTables | None,
    left_out: LeftOut,
) -> _Revenue:
    """Recognized revenue, the deferred roll-forward and the waterfall (docs/accounting.md).

    Reads are bounded by the month, not the history: ratable lines issued before it that were
    never voided nor credited, and schedule entries before it, only add to the opening, so they
    come summed per entity and currency (``_sums``); the month's lines, the voided or credited
    ones and the entries from the month on are read row by row.
    """
    i, line, prod, e = b.invoices, b.invoice_lines, b.products, b.revenue_schedule_entries
    n, nl = b.credit_notes, b.credit_note_lines
    credited_lines = (
        sa.select(nl.c.invoice_line_id)
        .join(n, n.c.id == nl.c.credit_note_id)
        .where(nl.c.invoice_line_id.is_not(None), n.c.status == "issued")
    )
    untouched = sa.and_(
        i.c.issue_date < period.start,
        i.c.voided_at.is_(None),
        i.c.status != "void",
        line.c.id.not_in(credited_lines),  # one hashed set, not a probe per line
    )
    ratable_lines = (
        sa.select(
            line.c.id,
            line.c.invoice_id,
            i.c.billing_entity,
            i.c.currency,
            i.c.issue_date,
            i.c.status,
            i.c.voided_at,
            line.c.amount,
        )
        .join(i, i.c.id == line.c.invoice_id)
        .join(prod, prod.c.id == line.c.product_id)
        .where(i.c.issue_date <= period.end, prod.c.revenue_pattern == "ratable")
    )
    opening_lines = (
        sa.select(
            line.c.id,
            line.c.invoice_id,
            i.c.billing_entity.label("entity"),
            i.c.currency,
            line.c.amount,
        )
        .join(i, i.c.id == line.c.invoice_id)
        .join(prod, prod.c.id == line.c.product_id)
        .where(prod.c.revenue_pattern == "ratable", untouched)
    )
    credits = (
        sa.select(nl.c.invoice_line_id, n.c.id.label("credit_note_id"), n.c.issue_date, nl.c.amount)
        .join(n, n.c.id == nl.c.credit_note_id)
        .join(line, line.c.id == nl.c.invoice_line_id)
        .join(i, i.c.id == line.c.invoice_id)
        .join(prod, prod.c.id == line.c.product_id)
        .where(
            n.c.status == "issued",
            i.c.issue_date <= period.end,
            prod.c.revenue_pattern == "ratable",
        )
    )
    entries = (
        sa.select(
            e.c.id,
            line.c.invoice_id,
            e.c.period,
            e.c.amount,
            e.c.status,
            i.c.billing_entity,
            i.c.currency,
            i.c.issue_date,
            prod.c.product_family,
            prod.c.revenue_pattern,
        )
        .join(line, line.c.id == e.c.invoice_line_id)
        .join(i, i.c.id == line.c.invoice_id)
        .join(prod, prod.c.id == line.c.product_id)
        .where(
            sa.or_(
                e.c.period == period.start,
                sa.and_(
                    e.c.period > period.start,
                    prod.c.revenue_pattern == "ratable",
                    i.c.issue_date <= period.end,
                ),
            )
        )
        .order_by(e.c.id)
    )
    earlier_entries = (
        sa.select(
            e.c.id,
            line.c.invoice_id,
            i.c.billing_entity.label("entity"),
            i.c.currency,
            e.c.amount,
        )
        .join(line, line.c.id == e.c.invoice_line_id)
        .join(i, i.c.id == line.c.invoice_id)
        .join(prod, prod.c.id == line.c.product_id)
        .where(e.c.period < period.start, prod.c.revenue_pattern == "ratable")
    )
    if entity:
        ratable_lines = ratable_lines.where(i.c.billing_entity == entity)
        opening_lines = opening_lines.where(i.c.billing_entity == entity)
        credits = credits.where(i.c.billing_entity == entity)
        entries = entries.where(i.c.billing_entity == entity)
        earlier_entries = earlier_entries.where(i.c.billing_entity == entity)
    touched = sa.or_(  # not untouched, written so that PostgreSQL hashes the credited lines
        i.c.issue_date >= period.start,
        i.c.voided_at.is_not(None),
        i.c.status == "void",
        line.c.id.in_(credited_lines),
    )
    ratable_lines = ratable_lines.where(touched)

    rolls: dict[tuple[str, str], RollForward] = {}

    def roll(key: tuple[str, str]) -> RollForward:
        return rolls.setdefault(key, RollForward(*key))

    left_invoices = left_out.ids("invoice")
    for key, amount in _sums(
        billing, opening_lines, ("entity", "currency"), [(line.c.invoice_id, left_invoices)]
    ).items():
        roll((key[0], key[1])).opening += amount
    lines: dict[int, _RatableLine] = {}
    for r in _stream(billing, ratable_lines):
        if left_out.has("invoice", r.invoice_id):
            continue
        voided_on = void_date(r.status, r.voided_at, r.issue_date, timezone)
        lines[r.id] = _RatableLine(r.billing_entity, r.currency, r.issue_date, r.amount, voided_on)
    for r in _stream(billing, credits):
        if r.invoice_line_id in lines and not left_out.has("credit_note", r.credit_note_id):
            lines[r.invoice_line_id].credited.append((r.issue_date, r.amount))

    later: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for li in lines.values():
        if li.voided_on is not None and add_months(li.voided_on, 0) == add_months(li.issued, 0):
            continue  # voided in the month it was issued: it never counted
        rf = roll((li.entity, li.currency))
        if li.issued < period.start:
            rf.opening += li.amount
        else:
            rf.billed += li.amount
        for day, amount in li.credited:
            if day < period.start:
                rf.opening -= amount
            elif day <= period.end:
                rf.credited += amount
            else:
                later[li.currency] += amount
        if li.voided_on is not None:
            left = li.amount - sum((amount for _, amount in li.credited), ZERO)
            if li.voided_on < period.start:
                rf.opening -= left
            elif li.voided_on <= period.end:
                rf.voided += left
            else:
                later[li.currency] += left

    excluded_entries = [
        (e.c.id, left_out.ids("revenue_entry")),
        (line.c.invoice_id, left_invoices),
    ]
    for key, amount in _sums(
        billing, earlier_entries, ("entity", "currency"), excluded_entries
    ).items():
        roll((key[0], key[1])).opening -= amount

    months = tuple(add_months(period.start, k) for k in range(1, WATERFALL_MONTHS + 1))
    month_index = {m: k for k, m in enumerate(months)}
    waterfall: dict[str, list[Decimal]] = {}
    recognized: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    journal_entries: dict[tuple[str, str], _JournalEntries] = {}
    for r in _stream(billing, entries):
        if left_out.has("revenue_entry", r.id) or left_out.has("invoice", r.invoice_id):
            continue
        ratable = r.revenue_pattern == "ratable"
        if r.period == period.start:
            recognized[(r.currency, r.product_family)] += r.amount
            if ratable:
                rolls.setdefault(
                    (r.billing_entity, r.currency), RollForward(r.billing_entity, r.currency)
                ).recognized += r.amount
                je = journal_entries.setdefault((r.billing_entity, r.currency), _JournalEntries())
                je.count += 1
                je.scheduled += r.amount
                if r.status == "recognized":
                    je.recognized += r.amount
        elif ratable and r.issue_date <= period.end:
            row = waterfall.setdefault(r.currency, [ZERO] * (WATERFALL_MONTHS + 1))
            row[month_index.get(r.period, WATERFALL_MONTHS)] += r.amount

    families = mapping.product_families if mapping else {}
    revenue = tuple(
        RevenueLine(cur, fam, families[fam].revenue_account if fam in families else None, amt)
        for (cur, fam), amt in sorted(recognized.items())
    )
    currencies = {rf.currency for rf in rolls.values()} | set(waterfall)
    return _Revenue(
        revenue,
        tuple(rolls[k] for k in sorted(rolls)),
        months,
        {
            cur: tuple(waterfall.get(cur, [ZERO] * (WATERFALL_MONTHS + 1)))
            for cur in sorted(currencies)
        },
        {cur: later.get(cur, ZERO) for cur in sorted(currencies)},
        journal_entries,
    )


def _journals(
    state: sa.Engine,
    target: str,
    period: Period,
    entries: dict[tuple[str, str], _JournalEntries],
) -> tuple[JournalLine, ...]:
    """The period's revenue journals (and their adjustments) as last sent, against billing."""
    prefix = f"{period.start:%Y-%m}:"
    lg = ledger.c
    stmt = sa.select(lg.source_id, lg.status, lg.synced_payload).where(
        lg.target == target, lg.kind == rr.KIND, lg.source_id.like(f"{prefix}%")
    )
    posted: dict[tuple[str, str], Decimal] = {}
    status: dict[tuple[str, str], str] = {}
    with state.connect() as conn:
        for source_id, row_status, synced in conn.execute(stmt):
            try:
                key = rr.JournalKey.parse(source_id)
            except ValueError:
                continue
            index = (key.entity, key.currency)
            if synced is not None:
                net = sum(rr.posted_lines(json.loads(synced)).values(), ZERO)
                posted[index] = posted.get(index, ZERO) + net
            # The journal is synced when it and every adjustment of it is.
            if status.get(index, "synced") == "synced":
                status[index] = row_status
    keys = sorted(set(entries) | set(posted) | set(status))
    return tuple(
        JournalLine(
            ent,
            cur,
            entries[(ent, cur)].count if (ent, cur) in entries else 0,
            entries[(ent, cur)].scheduled if (ent, cur) in entries else ZERO,
            entries[(ent, cur)].recognized if (ent, cur) in entries else ZERO,
            posted.get((ent, cur)),
            status.get((ent, cur), "not in ledger"),
        )
        for ent, cur in sorted(keys, key=lambda k: (k[1], k[0]))
    )


def _receivables(
    billing: sa.Engine, period: Period, entity: str | None, timezone: ZoneInfo, left_out: LeftOut
) -> tuple[tuple[AgingRow, ...], tuple[CreditBalanceRow, ...]]:
    """Open receivables by days past due, and customer credit balances, at period end.

    An invoice's open amount is its total less succeeded payments applied on or before the end
    and credit notes issued on or before it; an invoice voided after the end was still open.
    Positive open amounts are aged; negative ones (over-credited or over-paid) join the
    customer's credit balance with unapplied cash less refunds (docs/accounting.md).
    """
    i, c, a, p, n = (b.invoices, b.customers, b.payment_applications, b.payments, b.credit_notes)
    reductions = sa.union_all(
        sa.select(
            a.c.invoice_id,
            sa.literal("payment").label("source"),
            p.c.id.label("source_id"),
            a.c.amount,
        )
        .join(p, p.c.id == a.c.payment_id)
        .where(a.c.applied_on <= period.end, p.c.status == "succeeded"),
        sa.select(
            n.c.invoice_id,
            sa.literal("credit_note").label("source"),
            n.c.id.label("source_id"),
            n.c.total.label("amount"),
        ).where(n.c.issue_date <= period.end, n.c.status == "issued"),
    ).subquery()
    stmt = (
        sa.select(
            i.c.id,
            i.c.currency,
            i.c.issue_date,
            i.c.due_date,
            i.c.total,
            i.c.status,
            i.c.voided_at,
            c.c.account_number,
            c.c.name,
            reductions.c.source,
            reductions.c.source_id,
            reductions.c.amount.label("reduction"),
        )
        .join(c, c.c.id == i.c.customer_id)
        .outerjoin(reductions, reductions.c.invoice_id == i.c.id)
        .where(i.c.issue_date <= period.end)
        .order_by(i.c.id)
    )
    applied = (
        sa.select(a.c.payment_id, a.c.amount)
        .join(p, p.c.id == a.c.payment_id)
        .where(a.c.applied_on <= period.end)
    )
    cash = (
        sa.select(p.c.id, p.c.amount, p.c.currency, c.c.account_number, c.c.name)
        .join(c, c.c.id == p.c.customer_id)
        .where(p.c.received_on <= period.end, p.c.status == "succeeded")
    )
    refunds = (
        sa.select(
            b.refunds.c.id, b.refunds.c.amount, b.refunds.c.currency, c.c.account_number, c.c.name
        )
        .join(c, c.c.id == b.refunds.c.customer_id)
        .where(b.refunds.c.refunded_on <= period.end)
    )
    if entity:
        stmt = stmt.where(i.c.billing_entity == entity)
        cash = cash.where(c.c.billing_entity == entity)
        refunds = refunds.where(c.c.billing_entity == entity)
    aging: dict[tuple[str, str], AgingRow] = {}
    credit: dict[tuple[str, str], CreditBalanceRow] = {}

    def credit_row(account: str, name: str, currency: str) -> CreditBalanceRow:
        return credit.setdefault((account, currency), CreditBalanceRow(account, name, currency))

    def settle(r: sa.Row[Any], reduced: Decimal) -> None:
        if left_out.has("invoice", r.id):
            return
        voided_on = void_date(r.status, r.voided_at, r.issue_date, timezone)
        if voided_on is not None and voided_on <= period.end:
            return
        open_amount = r.total - reduced
        if open_amount > ZERO:
            ar = aging.setdefault(
                (r.account_number, r.currency), AgingRow(r.account_number, r.name, r.currency)
            )
            ar.buckets[aging_bucket((period.end - r.due_date).days)] += open_amount
        elif open_amount < ZERO:
            credit_row(r.account_number, r.name, r.currency).over_credit -= open_amount

    current: sa.Row[Any] | None = None
    reduced = ZERO
    for r in _stream(billing, stmt):
        if current is not None and r.id != current.id:
            settle(current, reduced)
            reduced = ZERO
        current = r
        if r.reduction is not None and not left_out.has(r.source, r.source_id):
            reduced += r.reduction
    if current is not None:
        settle(current, reduced)

    applied_by_payment: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for r in _stream(billing, applied):
        applied_by_payment[r.payment_id] += r.amount
    for r in _stream(billing, cash):
        if left_out.has("payment", r.id):
            continue
        unapplied = r.amount - applied_by_payment.get(r.id, ZERO)
        if unapplied:
            credit_row(r.account_number, r.name, r.currency).unapplied_cash += unapplied
    for r in _stream(billing, refunds):
        if left_out.has("refund", r.id):
            continue
        credit_row(r.account_number, r.name, r.currency).refunded += r.amount

    def order(k: tuple[str, str]) -> tuple[str, str]:
        return (k[1], k[0])

    return (
        tuple(aging[k] for k in sorted(aging, key=order)),
        tuple(credit[k] for k in sorted(credit, key=order) if credit[k].balance != ZERO),
    )


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
