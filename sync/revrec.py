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

``sync.revrec_checks`` compares billing's schedules with what was posted, for ``finsync status``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from billing import schema as b
from core.documents import Document
from core.errors import MappingError
from core.periods import AccountingPeriod
from finsync.config import Config, TargetConfig
from mappings import revrec as rr
from mappings.tables import MappingTables
from sync import ledger
from sync.extract import Cursor

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
