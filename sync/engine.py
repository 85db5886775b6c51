"""The sync engine: extract -> map -> enqueue -> push, per target, and re-syncs on demand.

``SyncEngine`` owns the two database engines, the mapping tables and the connectors of one
configuration. The CLI, the scheduler and the HTTP API all call it; it prints nothing.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, RowMapping

from billing import schema as billing_schema
from billing.records import KIND_ORDER, Payment, SourceRecord
from billing.validation import Verdicts
from connectors import build_connector
from connectors.base import Connector
from core.documents import Document
from core.errors import ConfigError, ConnectorError, MappingError, Problem
from finsync.config import Config, TargetConfig
from finsync.db import make_engine, missing_tables, probe, utcnow
from mappings.tables import MappingTables, load_mapping_file
from sync import ledger, revrec, revrec_checks
from sync.diff import Change, diff_payloads
from sync.extract import BillingReader, Page
from sync.push import PushCounts, Pusher
from sync.revrec_checks import CheckResult
from sync.state import audit_log, ledger_events, runs
from sync.state import ledger as ledger_table
from sync.state import metadata as state_metadata
from sync.status import due_count, last_checks, needs_attention
from sync.targets import MAPPINGS, TargetMapping, connector_tables
from sync.verdicts import RunVerdicts

Progress = Callable[[str, int], None]
#: After enqueuing this many new rows, refresh the planner's statistics of the ledger: later
#: pages and the push that follows must not be planned as if the ledger were still empty.
#: Within one extract the next refresh waits until the rows enqueued have doubled, so a first
#: sync of n records pays for log2(n / 10,000) ANALYZEs, not n / 10,000.
_ANALYZE_AFTER_NEW_ROWS = 10_000
#: While billing validation runs in a worker, at most this many mapped pages wait for its
#: verdicts; then extraction waits for the worker (memory stays bounded).
_WAITING_PAGES = 50
#: How ledger labels name documents (see the ``label`` properties of billing.records).
_LABEL_PREFIXES = ("customer", "invoice", "credit note", "payment", "refund")


@dataclass
class TargetSummary:
    """What one sync did for one target."""

    target: str
    extracted: ledger.EnqueueCounts = field(default_factory=ledger.EnqueueCounts)
    pushed: PushCounts = field(default_factory=PushCounts)
    error: str | None = None


@dataclass
class SyncSummary:
    """What one sync run did, per target."""

    run_id: int | None
    dry_run: bool
    targets: list[TargetSummary] = field(default_factory=list)
    #: Revenue-recognition checks run after the push, when revenue was synced.
    checks: list[CheckResult] = field(default_factory=list)
    #: The run was asked to stop before it was through (the service is shutting down).
    stopped: bool = False
    #: Records of these targets that need someone: failed, dead, retrying, or waiting behind
    #: one of those (``finsync status`` lists them).
    attention: int = 0
    #: A dry run's documents that would be sent or would fail: target, kind, label, status
    #: (``pending``, ``synced`` when the target already holds it, ``failed``), last_error.
    preview: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no target stopped with an error."""
        return all(t.error is None for t in self.targets)


@dataclass(frozen=True)
class Selection:
    """Which ledger records a re-sync takes. Empty fields select everything."""

    targets: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    ledger_ids: tuple[int, ...] = ()
    numbers: tuple[str, ...] = ()  # document numbers / references / account numbers
    customer: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    statuses: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        """True when nothing narrows the selection."""
        return not any(
            (
                self.targets,
                self.kinds,
                self.ledger_ids,
                self.numbers,
                self.customer,
                self.date_from,
                self.date_to,
                self.statuses,
            )
        )


@dataclass(frozen=True)
class ResyncItem:
    """One selected record: what would be (or was) queued, and how it differs from the last send."""

    ledger_id: int
    target: str
    kind: str
    label: str
    status_before: str
    outcome: str  # 'queued', 'mapping failed', 'missing in billing'
    message: str | None
    changes: tuple[Change, ...]


@dataclass
class ResyncResult:
    """A re-sync request's outcome."""

    items: list[ResyncItem]
    audit_id: int | None
    dry_run: bool
    #: The run (kind ``resync``) that records it; None for a dry run.
    run_id: int | None = None

    @property
    def queued(self) -> int:
        """How many records were (or would be) queued."""
        return sum(1 for i in self.items if i.outcome == "queued")


def _requeue_counts(items: Sequence[ResyncItem]) -> dict[str, dict[str, dict[str, int]]]:
    """A re-sync run's counts: per target, how many records were selected and what became of
    them (``queued``, ``mapping failed``, ``missing in billing``)."""
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for item in items:
        requeued = counts.setdefault(item.target, {}).setdefault(
            "requeued", {"selected": 0, "queued": 0, "mapping failed": 0, "missing in billing": 0}
        )
        requeued["selected"] += 1
        requeued[item.outcome] = requeued.get(item.outcome, 0) + 1
    return counts


def check_billing(billing: Engine) -> None:
    """The billing database answers and holds the contract's tables (or views of their names).

    Raises UnavailableError or ConfigError naming ``billing.url``.
    """
    probe(billing, "billing.url")
    absent = missing_tables(billing, sorted(billing_schema.metadata.tables))
    if absent:
        raise ConfigError(
            "billing.url",
            f"the billing database has no {', '.join(absent)}: point billing.url at the "
            "billing database, or create views of these names (docs/billing-contract.md)",
        )


def check_state(state: Engine) -> None:
    """The state store answers and ``finsync init`` has created it.

    Raises UnavailableError or ConfigError naming ``state.url``.
    """
    probe(state, "state.url")
    absent = missing_tables(state, sorted(state_metadata.tables))
    if ledger_table.name in absent:
        raise ConfigError("state.url", "the state store is not initialised: run `finsync init`")
    if absent:
        raise ConfigError(
            "state.url",
            f"the state store has no {', '.join(absent)} (an older finsync created it): run "
            "`finsync init` to upgrade it",
        )


def default_actor() -> str:
    """Who runs this process, for the audit log."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def map_record(
    mapping: TargetMapping,
    record: SourceRecord,
    page: Page,
    tables: MappingTables,
    verdicts: Verdicts | None = None,
) -> Document | MappingError | None:
    """Map one record; a mapping bug on odd data quarantines the record instead of the run.

    A record ``verdicts`` rejects is quarantined with validation's message, on every target
    alike, before any mapping sees it.
    """
    if verdicts is not None and page.kind != "revenue":
        rejection = verdicts.rejected(page.kind, record.id)
        if rejection is not None:
            return MappingError(rejection.label, rejection.problems)
    try:
        return mapping.map(record, page, tables)
    except MappingError as exc:
        return exc
    except (ArithmeticError, KeyError, TypeError, ValueError, AttributeError) as exc:
        return MappingError(
            record.label, [Problem("record", f"cannot be mapped ({type(exc).__name__}: {exc})")]
        )


def judged(
    kind: str,
    mapped: Sequence[tuple[SourceRecord, Document | MappingError | None]],
    verdicts: Verdicts | None,
) -> list[ledger.MapOutcome]:
    """What to enqueue for mapped records of ``kind``: a record ``verdicts`` rejects is
    quarantined with validation's message; a record the target takes no document for is left
    out. ``verdicts=None`` judges by the mapping alone."""
    outcomes = []
    for record, result in mapped:
        rejection = verdicts.rejected(kind, record.id) if verdicts is not None else None
        if rejection is not None:
            result = MappingError(rejection.label, rejection.problems)
        if result is not None:
            outcomes.append(ledger.MapOutcome(record, result))
    return outcomes


def _without_unsent_failures(
    conn: Connection, target: str, kind: str, outcomes: list[ledger.MapOutcome]
) -> list[ledger.MapOutcome]:
    """Leave out payments that failed or were reversed before ``target`` ever received them:
    there is nothing to reverse, so nothing is sent (one synced before still gets its void)."""
    if kind != "payment":
        return outcomes
    never_received = [
        str(o.record.id)
        for o in outcomes
        if isinstance(o.record, Payment)
        and o.record.status in ("failed", "reversed")
        and isinstance(o.result, Document)
        and o.result.operation == "void"
    ]
    if not never_received:
        return outcomes
    received = ledger.withdraw_unsent(conn, target=target, kind=kind, source_ids=never_received)
    dropped = set(never_received) - received
    return [o for o in outcomes if str(o.record.id) not in dropped]


def _touched(
    conn: Connection, target: str, kind: str, outcomes: list[ledger.MapOutcome], now: datetime
) -> list[dict[str, Any]]:
    """The ledger rows an enqueue at ``now`` wrote: what a dry run would send or fail."""
    t = ledger_table
    query = (
        sa.select(t.c.target, t.c.kind, t.c.label, t.c.status, t.c.last_error)
        .where(
            t.c.target == target,
            t.c.kind == kind,
            t.c.source_id.in_([str(o.record.id) for o in outcomes]),
            t.c.updated_at == now,
        )
        .order_by(t.c.id)
    )
    return [dict(r) for r in conn.execute(query).mappings()]


class SyncEngine:
    """Runs syncs and re-syncs for one configuration."""

    def __init__(
        self,
        config: Config,
        *,
        connectors: Mapping[str, Connector] | None = None,
        clock: Callable[[], datetime] = utcnow,
        actor: str | None = None,
        billing: Engine | None = None,
        state: Engine | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.actor = actor or default_actor()
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.billing = billing or make_engine(config.billing_url, key="billing.url", read_only=True)
        self.state = state or make_engine(config.state_url, key="state.url")
        self.tables = load_mapping_file(config.mapping_file)
        self._targets = {name: t for name, t in config.targets.items() if t.enabled}
        self._mappings = {name: self._mapping_of(t) for name, t in self._targets.items()}
        # revrec: read before a connector validates its section (which refuses unknown keys).
        self.closed_period_policies = {
            name: revrec.closed_period_policy(t)
            for name, t in self._targets.items()
            if "revenue" in self._mappings[name].kinds
        }
        self._connectors: dict[str, Connector] = dict(connectors or {})

    def mapping_for(self, target: str) -> TargetMapping | None:
        """The document mapping of an enabled target, or None if it is not enabled."""
        return self._mappings.get(target)

    def reload_mapping(self) -> MappingTables:
        """Read the mapping file again (an admin fixed it); raises ConfigError, keeping the old."""
        tables = load_mapping_file(self.config.mapping_file)
        for connector in self._connectors.values():
            check_mapping = getattr(connector, "check_mapping", None)
            if check_mapping is not None:
                check_mapping(connector_tables(connector.system, tables))
        self.tables = tables
        return self.tables

    @staticmethod
    def _mapping_of(target: TargetConfig) -> TargetMapping:
        default = "netsuite" if target.system == "scripted" else target.system
        name = target.options.str("mapping", default, choices=tuple(MAPPINGS))
        return MAPPINGS[name]

    # -- setup -------------------------------------------------------------------------------

    def target_names(self, only: Iterable[str] | None = None) -> list[str]:
        """Enabled targets, optionally narrowed; an unknown name is a ConfigError."""
        names = list(self._targets)
        if only:
            wanted = list(only)
            for name in wanted:
                if name not in self._targets:
                    raise ConfigError(
                        "--target",
                        f"no enabled target named {name!r}; "
                        f"configured: {', '.join(names) or 'none'}",
                    )
            names = [n for n in names if n in wanted]
        return names

    def connector(self, target: str) -> Connector:
        """The connector of ``target``, built (and its settings validated) on first use."""
        if target not in self._connectors:
            connector = build_connector(self._targets[target], state_url=self.config.state_url)
            # Connectors that can check the mapping against the system's own data do it now.
            check_mapping = getattr(connector, "check_mapping", None)
            if check_mapping is not None:
                check_mapping(connector_tables(connector.system, self.tables))
            self._connectors[target] = connector
        return self._connectors[target]

    def check(self, *, connectors: bool = True) -> None:
        """Fail at start, with one line naming the setting: every enabled target's connector
        settings are valid (unless ``connectors`` is false: work that only queues needs no
        target), both databases answer, billing has the contract's tables, the state store is
        initialised."""
        if connectors:
            for name in self._targets:
                self.connector(name)
        check_billing(self.billing)
        check_state(self.state)

    def _retried(self, target: str) -> int:
        """Requests the target's connector retried inside its calls so far."""
        return int(getattr(self.connector(target), "retried", 0))

    def kinds_for(self, target: str, only: Iterable[str] | None = None) -> list[str]:
        """The kinds ``target`` takes, in push order, limited by config and ``only``."""
        allowed = set(self._mappings[target].kinds) & set(self.config.sync.kinds)
        if only:
            allowed &= set(only)
        return [k for k in KIND_ORDER if k in allowed]

    def close(self) -> None:
        """Close connectors and database pools."""
        for connector in self._connectors.values():
            connector.close()
        self.billing.dispose()
        self.state.dispose()

    # -- runs --------------------------------------------------------------------------------

    def _start_run(self, kind: str, target: str | None) -> int:
        with self.state.begin() as conn:
            return self._insert_run(conn, kind, target, self.actor, self.clock())

    @staticmethod
    def _insert_run(
        conn: Connection, kind: str, target: str | None, actor: str, now: datetime
    ) -> int:
        result = conn.execute(
            runs.insert().values(
                kind=kind, target=target, actor=actor, status="running", started_at=now, counts="{}"
            )
        )
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def _finish_run(self, run_id: int, summary: SyncSummary) -> None:
        counts: dict[str, Any] = {
            t.target: {"extracted": asdict(t.extracted), "pushed": asdict(t.pushed)}
            for t in summary.targets
        }
        if summary.checks:
            counts["checks"] = [asdict(c) for c in summary.checks]
        errors = "; ".join(f"{t.target}: {t.error}" for t in summary.targets if t.error)
        with self.state.begin() as conn:
            conn.execute(
                runs.update()
                .where(runs.c.id == run_id)
                .values(
                    status="stopped" if summary.stopped else ("ok" if summary.ok else "failed"),
                    finished_at=self.clock(),
                    counts=json.dumps(counts, sort_keys=True),
                    error=errors or None,
                )
            )

    def sync(
        self,
        *,
        targets: Iterable[str] | None = None,
        kinds: Iterable[str] | None = None,
        dry_run: bool = False,
        full: bool = False,
        progress: Progress | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> SyncSummary:
        """Extract every new or changed record and push what is due, per target.

        ``dry_run`` maps and compares with the ledger but writes nothing and sends nothing.
        ``full`` re-reads every record instead of starting from the cursor. ``should_stop``
        ends the run early between batches (the run is recorded as ``stopped``).
        """
        stop = should_stop or (lambda: False)
        names = self.target_names(targets)
        verdicts = self.run_verdicts()
        kinds = list(kinds) if kinds else None
        run_id = None if dry_run else self._start_run("sync", ",".join(names))
        summary = SyncSummary(run_id=run_id, dry_run=dry_run)
        for name in names:
            if stop():
                summary.stopped = True
                break
            target_summary = TargetSummary(name)
            summary.targets.append(target_summary)
            target_kinds = self.kinds_for(name, kinds)
            retried_before = self._retried(name)
            try:
                target_summary.extracted = self.extract(
                    name,
                    target_kinds,
                    run_id=run_id,
                    dry_run=dry_run,
                    full=full,
                    progress=progress,
                    verdicts=verdicts,
                    preview=summary.preview if dry_run else None,
                )
                if not dry_run:
                    target_summary.pushed = self.push(
                        name, target_kinds, run_id=run_id, progress=progress, should_stop=stop
                    )
                    summary.stopped = summary.stopped or stop()
            except ConnectorError as exc:
                # One target's outage, refused credentials or faults are recorded on that
                # target; the other targets still sync in this run.
                target_summary.error = str(exc)
            except Exception as exc:  # recorded on the run, then re-raised for the caller
                target_summary.error = str(exc)
                verdicts.close()
                if run_id is not None:
                    self._finish_run(run_id, summary)
                raise
            finally:
                target_summary.pushed.retried_requests = self._retried(name) - retried_before
        if not dry_run and not summary.stopped and self._checks_due(summary, names, kinds):
            summary.checks = revrec_checks.revrec_checks(
                self.billing,
                self.state,
                excluded_entries=verdicts.get().ids("revenue_entry"),
                excluded_invoices=verdicts.get().ids("invoice"),
                timezone=self.config.timezone,
            )
        verdicts.close()
        if run_id is not None:
            self._finish_run(run_id, summary)
        if not dry_run:
            summary.attention = needs_attention(self.state, names)
        return summary

    def _checks_due(
        self, summary: SyncSummary, names: Sequence[str], kinds: Sequence[str] | None
    ) -> bool:
        """Revenue checks read all of billing: run them when this sync changed something (or
        they never ran); after a sync that changed nothing, the last results still stand."""
        if not any("revenue" in self.kinds_for(n, kinds) for n in names):
            return False
        changed = any(
            t.extracted.new
            or t.extracted.changed
            or t.extracted.failed
            or t.pushed.sent
            or t.pushed.recovered
            for t in summary.targets
        )
        return changed or not last_checks(self.state)

    def run_verdicts(self) -> RunVerdicts:
        """A fresh billing validation for one run (read from billing when first needed)."""
        return RunVerdicts(self.billing, self.state, self.tables.entities)

    def extract(
        self,
        target: str,
        kinds: Sequence[str],
        *,
        run_id: int | None = None,
        dry_run: bool = False,
        full: bool = False,
        progress: Progress | None = None,
        verdicts: RunVerdicts | None = None,
        preview: list[dict[str, Any]] | None = None,
    ) -> ledger.EnqueueCounts:
        """Read changes of ``kinds`` for ``target`` and enqueue their documents.

        Records billing validation rejects are quarantined with its message; ``verdicts``
        shares one validation between the targets of a run. A dry run appends to ``preview``
        the documents it would send or fail.
        """
        mapping = self._mappings[target]
        own_verdicts = verdicts is None
        verdicts = verdicts or self.run_verdicts()
        lookback = timedelta(seconds=self.config.sync.lookback_seconds)
        page_size = self.config.sync.page_size
        total = ledger.EnqueueCounts()
        analyze = {"new": 0, "after": _ANALYZE_AFTER_NEW_ROWS}
        # Pages mapped while validation runs in a worker, in read order, waiting for its verdicts.
        waiting: list[tuple[str, Page, list[tuple[SourceRecord, Document | MappingError | None]]]]
        waiting = []

        def enqueued(counts: ledger.EnqueueCounts, records: int) -> None:
            total.add(counts)
            analyze["new"] += counts.new
            if not dry_run and analyze["new"] >= analyze["after"]:
                ledger.analyze(self.state)
                analyze["new"] = 0
                analyze["after"] = total.new
            if progress:
                progress("extracted", records)

        def catch_up(wait: bool) -> None:
            """Enqueue the waiting pages once the verdicts are in (now, when ``wait``)."""
            while waiting and (wait or verdicts.known() is not None):
                kind, page, mapped = waiting.pop(0)
                counts = self._enqueue_page(
                    target, kind, page, mapped, verdicts, run_id, dry_run, preview
                )
                assert counts is not None
                enqueued(counts, len(page.records))

        try:
            with self.billing.connect() as billing:
                reader = BillingReader(billing, cache=verdicts.records)
                for kind in kinds:
                    if kind == "revenue":
                        catch_up(wait=True)
                        # revrec: journals aggregate schedule entries per period (revrec.py).
                        total.add(
                            revrec.enqueue_journals(
                                self,
                                target,
                                run_id=run_id,
                                now=self.clock(),
                                dry_run=dry_run,
                                full=full,
                                excluded_entries=lambda: verdicts.get().ids("revenue_entry"),
                                validated=lambda: verdicts.known() is not None,
                            )
                        )
                        continue
                    with self.state.connect() as conn:
                        since = None if full else ledger.load_cursor(conn, target, kind)
                    for page in reader.changes(kind, since, lookback=lookback, page_size=page_size):
                        mapped = [
                            (record, map_record(mapping, record, page, self.tables))
                            for record in page.records
                        ]
                        if waiting:  # behind the pages already waiting, in read order
                            waiting.append((kind, page, mapped))
                            catch_up(wait=len(waiting) >= _WAITING_PAGES)
                            continue
                        # A full page has more behind it: worth validating beside the reading.
                        counts = self._enqueue_page(
                            target,
                            kind,
                            page,
                            mapped,
                            verdicts,
                            run_id,
                            dry_run,
                            preview,
                            defer=len(page.records) >= page_size,
                        )
                        if counts is None:
                            waiting.append((kind, page, mapped))
                        else:
                            enqueued(counts, len(page.records))
                catch_up(wait=True)
        finally:
            if own_verdicts:
                verdicts.close()
        if not dry_run and total.new >= _ANALYZE_AFTER_NEW_ROWS:
            ledger.analyze(self.state)  # the push that follows plans for the ledger's real size
        return total

    def _enqueue_page(
        self,
        target: str,
        kind: str,
        page: Page,
        mapped: Sequence[tuple[SourceRecord, Document | MappingError | None]],
        verdicts: RunVerdicts,
        run_id: int | None,
        dry_run: bool,
        preview: list[dict[str, Any]] | None = None,
        *,
        defer: bool = False,
    ) -> ledger.EnqueueCounts | None:
        """Enqueue one page in one transaction that also advances the cursor.

        Billing validation reads all of billing, so it runs only once a page holds something
        the ledger does not (a new or changed record): a page the look-back re-read unchanged
        costs its ledger look-up, not a pass over billing. With ``defer``, such a page starts
        the validation in a worker process (where it can) and returns None without enqueuing:
        the caller enqueues it again once the verdicts are in.
        """
        now = self.clock()
        while True:
            with self.state.connect() as conn:
                transaction = conn.begin()
                try:
                    known = verdicts.known()
                    outcomes = judged(kind, mapped, known)
                    outcomes = _without_unsent_failures(conn, target, kind, outcomes)
                    if known is None and not ledger.holds_unchanged(
                        conn, target=target, kind=kind, outcomes=outcomes
                    ):
                        transaction.rollback()
                        if defer and verdicts.start():
                            return None
                        verdicts.get()  # validate billing, then enqueue the page judged
                        continue
                    counts = ledger.enqueue(
                        conn, target=target, kind=kind, outcomes=outcomes, run_id=run_id, now=now
                    )
                    if dry_run:
                        if preview is not None:
                            preview += _touched(conn, target, kind, outcomes, now)
                        transaction.rollback()
                        return counts
                    if page.end is not None:
                        ledger.save_cursor(conn, target, kind, page.end, now)
                    transaction.commit()
                except BaseException:
                    transaction.rollback()
                    raise
            return counts

    def push(
        self,
        target: str,
        kinds: Sequence[str] | None = None,
        *,
        run_id: int | None = None,
        progress: Progress | None = None,
        threads: int | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> PushCounts:
        """Send every due document of ``target`` (all its kinds by default).

        ``should_stop`` is asked before each batch is claimed: a stopping service finishes and
        records the batch in flight, then returns.
        """
        connector = self.connector(target)
        pusher = Pusher(
            self.state,
            connector,
            target=target,
            settings=self.config.sync,
            worker=self.worker,
            run_id=run_id,
            clock=self.clock,
            progress=progress,
            threads=threads or int(getattr(connector, "concurrency", 1)),
            should_stop=should_stop,
        )
        kinds = list(kinds) if kinds else self.kinds_for(target)
        if progress is not None:
            progress("due", due_count(self.state, target, kinds))
        counts = pusher.push(kinds)
        if counts.sent + counts.recovered >= _ANALYZE_AFTER_NEW_ROWS:
            ledger.analyze(self.state, vacuum=True)  # later claims see a short queue again
        return counts

    # -- re-syncs ----------------------------------------------------------------------------

    def select(self, conn: Connection, selection: Selection) -> list[RowMapping]:
        """Ledger rows matching ``selection``, oldest first."""
        t = ledger_table
        query = sa.select(t).order_by(t.c.id)
        if selection.targets:
            query = query.where(t.c.target.in_(selection.targets))
        if selection.kinds:
            query = query.where(t.c.kind.in_(selection.kinds))
        if selection.statuses:
            query = query.where(t.c.status.in_(selection.statuses))
        if selection.ledger_ids:
            query = query.where(t.c.id.in_(selection.ledger_ids))
        if selection.numbers:
            wanted = [n.strip() for n in selection.numbers]
            labels = [f"{prefix} {n}" for n in wanted for prefix in _LABEL_PREFIXES]
            query = query.where(sa.or_(t.c.external_id.in_(wanted), t.c.label.in_(labels)))
        if selection.customer:
            query = query.where(t.c.customer_account == selection.customer)
        if selection.date_from:
            query = query.where(t.c.document_date >= selection.date_from)
        if selection.date_to:
            query = query.where(t.c.document_date <= selection.date_to)
        return list(conn.execute(query).mappings())

    def resync(
        self, selection: Selection, *, reason: str, dry_run: bool = False, actor: str | None = None
    ) -> ResyncResult:
        """Queue the selected records to be sent again, re-read from billing and re-mapped.

        Every re-sync is recorded in the audit log with who, when, why and what was selected.
        ``dry_run`` shows what would be sent and how it differs from the last send.
        """
        if not reason.strip():
            raise ValueError("a re-sync needs a reason for the audit log")
        now = self.clock()
        who = actor or self.actor
        items: list[ResyncItem] = []
        with self.state.connect() as conn, self.billing.connect() as billing:
            transaction = conn.begin()
            rows = [r for r in self.select(conn, selection) if r["target"] in self._targets]
            run_id = None
            if not dry_run:
                run_id = self._insert_run(
                    conn, "resync", ",".join(sorted({r["target"] for r in rows})), who, now
                )
            reader = BillingReader(billing)
            verdicts = self.run_verdicts()
            groups: dict[tuple[str, str], list[RowMapping]] = {}
            for row in rows:
                groups.setdefault((row["target"], row["kind"]), []).append(row)
            for (target, kind), group in groups.items():
                if kind == "revenue":
                    # revrec: a journal has no billing row of its own and is recomputed on every
                    # sync (sync/revrec.py); a re-sync sends again what the ledger holds.
                    items += [self._resend_journal(conn, row, now, who, run_id) for row in group]
                    continue
                page = reader.by_ids(kind, [int(r["source_id"]) for r in group])
                records = {str(r.id): r for r in page.records}
                for row in group:
                    items.append(
                        self._requeue(
                            conn,
                            row,
                            records.get(row["source_id"]),
                            page,
                            self._mappings[target],
                            now,
                            who,
                            verdicts.get(),
                            run_id,
                        )
                    )
            audit_id = None
            if run_id is not None:
                audit_id = self._audit(conn, who, reason, selection, items, now)
                conn.execute(
                    runs.update()
                    .where(runs.c.id == run_id)
                    .values(
                        status="ok",
                        finished_at=self.clock(),
                        counts=json.dumps(_requeue_counts(items), sort_keys=True),
                    )
                )
                transaction.commit()
            else:
                transaction.rollback()
        return ResyncResult(items=items, audit_id=audit_id, dry_run=dry_run, run_id=run_id)

    def push_resync(
        self, result: ResyncResult, *, progress: Progress | None = None
    ) -> dict[str, PushCounts]:
        """Send what ``result`` queued, target by target, as part of its run.

        The run's counts gain what was pushed per target; a connector error is recorded on the
        run (status ``failed``) and raised.
        """
        pushed: dict[str, PushCounts] = {}
        error = None
        try:
            for target in sorted({i.target for i in result.items if i.outcome == "queued"}):
                pushed[target] = self.push(target, run_id=result.run_id, progress=progress)
        except Exception as exc:
            error = str(exc)
            raise
        finally:
            if result.run_id is not None:
                counts = _requeue_counts(result.items)
                for target, target_counts in pushed.items():
                    counts.setdefault(target, {})["pushed"] = asdict(target_counts)
                with self.state.begin() as conn:
                    conn.execute(
                        runs.update()
                        .where(runs.c.id == result.run_id)
                        .values(
                            status="failed" if error else "ok",
                            finished_at=self.clock(),
                            counts=json.dumps(counts, sort_keys=True),
                            error=error,
                        )
                    )
        return pushed

    def _requeue(
        self,
        conn: Connection,
        row: RowMapping,
        record: SourceRecord | None,
        page: Page,
        mapping: TargetMapping,
        now: datetime,
        actor: str,
        verdicts: Verdicts,
        run_id: int | None,
    ) -> ResyncItem:
        base = {
            "ledger_id": row["id"],
            "target": row["target"],
            "kind": row["kind"],
            "label": row["label"],
            "status_before": row["status"],
        }
        old = json.loads(row["synced_payload"]) if row["synced_payload"] else None
        if record is None:
            return ResyncItem(
                **base,
                outcome="missing in billing",
                message="the record is no longer in billing",
                changes=(),
            )
        result = map_record(mapping, record, page, self.tables, verdicts)
        if result is None:
            return ResyncItem(
                **base,
                outcome="missing in billing",
                message="the target takes no document for this record",
                changes=(),
            )
        ledger.enqueue(
            conn,
            target=row["target"],
            kind=row["kind"],
            outcomes=[ledger.MapOutcome(record, result)],
            run_id=run_id,
            now=now,
        )
        if isinstance(result, MappingError):
            return ResyncItem(**base, outcome="mapping failed", message=str(result), changes=())
        self._force_pending(conn, row, now, actor, run_id)
        return ResyncItem(
            **base,
            outcome="queued",
            message=None,
            changes=tuple(diff_payloads(old, dict(result.payload))),
        )

    def _resend_journal(
        self, conn: Connection, row: RowMapping, now: datetime, actor: str, run_id: int | None
    ) -> ResyncItem:
        """revrec: queue a revenue journal's current ledger payload to be sent again."""
        base = {
            "ledger_id": row["id"],
            "target": row["target"],
            "kind": row["kind"],
            "label": row["label"],
            "status_before": row["status"],
        }
        if row["payload"] is None:
            return ResyncItem(
                **base, outcome="mapping failed", message=row["last_error"], changes=()
            )
        self._force_pending(conn, row, now, actor, run_id)
        old = json.loads(row["synced_payload"]) if row["synced_payload"] else None
        return ResyncItem(
            **base,
            outcome="queued",
            message=None,
            changes=tuple(diff_payloads(old, json.loads(row["payload"]))),
        )

    def _force_pending(
        self, conn: Connection, row: RowMapping, now: datetime, actor: str, run_id: int | None
    ) -> None:
        # Force a send even if the payload is unchanged; keep the suspect flag of an unknown
        # outcome so the push looks the record up before writing again.
        ledger.bulk_update(
            conn,
            [{"_id": row["id"]}],
            status="pending",
            attempts=0,
            next_attempt_at=None,
            last_error=None,
            error_kind=sa.case((ledger_table.c.error_kind == "unknown", "unknown"), else_=None),
            updated_at=now,
        )
        conn.execute(
            ledger_events.insert().values(
                ledger_id=row["id"],
                at=now,
                run_id=run_id,
                event="resync",
                status="pending",
                detail=f"queued by {actor}",
            )
        )

    def _audit(
        self,
        conn: Connection,
        actor: str,
        reason: str,
        selection: Selection,
        items: list[ResyncItem],
        now: datetime,
    ) -> int:
        details = {
            "selection": {
                k: (v.isoformat() if isinstance(v, date) else v)
                for k, v in asdict(selection).items()
                if v not in ((), None)
            },
            "matched": len(items),
            "queued": sum(1 for i in items if i.outcome == "queued"),
            "records": [
                {
                    "ledger_id": i.ledger_id,
                    "target": i.target,
                    "label": i.label,
                    "outcome": i.outcome,
                }
                for i in items[:1000]
            ],
        }
        result = conn.execute(
            audit_log.insert().values(
                at=now,
                actor=actor,
                action="resync",
                reason=reason,
                details=json.dumps(details, sort_keys=True),
            )
        )
        return int(result.inserted_primary_key[0])  # type: ignore[index]
