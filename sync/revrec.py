"""Revenue recognition to the general ledger: plan, enqueue and check the monthly journals.

Billing's kinds are synced per billing row; revenue is aggregated instead. ``enqueue_journals``
reads the recognized schedule entries of the periods touched since the last sync (every period
on the first or a ``full`` sync), sums them per (period, billing entity, currency, product
family), maps them with ``mappings.revrec`` and puts the journals into the ledger, in the same
transaction that moves the ``revenue`` cursor. The ledger's payload hash makes an unchanged
journal a no-op.

Periods the ERP has closed are read through the connector (``accounting_periods()``, when it has
one). A journal posted into a period that is now closed is never rewritten: the difference goes
into an adjustment entry in the current open month (company time zone). A journal not posted yet
whose period is closed follows the target's ``closed_period_policy``: ``next_open`` (default)
or ``fail``.

``revrec_checks`` compares billing's schedules with what was posted, for ``finsync status``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any, Protocol, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from billing import schema as b
from core.documents import Document
from core.errors import MappingError
from core.money import is_known_currency, quantum
from core.periods import AccountingPeriod
from finsync.config import Config, TargetConfig
from mappings import revrec as rr
from mappings.tables import MappingTables
from sync import ledger
from sync.extract import Cursor
from sync.state import ledger as ledger_table

KIND = rr.KIND
_ZERO = Decimal(0)


class JournalContext(Protocol):
    """What planning journals needs of the sync engine (``sync.engine.SyncEngine`` is one):
    the configuration, both databases, the mapping tables, each target's connector (for its
    accounting periods) and closed-period policy.
    """

    @property
    def config(self) -> Config:
        """The configuration (look-back, time zone)."""
        ...

    @property
    def billing(self) -> Engine:
        """The billing database (read-only)."""
        ...

    @property
    def state(self) -> Engine:
        """The state store (ledger and cursors)."""
        ...

    @property
    def tables(self) -> MappingTables:
        """The mapping tables now in use."""
        ...

    @property
    def closed_period_policies(self) -> Mapping[str, rr.Policy]:
        """Each revenue target's closed-period policy, by target name."""
        ...

    def connector(self, target: str) -> object:
        """The connector of ``target`` (asked for its ``accounting_periods()`` if it has them)."""
        ...


def closed_period_policy(target: TargetConfig) -> rr.Policy:
    """The target's ``closed_period_policy`` (``next_open`` by default). Raises ConfigError.

    Read when the engine starts, before the connector checks its section for unknown keys.
    """
    return cast(
        rr.Policy, target.options.str("closed_period_policy", "next_open", choices=rr.POLICIES)
    )


@dataclass(frozen=True)
class JournalRecord:
    """What the ledger files about one journal document (``ledger.AggregateRecord``)."""

    id: str
    label: str
    document_date: date | None
    updated_at: datetime | None = None


# -- reading billing -------------------------------------------------------------------------


def _recognized_query(
    periods: Collection[date] | None, excluded: Collection[int] = ()
) -> tuple[sa.Select[Any], list[Any]]:
    rse, li, inv, p = b.revenue_schedule_entries, b.invoice_lines, b.invoices, b.products
    group = [rse.c.period, inv.c.billing_entity, inv.c.currency, p.c.product_family]
    query = (
        sa.select(*group)
        .select_from(
            rse.join(li, li.c.id == rse.c.invoice_line_id)
            .join(inv, inv.c.id == li.c.invoice_id)
            .join(p, p.c.id == li.c.product_id)
        )
        .where(rse.c.status == "recognized", p.c.revenue_pattern == "ratable")
    )
    if periods is not None:
        query = query.where(rse.c.period.in_(sorted(periods)))
    if excluded:
        query = query.where(rse.c.id.not_in(sorted(excluded)))
    return query, group


def recognized_totals(
    conn: Connection, periods: Collection[date] | None = None, excluded: Collection[int] = ()
) -> list[rr.RevenueTotal]:
    """Recognized revenue of ratable products per journal and product family, exactly.

    ``periods`` (first days of months) narrows the read; None reads every period. ``excluded``
    are schedule entries billing validation rejected: they are never posted. PostgreSQL
    sums NUMERIC in the database; SQLite stores amounts as text and its SUM is a float, so
    there the rows are summed here as Decimals.
    """
    if periods is not None and not periods:
        return []
    query, group = _recognized_query(periods, excluded)
    amount = b.revenue_schedule_entries.c.amount
    sums: dict[tuple[rr.JournalKey, str], Decimal] = {}
    if conn.dialect.name == "postgresql":
        rows = conn.execute(query.add_columns(sa.func.sum(amount)).group_by(*group))
    else:
        rows = conn.execute(query.add_columns(amount))
    for period, entity, currency, family, value in rows:
        key = (rr.JournalKey(rr.month_start(period), entity, currency), family)
        sums[key] = sums.get(key, _ZERO) + value
    return sorted(rr.RevenueTotal(k, family, v) for (k, family), v in sums.items())


def _changed_periods(conn: Connection, since: Cursor | None, lookback: timedelta) -> set[date]:
    rse = b.revenue_schedule_entries
    query = sa.select(rse.c.period).distinct()
    if since is not None:
        position = sa.tuple_(
            sa.literal(since.updated_at - lookback, rse.c.updated_at.type),
            sa.literal(0, sa.BigInteger()),
        )
        query = query.where(sa.tuple_(rse.c.updated_at, rse.c.id) > position)
    return {rr.month_start(p) for p in conn.execute(query).scalars()}


def _latest(conn: Connection) -> Cursor | None:
    rse = b.revenue_schedule_entries
    row = conn.execute(
        sa.select(rse.c.updated_at, rse.c.id)
        .order_by(rse.c.updated_at.desc(), rse.c.id.desc())
        .limit(1)
    ).first()
    return Cursor(row.updated_at, row.id) if row else None


# -- planning --------------------------------------------------------------------------------


def _posting_period(
    payload: Mapping[str, Any], periods: Sequence[AccountingPeriod]
) -> AccountingPeriod | None:
    """The period a sent journal posted into: its postingPeriod, else the one holding tranDate."""
    if "postingPeriod" in payload:
        wanted = payload["postingPeriod"].get("internalId")
        return next((p for p in periods if p.internal_id == wanted), None)
    day = date.fromisoformat(payload["tranDate"])
    return next((p for p in periods if p.contains(day)), None)


def _frozen(row: Mapping[Any, Any] | None, periods: Sequence[AccountingPeriod] | None) -> bool:
    """True when the target holds this journal in a period that is closed now."""
    if row is None or row["synced_payload"] is None or periods is None:
        return False
    period = _posting_period(json.loads(row["synced_payload"]), periods)
    return period is not None and period.closed


def _current_lines(row: Mapping[Any, Any]) -> dict[rr.LineKey, Decimal]:
    """What a ledger row's document posts (or will post): its payload, else what was sent."""
    text = row["payload"] or row["synced_payload"]
    return rr.posted_lines(json.loads(text)) if text else {}


def _document_of(key: rr.JournalKey, source_id: str, label: str, payload_text: str) -> Document:
    return Document(
        target=rr.TARGET,
        kind=KIND,
        source_id=source_id,
        external_id=f"finsync:je:{source_id}",
        record_type="journalEntry",
        label=label,
        payload=json.loads(payload_text),
    )


def _add_months(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def plan_journals(
    keys: Iterable[rr.JournalKey],
    totals: Iterable[rr.RevenueTotal],
    rows: Mapping[str, Mapping[Any, Any]],
    tables: MappingTables,
    *,
    periods: Sequence[AccountingPeriod] | None,
    policy: rr.Policy,
    today: date,
) -> list[ledger.MapOutcome]:
    """The ledger outcomes for ``keys``: journals, adjustments, or mapping failures.

    ``rows`` are the target's revenue ledger rows by source id; ``today`` is the company's date.
    A journal whose posting period is closed keeps what was sent; the difference from what
    billing recognizes now goes into an adjustment in the first month from ``today`` on whose
    adjustment is not itself closed.
    """
    by_key: dict[rr.JournalKey, list[rr.RevenueTotal]] = {}
    for total in totals:
        by_key.setdefault(total.key, []).append(total)
    outcomes: list[ledger.MapOutcome] = []
    for key in sorted(set(keys)):
        original = rows.get(key.source_id)
        prefix = f"{key.source_id}:adj:"
        adjustments = {s: r for s, r in rows.items() if s.startswith(prefix)}
        try:
            desired = rr.journal_lines(key, by_key.get(key, ()), tables)
        except MappingError as exc:
            desired_error: MappingError | None = exc
            desired = {}
        else:
            desired_error = None
        if not _frozen(original, periods):
            fixed = [_current_lines(r) for r in adjustments.values()]
            record = JournalRecord(key.source_id, key.label, key.last_day)
            if desired_error is not None:
                outcomes.append(ledger.MapOutcome(record, desired_error))
                continue
            previous = _current_lines(original) if original is not None else {}
            try:
                document = rr.map_journal(
                    key,
                    rr.subtract(desired, *fixed),
                    tables,
                    periods=periods,
                    policy=policy,
                    previous=previous,
                )
            except MappingError as exc:
                outcomes.append(ledger.MapOutcome(record, exc))
                continue
            if document is not None:
                outcomes.append(ledger.MapOutcome(record, document))
            continue
        assert original is not None
        sent = original["synced_payload"]
        outcomes.append(
            ledger.MapOutcome(
                JournalRecord(key.source_id, key.label, key.last_day),
                _document_of(key, key.source_id, key.label, sent),
            )
        )
        month = rr.month_start(today)
        while _frozen(rows.get(rr.adjustment_source_id(key, month)), periods):
            month = _add_months(month, 1)
        adj_id = rr.adjustment_source_id(key, month)
        adj_label = f"{key.label} adjustment {month:%Y-%m}"
        adj_record = JournalRecord(adj_id, adj_label, rr.month_end(month))
        if desired_error is not None:
            outcomes.append(
                ledger.MapOutcome(adj_record, MappingError(adj_label, desired_error.problems))
            )
            continue
        fixed = [rr.posted_lines(json.loads(sent))]
        fixed += [_current_lines(r) for s, r in adjustments.items() if s != adj_id]
        existing = adjustments.get(adj_id)
        try:
            document = rr.map_journal(
                key,
                rr.subtract(desired, *fixed),
                tables,
                periods=periods,
                previous=_current_lines(existing) if existing is not None else {},
                adjustment_in=month,
            )
        except MappingError as exc:
            outcomes.append(ledger.MapOutcome(adj_record, exc))
            continue
        if document is not None:
            outcomes.append(ledger.MapOutcome(adj_record, document))
    return outcomes


def _periods_of(connector: object) -> list[AccountingPeriod] | None:
    """The connector's accounting periods, or None when its system has none to tell."""
    reader = getattr(connector, "accounting_periods", None)
    return None if reader is None else list(reader())


def enqueue_journals(
    engine: JournalContext,
    target: str,
    *,
    run_id: int | None,
    now: datetime,
    dry_run: bool = False,
    full: bool = False,
    excluded_entries: Callable[[], Collection[int]] = frozenset,
    validated: Callable[[], bool] = lambda: True,
) -> ledger.EnqueueCounts:
    """Recompute the journals of every period touched since the last sync and enqueue them.

    Touched: a recognized or scheduled entry changed since the ``revenue`` cursor (minus the
    lookback), or a journal of that period is not synced yet (so a period closed meanwhile is
    planned again under the policy). ``full`` (or no cursor yet) recomputes every period.
    ``dry_run`` plans and counts but writes nothing. Raises the connector's errors when the
    accounting periods cannot be read.

    ``excluded_entries`` gives the schedule entries billing validation rejected (a pass over
    billing); until ``validated()`` says it ran, journals are planned without exclusions and
    validation runs only when those differ from what the ledger holds.
    """
    lookback = timedelta(seconds=engine.config.sync.lookback_seconds)
    with engine.state.connect() as state:
        since = None if full else ledger.load_cursor(state, target, KIND)
        rows = {r["source_id"]: r for r in ledger.rows_of_kind(state, target, KIND)}
    with engine.billing.connect() as billing:
        latest = _latest(billing)
        scope: set[date] | None = None
        if since is not None:
            scope = _changed_periods(billing, since, lookback)
            scope |= {
                rr.JournalKey.parse(s).period for s, r in rows.items() if r["status"] != "synced"
            }
    judged = validated()
    outcomes = _plan(engine, target, rows, scope, excluded_entries() if judged else (), now)
    while True:
        with engine.state.connect() as conn:
            transaction = conn.begin()
            try:
                if not judged and not ledger.holds_unchanged(
                    conn, target=target, kind=KIND, outcomes=outcomes
                ):
                    transaction.rollback()
                    judged = True
                    outcomes = _plan(engine, target, rows, scope, excluded_entries(), now)
                    continue
                counts = ledger.enqueue(
                    conn, target=target, kind=KIND, outcomes=outcomes, run_id=run_id, now=now
                )
                if dry_run:
                    transaction.rollback()
                    return counts
                if latest is not None:
                    ledger.save_cursor(conn, target, KIND, latest, now)
                transaction.commit()
            except BaseException:
                transaction.rollback()
                raise
        return counts


def _plan(
    engine: JournalContext,
    target: str,
    rows: Mapping[str, Mapping[Any, Any]],
    scope: set[date] | None,
    excluded: Collection[int],
    now: datetime,
) -> list[ledger.MapOutcome]:
    """The journals of the periods in ``scope`` (None: every period), from billing's sums."""
    totals: list[rr.RevenueTotal] = []
    if scope is None or scope:
        with engine.billing.connect() as billing:
            totals = recognized_totals(billing, scope, excluded)
    keys = {t.key for t in totals}
    keys |= {
        k for k in (rr.JournalKey.parse(s) for s in rows) if scope is None or k.period in scope
    }
    if not keys:
        return []
    return plan_journals(
        keys,
        totals,
        rows,
        engine.tables,
        periods=_periods_of(engine.connector(target)),
        policy=engine.closed_period_policies.get(target, "next_open"),
        today=now.astimezone(engine.config.timezone).date(),
    )


# -- checks ----------------------------------------------------------------------------------


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
