"""The document sheets' rows: invoices, credit notes, payments and refunds of the month, and the
ledger's sync exceptions.

Each is a generator that looks its ledger rows up a chunk at a time, so memory stays flat, and
feeds a ``Tally`` while it streams: the Summary and Reconciliation take their per-currency totals
from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from billing import schema as b
from reports.common import (
    COLLECTED,
    CREDITED,
    INVOICED,
    NOT_COUNTED,
    NOTHING_LEFT_OUT,
    REFUNDED,
    VOID_IN_MONTH,
    VOIDED,
    ZERO,
    LeftOut,
    Period,
    Tally,
    day_start,
    in_period,
    stream_rows,
    sync_status,
    void_date,
    with_ledger,
)


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
    left_out: LeftOut = NOTHING_LEFT_OUT,
) -> Iterator[InvoiceRow]:
    """Invoices issued in the period and earlier invoices voided in it, by currency and number.

    ``tally`` counts the invoiced ones, ``voids`` the earlier ones voided in the period; an
    invoice issued and voided in the period is listed and counted in neither.
    """
    i, c = b.invoices, b.customers
    voided_in_period = sa.and_(
        i.c.issue_date < period.start,
        i.c.voided_at >= day_start(period.start, timezone),
        i.c.voided_at < day_start(period.end + timedelta(days=1), timezone),
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
        .where(sa.or_(in_period(i.c.issue_date, period), voided_in_period))
        .order_by(i.c.currency, i.c.number)
    )
    if entity:
        stmt = stmt.where(i.c.billing_entity == entity)
    for r, info in with_ledger(stream_rows(billing, stmt), state, target, "invoice"):
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
            sync_status(info),
        )


def credit_note_rows(
    billing: sa.Engine,
    state: sa.Engine,
    period: Period,
    entity: str | None,
    target: str,
    tally: Tally,
    *,
    left_out: LeftOut = NOTHING_LEFT_OUT,
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
        .where(in_period(n.c.issue_date, period))
        .order_by(n.c.currency, n.c.number)
    )
    if entity:
        stmt = stmt.where(i.c.billing_entity == entity)
    for r, info in with_ledger(stream_rows(billing, stmt), state, target, "credit_note"):
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
            sync_status(info),
        )


def payment_rows(
    billing: sa.Engine,
    state: sa.Engine,
    period: Period,
    entity: str | None,
    target: str,
    tally: Tally,
    *,
    left_out: LeftOut = NOTHING_LEFT_OUT,
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
        .where(in_period(p.c.received_on, period))
        .order_by(p.c.currency, p.c.reference, p.c.id)
    )
    if entity:
        stmt = stmt.where(c.c.billing_entity == entity)
    for r, info in with_ledger(
        _grouped_payments(stream_rows(billing, stmt)), state, target, "payment"
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
            sync_status(info),
        )


def refund_rows(
    billing: sa.Engine,
    state: sa.Engine,
    period: Period,
    entity: str | None,
    target: str,
    tally: Tally,
    *,
    left_out: LeftOut = NOTHING_LEFT_OUT,
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
        .where(in_period(r_.c.refunded_on, period))
        .order_by(r_.c.currency, r_.c.reference)
    )
    if entity:
        stmt = stmt.where(c.c.billing_entity == entity)
    for r, info in with_ledger(stream_rows(billing, stmt), state, target, "refund"):
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
            sync_status(info),
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
