"""Reconciliation checks of revenue recognition, run after each sync for ``finsync status``:
journals balance, recognized to date within billed, deferred revenue not negative at the close,
schedules that add up, and posted revenue equal to what billing recognized (docs/accounting.md).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, tzinfo
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from billing import schema as b
from core.money import is_known_currency, quantum
from mappings import revrec as rr
from sync.revrec import recognized_totals
from sync.state import ledger as ledger_table

KIND = rr.KIND
_ZERO = Decimal(0)


@dataclass(frozen=True)
class CheckResult:
    """One reconciliation check: its name, whether it holds, and what was found."""

    name: str
    ok: bool
    detail: str


def _fmt(items: Sequence[str], more: int) -> str:
    text = "; ".join(items)
    return f"{text}; and {more} more" if more > 0 else text


def _check_balance(state: Connection) -> CheckResult:
    t = ledger_table
    rows = state.execute(
        sa.select(t.c.target, t.c.label, t.c.payload, t.c.synced_payload).where(t.c.kind == KIND)
    )
    checked = 0
    bad: list[str] = []
    for target, label, payload, synced in rows:
        for text, what in ((payload, "queued"), (synced, "sent")):
            if text is None:
                continue
            checked += 1
            debits, credits = rr.journal_totals(json.loads(text))
            if debits != credits:
                bad.append(f"{target} {label} ({what}): debits {debits} != credits {credits}")
    if bad:
        return CheckResult("journal entries balance", False, _fmt(bad[:5], len(bad) - 5))
    return CheckResult("journal entries balance", True, f"{checked} journal payloads balance")


@dataclass
class _Line:
    entity: str
    currency: str
    invoice: str
    line_no: int
    issued: date
    amount: Decimal
    ratable: bool
    voided_on: date | None
    credits: list[tuple[date, Decimal]] = field(default_factory=list)
    recognized: Decimal = _ZERO
    scheduled: Decimal = _ZERO

    def billed(self, on: date | None = None) -> Decimal:
        """The line amount less credits and a void dated on or before ``on`` (None: ever)."""
        if on is not None and self.issued > on:
            return _ZERO
        credited = sum((a for d, a in self.credits if on is None or d <= on), _ZERO)
        if self.voided_on is not None and (on is None or self.voided_on <= on):
            return _ZERO
        return self.amount - credited


def _sums(
    conn: Connection, query: sa.Select[Any], amount: sa.ColumnElement[Any]
) -> dict[tuple[Any, ...], Decimal]:
    """Exact sums of ``amount`` per the columns of ``query``: SUM on PostgreSQL (NUMERIC), here
    on SQLite (whose SUM of text amounts is a float)."""
    group = list(query.selected_columns)
    out: dict[tuple[Any, ...], Decimal] = {}
    if conn.dialect.name == "postgresql":
        rows = conn.execute(query.add_columns(sa.func.sum(amount)).group_by(*group))
    else:
        rows = conn.execute(query.add_columns(amount))
    for *key, value in rows:
        out[tuple(key)] = out.get(tuple(key), _ZERO) + value
    return out


def _billing_lines(
    billing: Connection,
    timezone: tzinfo,
    excluded: Collection[int],
    excluded_invoices: Collection[int] = (),
) -> tuple[dict[int, _Line], date | None]:
    """Every invoice line with its credits, void date and schedule, but those of
    ``excluded_invoices`` or with an ``excluded`` entry; and the close: the last day of the
    latest month with a recognized entry (None before any)."""
    li, inv, rse = b.invoice_lines, b.invoices, b.revenue_schedule_entries
    cnl, cn, p = b.credit_note_lines, b.credit_notes, b.products
    lines: dict[int, _Line] = {}
    query = sa.select(
        li.c.id,
        li.c.invoice_id,
        li.c.line_no,
        li.c.amount,
        inv.c.number,
        inv.c.status,
        inv.c.issue_date,
        inv.c.voided_at,
        inv.c.billing_entity,
        inv.c.currency,
        p.c.revenue_pattern,
    ).select_from(li.join(inv, inv.c.id == li.c.invoice_id).join(p, p.c.id == li.c.product_id))
    for r in billing.execute(query):
        if r.invoice_id in excluded_invoices:
            continue
        if r.voided_at is not None:
            voided_on: date | None = r.voided_at.astimezone(timezone).date()
        else:
            voided_on = r.issue_date if r.status == "void" else None
        lines[r.id] = _Line(
            r.billing_entity,
            r.currency,
            r.number,
            r.line_no,
            r.issue_date,
            r.amount,
            r.revenue_pattern == "ratable",
            voided_on,
        )
    credits = (
        sa.select(cnl.c.invoice_line_id, cn.c.issue_date)
        .select_from(cnl.join(cn, cn.c.id == cnl.c.credit_note_id))
        .where(cn.c.status == "issued", cnl.c.invoice_line_id.is_not(None))
    )
    for (line_id, day), amount in _sums(billing, credits, cnl.c.amount).items():
        if line_id in lines:
            lines[line_id].credits.append((day, amount))
    if excluded:
        query = sa.select(rse.c.invoice_line_id).where(rse.c.id.in_(sorted(excluded)))
        for line_id in billing.execute(query).scalars():
            lines.pop(line_id, None)
    entries = sa.select(rse.c.invoice_line_id, rse.c.status == "recognized")
    for (line_id, recognized), amount in _sums(billing, entries, rse.c.amount).items():
        line = lines.get(line_id)
        if line is None:
            continue
        if recognized:
            line.recognized += amount
        else:
            line.scheduled += amount
    recognized_periods = sa.select(sa.func.max(rse.c.period)).where(rse.c.status == "recognized")
    if excluded:
        recognized_periods = recognized_periods.where(rse.c.id.not_in(sorted(excluded)))
    last = billing.execute(recognized_periods).scalar()
    return lines, None if last is None else rr.month_end(rr.month_start(last))


def _money(amount: Decimal, currency: str) -> str:
    """``amount`` at its currency's scale (``1420.00``, not ``1420``)."""
    return str(amount.quantize(quantum(currency))) if is_known_currency(currency) else str(amount)


def _check_lines(lines: Mapping[int, _Line], close: date | None) -> CheckResult:
    over = [
        f"invoice {li.invoice} line {li.line_no}: recognized {_money(li.recognized, li.currency)}"
        f" > billed {_money(li.billed(close), li.currency)} at the close"
        for _, li in sorted(lines.items())
        if li.ratable and li.recognized > li.billed(close)
    ]
    name = "recognized to date within billed"
    if over:
        return CheckResult(name, False, _fmt(over[:5], len(over) - 5))
    at = f" at the close {close}" if close else ""
    ratable = sum(1 for li in lines.values() if li.ratable)
    return CheckResult(name, True, f"{ratable} ratable invoice lines{at}")


def _groups(lines: Mapping[int, _Line], close: date | None) -> dict[tuple[str, str], list[Decimal]]:
    """Per (entity, currency) of ratable lines: billed at the close, billed now, recognized,
    scheduled."""
    groups: dict[tuple[str, str], list[Decimal]] = {}
    for li in lines.values():
        if not li.ratable:
            continue
        g = groups.setdefault((li.entity, li.currency), [_ZERO, _ZERO, _ZERO, _ZERO])
        g[0] += li.billed(close)
        g[1] += li.billed()
        g[2] += li.recognized
        g[3] += li.scheduled
    return groups


def _check_deferred(lines: Mapping[int, _Line], close: date | None) -> CheckResult:
    name = "deferred revenue at the close is not negative"
    groups = _groups(lines, close)
    bad = [
        f"{entity} {currency}: deferred {_money(billed - recognized, currency)} = billed "
        f"{_money(billed, currency)} - recognized {_money(recognized, currency)}"
        for (entity, currency), (billed, _, recognized, _) in sorted(groups.items())
        if billed - recognized < 0
    ]
    if bad:
        return CheckResult(name, False, _fmt(bad[:5], len(bad) - 5))
    deferred = ", ".join(
        f"{entity} {currency} {_money(billed - recognized, currency)}"
        for (entity, currency), (billed, _, recognized, _) in sorted(groups.items())
    )
    pending = ", ".join(
        f"{entity} {currency} {_money(now - billed, currency)}"
        for (entity, currency), (billed, now, _, _) in sorted(groups.items())
        if now != billed
    )
    detail = f"deferred at the close {close}: {deferred or 'none'}"
    if pending:
        detail += f"; pending reversals (credits, voids and new invoices since): {pending}"
    return CheckResult(name, True, detail)


def _check_schedules(lines: Mapping[int, _Line]) -> CheckResult:
    name = "schedules add up"
    bad = [
        f"{entity} {currency}: scheduled {_money(scheduled, currency)} != billed "
        f"{_money(now, currency)} - recognized {_money(recognized, currency)}"
        for (entity, currency), (_, now, recognized, scheduled) in sorted(
            _groups(lines, None).items()
        )
        if scheduled != now - recognized
    ]
    if bad:
        return CheckResult(name, False, _fmt(bad[:5], len(bad) - 5))
    return CheckResult(name, True, "scheduled entries = billed - recognized per entity")


def _check_posted(billing: Connection, state: Connection, excluded: Collection[int]) -> CheckResult:
    recognized: dict[tuple[str, str], Decimal] = {}
    for total in recognized_totals(billing, excluded=excluded):
        key = (total.key.entity, total.key.currency)
        recognized[key] = recognized.get(key, _ZERO) + total.amount
    t = ledger_table
    posted: dict[tuple[str, str, str], Decimal] = {}
    targets: set[str] = set()
    for target, source_id, synced in state.execute(
        sa.select(t.c.target, t.c.source_id, t.c.synced_payload).where(t.c.kind == KIND)
    ):
        targets.add(target)
        if synced is None:
            continue
        journal = rr.JournalKey.parse(source_id)
        net = sum(rr.posted_lines(json.loads(synced)).values(), _ZERO)
        index = (target, journal.entity, journal.currency)
        posted[index] = posted.get(index, _ZERO) + net
    name = "posted revenue = recognized revenue"
    if not targets:
        return CheckResult(name, True, "no revenue journals in the ledger yet")
    bad = []
    for target in sorted(targets):
        for entity, currency in sorted(set(recognized) | {(e, c) for (_, e, c) in posted}):
            want = recognized.get((entity, currency), _ZERO)
            have = posted.get((target, entity, currency), _ZERO)
            if want != have:
                bad.append(
                    f"{target} {entity} {currency}: posted {have}, billing recognized {want}"
                )
    if bad:
        return CheckResult(name, False, _fmt(bad[:5], len(bad) - 5))
    return CheckResult(name, True, f"{len(recognized)} entity/currency totals match")


def revrec_checks(
    billing_engine: Engine,
    state_engine: Engine,
    excluded_entries: Collection[int] = (),
    *,
    excluded_invoices: Collection[int] = (),
    timezone: tzinfo = UTC,
) -> list[CheckResult]:
    """Reconciliation checks of revenue recognition, for ``finsync status`` after each sync.

    As docs/accounting.md says; *the close* is the last day of the latest month billing has
    recognized, and void dates are taken in ``timezone`` (the company's). ``excluded_entries``
    and ``excluded_invoices`` are what billing validation rejected: those entries are never
    posted, and the lines of those invoices, or with one of those entries, are left out of the
    line checks (the rejection says what to fix):

    - every journal payload in the ledger (queued and sent) balances;
    - for every ratable invoice line, revenue recognized to date does not exceed what was billed
      at the close (the line amount less credit notes and a void dated on or before it);
      point-in-time lines are recognized, and credited, by the invoices and credit notes;
    - per billing entity and currency, deferred revenue of ratable lines at the close (billed
      then less recognized) is not negative; credits and voids since are shown as pending;
    - per billing entity and currency, the ratable entries still scheduled equal billed now
      minus recognized (the schedules add up);
    - per target, entity and currency, the revenue posted by synced journals equals what
      billing recognized for ratable products (differs while journals wait to be sent).
    """
    with billing_engine.connect() as billing, state_engine.connect() as state:
        lines, close = _billing_lines(billing, timezone, excluded_entries, excluded_invoices)
        return [
            _check_balance(state),
            _check_lines(lines, close),
            _check_deferred(lines, close),
            _check_schedules(lines),
            _check_posted(billing, state, excluded_entries),
        ]
