"""Receivables at the month's end: open invoices by days past due, and customer credit balances
(docs/accounting.md).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from billing import schema as b
from reports.common import ZERO, LeftOut, Period, stream_rows, void_date

AGING_BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")


@dataclass(slots=True)
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


@dataclass(slots=True)
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


class AgingRows:
    """The aging rows at period end, in (currency, account) order, with their total per
    currency known up front.

    On PostgreSQL the rows are read from billing each time they are iterated (one row per
    customer and currency, already bucketed by the database), so memory does not follow the
    number of customers; elsewhere they are held.
    """

    def __init__(self, rows: Callable[[], Iterable[AgingRow]], totals: dict[str, Decimal]) -> None:
        self._rows = rows
        self.totals = totals  # currency -> what customers owe in it

    def __iter__(self) -> Iterator[AgingRow]:
        return iter(self._rows())


def receivables_at_end(
    billing: sa.Engine, period: Period, entity: str | None, timezone: ZoneInfo, left_out: LeftOut
) -> tuple[AgingRows, tuple[CreditBalanceRow, ...]]:
    """Open receivables by days past due, and customer credit balances, at period end.

    An invoice's open amount is its total less succeeded payments applied on or before the end
    and credit notes issued on or before it; an invoice voided after the end was still open.
    Positive open amounts are aged; negative ones (over-credited or over-paid) join the
    customer's credit balance with unapplied cash less refunds (docs/accounting.md).
    """
    i, c, a, p, n = (b.invoices, b.customers, b.payment_applications, b.payments, b.credit_notes)
    paid = (
        sa.select(
            a.c.invoice_id,
            sa.literal("payment").label("source"),
            p.c.id.label("source_id"),
            a.c.amount,
        )
        .join(p, p.c.id == a.c.payment_id)
        .where(a.c.applied_on <= period.end, p.c.status == "succeeded")
    )
    credited = sa.select(
        n.c.invoice_id,
        sa.literal("credit_note").label("source"),
        n.c.id.label("source_id"),
        n.c.total.label("amount"),
    ).where(n.c.issue_date <= period.end, n.c.status == "issued")
    reductions = sa.union_all(paid, credited).subquery()
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

    if billing.dialect.name == "postgresql":
        # NUMERIC sums are exact: PostgreSQL nets each invoice and each payment, and sends only
        # those still open (or over-credited) at the end, not the whole settled history.
        kept = sa.union_all(
            paid.where(p.c.id.not_in(_literal_ids(left_out.ids("payment")))),
            credited.where(n.c.id.not_in(_literal_ids(left_out.ids("credit_note")))),
        ).subquery()
        net = (
            sa.select(kept.c.invoice_id, sa.func.sum(kept.c.amount).label("reduced"))
            .group_by(kept.c.invoice_id)
            .subquery()
        )
        reduced_by_end = sa.func.coalesce(net.c.reduced, 0)
        open_invoices = (
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
                reduced_by_end.label("reduced"),
            )
            .join(c, c.c.id == i.c.customer_id)
            .outerjoin(net, net.c.invoice_id == i.c.id)
            .where(i.c.issue_date <= period.end, i.c.total != reduced_by_end)
        )
        applied_by_end = (
            sa.select(a.c.payment_id, sa.func.sum(a.c.amount).label("applied"))
            .where(a.c.applied_on <= period.end)
            .group_by(a.c.payment_id)
            .subquery()
        )
        unapplied = (p.c.amount - sa.func.coalesce(applied_by_end.c.applied, 0)).label("unapplied")
        open_cash = (
            sa.select(p.c.id, p.c.currency, c.c.account_number, c.c.name, unapplied)
            .join(c, c.c.id == p.c.customer_id)
            .outerjoin(applied_by_end, applied_by_end.c.payment_id == p.c.id)
            .where(
                p.c.received_on <= period.end,
                p.c.status == "succeeded",
                p.c.amount != sa.func.coalesce(applied_by_end.c.applied, 0),
            )
        )
        if entity:
            open_invoices = open_invoices.where(i.c.billing_entity == entity)
            open_cash = open_cash.where(c.c.billing_entity == entity)
        aging_rows = _aging_in_sql(billing, open_invoices, period, timezone, left_out)
        # Over-credited invoices (few) join the credit balances one by one.
        for r in stream_rows(billing, open_invoices.where(i.c.total < reduced_by_end)):
            settle(r, r.reduced)
        for r in stream_rows(billing, open_cash):
            if not left_out.has("payment", r.id):
                credit_row(r.account_number, r.name, r.currency).unapplied_cash += r.unapplied
    else:
        current: sa.Row[Any] | None = None
        reduced = ZERO
        for r in stream_rows(billing, stmt):
            if current is not None and r.id != current.id:
                settle(current, reduced)
                reduced = ZERO
            current = r
            if r.reduction is not None and not left_out.has(r.source, r.source_id):
                reduced += r.reduction
        if current is not None:
            settle(current, reduced)

        applied_by_payment: dict[int, Decimal] = defaultdict(lambda: ZERO)
        for r in stream_rows(billing, applied):
            applied_by_payment[r.payment_id] += r.amount
        for r in stream_rows(billing, cash):
            if left_out.has("payment", r.id):
                continue
            left = r.amount - applied_by_payment.get(r.id, ZERO)
            if left:
                credit_row(r.account_number, r.name, r.currency).unapplied_cash += left
    for r in stream_rows(billing, refunds):
        if left_out.has("refund", r.id):
            continue
        credit_row(r.account_number, r.name, r.currency).refunded += r.amount

    def order(k: tuple[str, str]) -> tuple[str, str]:
        return (k[1], k[0])

    if billing.dialect.name != "postgresql":
        held = tuple(aging[k] for k in sorted(aging, key=order))
        totals: dict[str, Decimal] = defaultdict(lambda: ZERO)
        for row in held:
            totals[row.currency] += row.total
        aging_rows = AgingRows(lambda: held, dict(totals))
    return (
        aging_rows,
        tuple(credit[k] for k in sorted(credit, key=order) if credit[k].balance != ZERO),
    )


def _aging_in_sql(
    billing: sa.Engine,
    open_invoices: sa.Select[Any],
    period: Period,
    timezone: ZoneInfo,
    left_out: LeftOut,
) -> AgingRows:
    """Aging rows bucketed and summed per customer and currency by PostgreSQL (exact NUMERIC),
    leaving out rejected invoices and those voided by the end (the void date in ``timezone``)."""
    oi = open_invoices.where(
        b.invoices.c.id.not_in(_literal_ids(left_out.ids("invoice")))
    ).subquery()
    voided_by_end = sa.or_(
        sa.and_(
            oi.c.voided_at.is_not(None),
            sa.cast(sa.func.timezone(timezone.key, oi.c.voided_at), sa.Date) <= period.end,
        ),
        sa.and_(oi.c.voided_at.is_(None), oi.c.status == "void"),
    )
    owed = oi.c.total - oi.c.reduced
    days = sa.literal(period.end, sa.Date) - oi.c.due_date
    limits = ((None, 0), (1, 30), (31, 60), (61, 90), (91, None))
    buckets = [
        sa.func.sum(
            sa.case(
                (
                    sa.and_(
                        sa.true() if low is None else days >= low,
                        sa.true() if high is None else days <= high,
                    ),
                    owed,
                ),
                else_=0,
            )
        ).label(f"b{k}")
        for k, (low, high) in enumerate(limits)
    ]
    keys = (oi.c.account_number, oi.c.name, oi.c.currency)
    rows = (
        sa.select(*keys, *buckets)
        .where(owed > 0, sa.not_(voided_by_end))
        .group_by(*keys)
        # Code-point order, as Python sorts the rows it holds (not the database's collation).
        .order_by(oi.c.currency.collate("C"), oi.c.account_number.collate("C"))
    )
    totals: dict[str, Decimal] = {}
    per_currency = rows.subquery()
    total = sum((per_currency.c[f"b{k}"] for k in range(len(limits))), sa.literal(0))
    with billing.connect() as conn:
        for currency, amount in conn.execute(
            sa.select(per_currency.c.currency, sa.func.sum(total)).group_by(per_currency.c.currency)
        ):
            totals[currency] = amount

    def read() -> Iterator[AgingRow]:
        for r in stream_rows(billing, rows):
            amounts = (r.b0, r.b1, r.b2, r.b3, r.b4)
            yield AgingRow(
                r.account_number, r.name, r.currency, dict(zip(AGING_BUCKETS, amounts, strict=True))
            )

    return AgingRows(read, totals)


def _literal_ids(ids: frozenset[int]) -> sa.BindParameter[list[int]]:
    """Ids written into the SQL as literals: a driver takes at most 65,535 parameters, and
    validation may reject more records than that."""
    return sa.bindparam("ids", sorted(ids), expanding=True, literal_execute=True, unique=True)


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
