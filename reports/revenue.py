"""Revenue of the month: recognized revenue, the deferred roll-forward and the waterfall of what is
still to recognize, and the revenue journals against the ERP (docs/accounting.md).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from billing import schema as b
from mappings import revrec as rr
from mappings.tables import MappingTables
from reports.common import (
    ZERO,
    LeftOut,
    Period,
    add_months,
    chunks,
    day_start,
    stream_rows,
    void_date,
)
from sync.state import ledger

WATERFALL_MONTHS = 12


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


@dataclass
class JournalEntries:
    """The ratable schedule entries of the period of one (entity, currency)."""

    count: int = 0
    scheduled: Decimal = ZERO
    recognized: Decimal = ZERO


@dataclass(frozen=True)
class RevenueFigures:
    """What ``revenue_figures`` finds: recognition, roll-forward, waterfall and journal entries."""

    lines: tuple[RevenueLine, ...]
    rolls: tuple[RollForward, ...]
    months: tuple[date, ...]
    waterfall: dict[str, tuple[Decimal, ...]]
    later_reductions: dict[str, Decimal]
    journal_entries: dict[tuple[str, str], JournalEntries]


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
) -> dict[tuple[Any, ...], tuple[Decimal, int]]:
    """Sum ``stmt``'s ``amount`` and count its rows per ``keys`` (labels of its columns),
    leaving out its rows whose column is in the ids beside it in ``excluded``; ``stmt`` has a
    unique ``id`` column. A key whose every row is left out has no figure at all.

    PostgreSQL sums NUMERIC exactly, so it aggregates (and the few excluded rows are read back
    and taken off); SQLite holds money as text and would sum floats, so its rows stream into
    ``Decimal`` sums here.
    """
    sums: dict[tuple[Any, ...], Decimal] = defaultdict(lambda: ZERO)
    counts: dict[tuple[Any, ...], int] = defaultdict(int)
    if billing.dialect.name != "postgresql":
        for r in stream_rows(billing, stmt):
            if not any(getattr(r, col.name) in ids for col, ids in excluded):
                key = tuple(getattr(r, k) for k in keys)
                sums[key] += r.amount
                counts[key] += 1
        return {key: (amount, counts[key]) for key, amount in sums.items()}
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
        for chunk in chunks(sorted(ids)):
            for r in stream_rows(billing, stmt.where(col.in_(chunk))):
                if r.id not in taken:
                    taken.add(r.id)
                    key = tuple(getattr(r, k) for k in keys)
                    sums[key] -= r.amount
                    counts[key] -= 1
    return {key: (amount, counts[key]) for key, amount in sums.items() if counts[key] > 0}


def revenue_figures(
    billing: sa.Engine,
    period: Period,
    entity: str | None,
    timezone: ZoneInfo,
    mapping: MappingTables | None,
    left_out: LeftOut,
) -> RevenueFigures:
    """Recognized revenue, the deferred roll-forward and the waterfall (docs/accounting.md).

    What comes summed in SQL (``_sums``) needs no row in Python: ratable lines issued, credited
    and voided before the month (they only add to the opening), the month's lines never voided
    nor credited (they only add to what it billed), schedule entries before it (the opening)
    and from it on (recognized revenue, journals, the waterfall). Only lines voided or
    credited from the month on, and their credits, are read one by one: the rows held follow
    the month's voids and credits, not its lines or the history.
    """
    i, line, prod, e = b.invoices, b.invoice_lines, b.products, b.revenue_schedule_entries
    n, nl = b.credit_notes, b.credit_note_lines
    credited_lines = (
        sa.select(nl.c.invoice_line_id)
        .join(n, n.c.id == nl.c.credit_note_id)
        .where(nl.c.invoice_line_id.is_not(None), n.c.status == "issued")
    )
    credited_from_start = credited_lines.where(n.c.issue_date >= period.start)
    # A void's date is taken in the company's time zone: one voided a day before the month
    # (in UTC) cannot fall in it, whatever the zone.
    void_cut = day_start(period.start, timezone) - timedelta(days=1)
    # Lines issued, credited and voided (if at all) before the month: each only adds its
    # amount less its credits to the opening (nothing, if voided), so they come summed.
    settled = sa.and_(
        i.c.issue_date < period.start,
        sa.or_(i.c.voided_at.is_(None), i.c.voided_at < void_cut),
        line.c.id.not_in(credited_from_start),  # one hashed set, not a probe per line
    )
    not_voided = sa.and_(i.c.voided_at.is_(None), i.c.status != "void")
    # Ratable line amounts per entity and currency, for the lines summed in SQL.
    line_amounts = (
        sa.select(
            line.c.id,
            line.c.invoice_id,
            i.c.billing_entity.label("entity"),
            i.c.currency,
            line.c.amount,
        )
        .join(i, i.c.id == line.c.invoice_id)
        .join(prod, prod.c.id == line.c.product_id)
        .where(prod.c.revenue_pattern == "ratable")
    )
    # Of the rest, lines never voided nor credited were issued in the month: they only add to
    # what it billed, so they come summed too; the voided and credited ones are read one by one.
    plain = sa.and_(not_voided, line.c.id.not_in(credited_lines))
    billed_lines = line_amounts.where(i.c.issue_date <= period.end, sa.not_(settled), plain)
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
    opening_lines = line_amounts.where(settled, not_voided)
    opening_credits = (
        sa.select(
            nl.c.id,
            n.c.id.label("credit_note_id"),
            line.c.invoice_id,
            i.c.billing_entity.label("entity"),
            i.c.currency,
            (-nl.c.amount).label("amount"),
        )
        .join(n, n.c.id == nl.c.credit_note_id)
        .join(line, line.c.id == nl.c.invoice_line_id)
        .join(i, i.c.id == line.c.invoice_id)
        .join(prod, prod.c.id == line.c.product_id)
        .where(n.c.status == "issued", prod.c.revenue_pattern == "ratable", settled, not_voided)
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
            sa.not_(settled),
        )
    )
    entries = (
        sa.select(
            e.c.id,
            line.c.invoice_id,
            e.c.period,
            e.c.amount,
            e.c.status,
            i.c.billing_entity.label("entity"),
            i.c.currency,
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
        billed_lines = billed_lines.where(i.c.billing_entity == entity)
        opening_lines = opening_lines.where(i.c.billing_entity == entity)
        opening_credits = opening_credits.where(i.c.billing_entity == entity)
        credits = credits.where(i.c.billing_entity == entity)
        entries = entries.where(i.c.billing_entity == entity)
        earlier_entries = earlier_entries.where(i.c.billing_entity == entity)
    ratable_lines = ratable_lines.where(sa.not_(settled), sa.not_(plain))

    rolls: dict[tuple[str, str], RollForward] = {}

    def roll(key: tuple[str, str]) -> RollForward:
        return rolls.setdefault(key, RollForward(*key))

    left_invoices = left_out.ids("invoice")
    for key, (amount, _) in _sums(
        billing, opening_lines, ("entity", "currency"), [(line.c.invoice_id, left_invoices)]
    ).items():
        roll((key[0], key[1])).opening += amount
    left_credits = [(n.c.id, left_out.ids("credit_note")), (line.c.invoice_id, left_invoices)]
    for key, (amount, _) in _sums(
        billing, opening_credits, ("entity", "currency"), left_credits
    ).items():
        roll((key[0], key[1])).opening += amount
    for key, (amount, _) in _sums(
        billing, billed_lines, ("entity", "currency"), [(line.c.invoice_id, left_invoices)]
    ).items():
        roll((key[0], key[1])).billed += amount
    lines: dict[int, _RatableLine] = {}
    for r in stream_rows(billing, ratable_lines):
        if left_out.has("invoice", r.invoice_id):
            continue
        voided_on = void_date(r.status, r.voided_at, r.issue_date, timezone)
        lines[r.id] = _RatableLine(r.billing_entity, r.currency, r.issue_date, r.amount, voided_on)
    for r in stream_rows(billing, credits):
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
    for key, (amount, _) in _sums(
        billing, earlier_entries, ("entity", "currency"), excluded_entries
    ).items():
        roll((key[0], key[1])).opening -= amount

    months = tuple(add_months(period.start, k) for k in range(1, WATERFALL_MONTHS + 1))
    month_index = {m: k for k, m in enumerate(months)}
    waterfall: dict[str, list[Decimal]] = {}
    recognized: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    journal_entries: dict[tuple[str, str], JournalEntries] = {}
    # The entries of the month and after it, summed per month, entity, currency, family,
    # pattern and status: the month's are recognized revenue (and, ratable, the journals),
    # the later ones (ratable, invoiced by the month's end) its waterfall.
    entry_keys = ("period", "entity", "currency", "product_family", "revenue_pattern", "status")
    for key, (amount, count) in _sums(billing, entries, entry_keys, excluded_entries).items():
        month, entry_entity, currency, family, pattern, status = key
        ratable = pattern == "ratable"
        if month == period.start:
            recognized[(currency, family)] += amount
            if ratable:
                roll((entry_entity, currency)).recognized += amount
                je = journal_entries.setdefault((entry_entity, currency), JournalEntries())
                je.count += count
                je.scheduled += amount
                if status == "recognized":
                    je.recognized += amount
        elif ratable:
            row = waterfall.setdefault(currency, [ZERO] * (WATERFALL_MONTHS + 1))
            row[month_index.get(month, WATERFALL_MONTHS)] += amount

    families = mapping.product_families if mapping else {}
    revenue = tuple(
        RevenueLine(cur, fam, families[fam].revenue_account if fam in families else None, amt)
        for (cur, fam), amt in sorted(recognized.items())
    )
    currencies = {rf.currency for rf in rolls.values()} | set(waterfall)
    return RevenueFigures(
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


def journals(
    state: sa.Engine,
    target: str,
    period: Period,
    entries: dict[tuple[str, str], JournalEntries],
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
