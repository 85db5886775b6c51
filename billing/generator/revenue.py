"""Revenue schedules: a line's amount spread over its service months, reversals of it, and the
schedule entries written (recognized before the seeded window's end, scheduled after)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from billing.generator.dates import month_end, month_start
from billing.generator.rows import ZERO, Rows
from core.money import quantum, split_evenly


def split_weighted(total: Decimal, weights: Sequence[int], currency: str) -> list[Decimal]:
    """Split ``total`` in proportion to ``weights`` so that the parts sum exactly to it.

    Largest-remainder method on minor units; ties go to the earlier part, so it is deterministic.
    """
    q = quantum(currency)
    units = int((total / q).to_integral_value())
    sign = -1 if units < 0 else 1
    units = abs(units)
    weight_sum = sum(weights)
    shares = [units * w // weight_sum for w in weights]
    order = sorted(range(len(weights)), key=lambda i: (-(units * weights[i] % weight_sum), i))
    for i in order[: units - sum(shares)]:
        shares[i] += 1
    return [Decimal(sign * s) * q for s in shares]


def schedule(amount: Decimal, start: date, end: date, currency: str) -> list[tuple[date, Decimal]]:
    """Spread a ratable ``amount`` over the months of the service period ``start``..``end``.

    Whole calendar months get equal shares (straight-line per month); other periods are prorated
    by days. One (period, amount) per month touched; the amounts sum exactly to ``amount``.
    """
    months: list[tuple[date, int]] = []
    cursor = start
    while cursor <= end:
        last = min(month_end(cursor), end)
        months.append((month_start(cursor), (last - cursor).days + 1))
        cursor = last + timedelta(days=1)
    if start.day == 1 and end == month_end(end):
        shares = split_evenly(amount, len(months), currency)
    else:
        shares = split_weighted(amount, [days for _, days in months], currency)
    return [(period, share) for (period, _), share in zip(months, shares, strict=True)]


def line_schedule(
    amount: Decimal,
    ratable: bool,
    start: date | None,
    end: date | None,
    issue: date,
    currency: str,
) -> list[tuple[date, Decimal]]:
    """The schedule of one line: over its service period if ratable, else in the issue month."""
    if ratable and start is not None and end is not None:
        return schedule(amount, start, end, currency)
    return [(month_start(issue), amount)]


def reversal(parts: Sequence[tuple[date, Decimal]], earliest: date) -> list[tuple[date, Decimal]]:
    """Negative entries undoing ``parts``: periods before ``earliest`` are caught up in it.

    Revenue already recognized in a closed month is reversed in the month of the credit (or
    void), not rewritten; future months are reduced in their own period. Zero parts are dropped.
    """
    merged: dict[date, Decimal] = {}
    for period, amount in parts:
        if amount:
            key = max(period, earliest)
            merged[key] = merged.get(key, ZERO) - amount
    return sorted(merged.items())


def entries(
    rows: Rows, line_id: int, parts: Sequence[tuple[date, Decimal]], made: datetime
) -> None:
    """Schedule entries made at ``made``; months before the boundary are recognized."""
    for period, amount in parts:
        if period < rows.boundary:
            recognized_on: date | None = month_end(period)
            # The month-end close marks the entry recognized, moving its updated_at.
            closed = datetime.combine(month_end(period), time(23, 30), tzinfo=UTC)
            status, updated_at = "recognized", max(made, closed)
        else:
            recognized_on, status, updated_at = None, "scheduled", made
        rows.emit(
            "revenue_schedule_entries",
            {
                "id": rows.next_id("revenue_schedule_entries"),
                "invoice_line_id": line_id,
                "period": period,
                "amount": amount,
                "status": status,
                "recognized_on": recognized_on,
                "updated_at": updated_at,
            },
        )
