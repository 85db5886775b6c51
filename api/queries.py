"""Read-only questions the console asks of the state store, the billing database and disk."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from billing import schema as billing_schema
from core.documents import canonical_json
from core.errors import ConfigError, MappingError
from core.money import is_known_currency, minor_units, round_money
from mappings.tables import MappingTables
from sync.diff import Change, diff_payloads
from sync.engine import map_record
from sync.extract import BillingReader
from sync.state import (
    STATUSES,
    alerts,
    audit_log,
    ledger,
    ledger_events,
    runs,
    service_processes,
    workbooks,
)
from sync.status import FailureGroup, error_without_label
from sync.targets import TargetMapping

_SUMMARY_COLUMNS = (
    "id",
    "target",
    "kind",
    "source_id",
    "label",
    "customer_account",
    "document_date",
    "external_id",
    "status",
    "attempts",
    "last_error",
    "internal_id",
    "updated_at",
    "synced_at",
)


@dataclass(frozen=True)
class RecordFilters:
    """Filters of the records list; empty fields do not filter."""

    target: str | None = None
    kind: str | None = None
    statuses: tuple[str, ...] = ()
    customer: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    q: str | None = None
    #: Text in the last error (the failures page's groups filter on their message).
    error: str | None = None
    #: Also the pending records that wait for a record that has not synced (``statuses``
    #: alone cannot tell them from the rest of the queue).
    waiting: bool = False
    #: Accounts of the customers whose billing name contains ``q`` (the search matches them).
    named_accounts: tuple[str, ...] = ()
    #: A column of ``SORTS``, ``-`` first for descending; empty: most recently changed first.
    sort: str = ""


def _json(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _where(filters: RecordFilters) -> sa.ColumnElement[bool]:
    t = ledger
    conditions: list[sa.ColumnElement[bool]] = []
    if filters.target:
        conditions.append(t.c.target == filters.target)
    if filters.kind:
        conditions.append(t.c.kind == filters.kind)
    waiting = sa.and_(t.c.status == "pending", t.c.last_error.like("waiting for %"))
    if filters.statuses and filters.waiting:
        conditions.append(sa.or_(t.c.status.in_(filters.statuses), waiting))
    elif filters.statuses:
        conditions.append(t.c.status.in_(filters.statuses))
    elif filters.waiting:
        conditions.append(waiting)
    if filters.customer:
        conditions.append(t.c.customer_account == filters.customer)
    if filters.date_from:
        conditions.append(t.c.document_date >= filters.date_from)
    if filters.date_to:
        conditions.append(t.c.document_date <= filters.date_to)
    if filters.q:
        needle = filters.q.strip().lower()
        conditions.append(
            sa.or_(
                sa.func.lower(t.c.label).contains(needle, autoescape=True),
                sa.func.lower(sa.func.coalesce(t.c.external_id, "")).contains(
                    needle, autoescape=True
                ),
                sa.func.lower(sa.func.coalesce(t.c.customer_account, "")).contains(
                    needle, autoescape=True
                ),
                t.c.customer_account.in_(filters.named_accounts),
            )
        )
    if filters.error:
        conditions.append(
            sa.func.coalesce(t.c.last_error, "").contains(filters.error.strip(), autoescape=True)
        )
    return sa.and_(sa.true(), *conditions)


#: The columns a records list can be sorted by (``sort=date`` or ``sort=-date``).
SORTS = {
    "id": ledger.c.id,
    "record": ledger.c.label,
    "target": ledger.c.target,
    "customer": ledger.c.customer_account,
    "date": ledger.c.document_date,
    "status": ledger.c.status,
    "tries": ledger.c.attempts,
    "changed": ledger.c.updated_at,
}


def _order(sort: str) -> list[sa.ColumnElement[Any]]:
    name = sort.lstrip("-")
    if name not in SORTS:
        return [ledger.c.updated_at.desc(), ledger.c.id.desc()]
    column = SORTS[name]
    if sort.startswith("-"):
        return [column.desc(), ledger.c.id.desc()]
    return [column.asc(), ledger.c.id.asc()]


def find_records(
    engine: Engine, filters: RecordFilters, *, limit: int, offset: int
) -> tuple[int, list[dict[str, Any]]]:
    """Ledger rows matching ``filters`` in the order of ``filters.sort`` (most recently
    changed first by default), and how many match."""
    t = ledger
    where = _where(filters)
    columns = [t.c[name] for name in _SUMMARY_COLUMNS]
    query = (
        sa.select(*columns).where(where).order_by(*_order(filters.sort)).limit(limit).offset(offset)
    )
    with engine.connect() as conn:
        total = int(
            conn.execute(sa.select(sa.func.count()).select_from(t).where(where)).scalar_one()
        )
        rows = [dict(r) for r in conn.execute(query).mappings()]
    return total, rows


def accounts_named(billing: Engine, text: str | None, *, limit: int = 500) -> tuple[str, ...]:
    """Account numbers of the billing customers whose name contains ``text`` (any case)."""
    if not text:
        return ()
    c = billing_schema.customers
    query = (
        sa.select(c.c.account_number)
        .where(sa.func.lower(c.c.name).contains(text.strip().lower(), autoescape=True))
        .order_by(c.c.account_number)
        .limit(limit)
    )
    with billing.connect() as conn:
        return tuple(str(a) for a in conn.execute(query).scalars())


#: The records list as CSV: (header, ledger column).
CSV_COLUMNS = (
    ("ledger id", "id"),
    ("target", "target"),
    ("kind", "kind"),
    ("record", "label"),
    ("customer account", "customer_account"),
    ("document date", "document_date"),
    ("status", "status"),
    ("tries", "attempts"),
    ("last error", "last_error"),
    ("external id", "external_id"),
    ("target's id", "internal_id"),
    ("changed at", "updated_at"),
    ("synced at", "synced_at"),
)
#: At most this many rows go into one CSV export.
CSV_LIMIT = 100_000


def csv_cell(value: Any) -> str:
    """A value as a CSV cell that a spreadsheet shows as text: a cell starting with ``=``,
    ``+``, ``-``, ``@``, a tab or a carriage return gets a leading apostrophe, so it is never
    taken for a formula."""
    if value is None:
        return ""
    text = value.isoformat() if isinstance(value, date | datetime) else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def records_csv_rows(engine: Engine, filters: RecordFilters) -> Iterator[list[str]]:
    """The header and then every record matching ``filters`` (at most ``CSV_LIMIT``), in the
    list's order, as CSV cells."""
    yield [header for header, _ in CSV_COLUMNS]
    page = 1000
    for offset in range(0, CSV_LIMIT, page):
        _total, rows = find_records(engine, filters, limit=page, offset=offset)
        for row in rows:
            yield [csv_cell(row[name]) for _, name in CSV_COLUMNS]
        if len(rows) < page:
            return


def status_totals(engine: Engine) -> dict[str, int]:
    """How many ledger records are in each status (every status listed, zeros included)."""
    query = sa.select(ledger.c.status, sa.func.count()).group_by(ledger.c.status)
    totals = dict.fromkeys(STATUSES, 0)
    with engine.connect() as conn:
        for status, count in conn.execute(query):
            totals[status] = int(count)
    return totals


#: At most this many records are grouped, or taken by one bulk re-sync.
BULK_LIMIT = 5000


def error_groups(engine: Engine, filters: RecordFilters) -> list[FailureGroup]:
    """The records matching ``filters`` grouped by status and error (the record's own label
    left out of the message), largest group first; at most ``BULK_LIMIT`` records."""
    t = ledger
    query = (
        sa.select(t.c.id, t.c.target, t.c.label, t.c.status, t.c.last_error)
        .where(_where(filters))
        .order_by(t.c.id)
        .limit(BULK_LIMIT)
    )
    groups: dict[tuple[str, str], FailureGroup] = {}
    with engine.connect() as conn:
        for row in conn.execute(query).mappings():
            error = error_without_label(row["label"], row["last_error"])
            group = groups.setdefault((row["status"], error), FailureGroup(row["status"], error))
            group.records.append((row["id"], row["target"], row["label"]))
    return sorted(groups.values(), key=lambda g: (-g.count, g.status, g.error))


def matching_ids(engine: Engine, filters: RecordFilters) -> list[int]:
    """Ids of the records matching ``filters`` (at most ``BULK_LIMIT``), oldest first."""
    query = sa.select(ledger.c.id).where(_where(filters)).order_by(ledger.c.id).limit(BULK_LIMIT)
    with engine.connect() as conn:
        return [int(i) for i in conn.execute(query).scalars()]


def list_runs(
    engine: Engine, *, limit: int, offset: int, kind: str | None = None, status: str | None = None
) -> tuple[int, list[dict[str, Any]]]:
    """Runs, newest first, with their counts decoded."""
    conditions = []
    if kind:
        conditions.append(runs.c.kind == kind)
    if status:
        conditions.append(runs.c.status == status)
    where = sa.and_(sa.true(), *conditions)
    query = sa.select(runs).where(where).order_by(runs.c.id.desc()).limit(limit).offset(offset)
    with engine.connect() as conn:
        total = int(
            conn.execute(sa.select(sa.func.count()).select_from(runs).where(where)).scalar_one()
        )
        rows = [
            _with_summary(dict(r) | {"counts": _json(r["counts"])})
            for r in conn.execute(query).mappings()
        ]
    return total, rows


#: How a run's per-target counts read in a list: (section, count, words), in order.
_SUMMARY_PARTS = (
    ("extracted", "new", "new"),
    ("extracted", "changed", "changed"),
    ("extracted", "failed", "failed to map"),
    ("requeued", "queued", "queued again"),
    ("requeued", "mapping failed", "failed to map"),
    ("requeued", "missing in billing", "missing in billing"),
    ("pushed", "created", "created"),
    ("pushed", "updated", "updated"),
    ("pushed", "recovered", "recovered"),
    ("pushed", "retrying", "retrying"),
    ("pushed", "failed", "refused"),
    ("pushed", "dead", "dead"),
)


def run_summary(run: dict[str, Any]) -> str:
    """What a run did, in words: ``erp: 3 new, 1 failed to map, 3 created``; for an hour's idle
    line, how many runs found nothing."""
    counts = run["counts"] if isinstance(run["counts"], dict) else {}
    if run["status"] == "idle":
        n = int(counts.get("idle_runs", 1))
        return f"{n} scheduled run{'s' if n != 1 else ''} found nothing to send"
    if run["kind"] == "report":
        return ", ".join(f"{v:,} {k}" for k, v in counts.items() if isinstance(v, int))
    parts = []
    for target, per_target in sorted(counts.items()):
        if not isinstance(per_target, dict):
            continue
        said = [
            f"{per_target[section][name]:,} {words}"
            for section, name, words in _SUMMARY_PARTS
            if isinstance(per_target.get(section), dict) and per_target[section].get(name)
        ]
        parts.append(f"{target}: {', '.join(said) or 'nothing changed'}")
    return "; ".join(parts)


def _with_summary(row: dict[str, Any]) -> dict[str, Any]:
    started, finished = row["started_at"], row["finished_at"]
    row["duration_seconds"] = (finished - started).total_seconds() if finished else None
    row["summary"] = run_summary(row)
    return row


def duration_text(seconds: float | None) -> str:
    """``0.4 s``, ``12 s``, ``3 min 05 s``, ``2 h 04 min``; empty while running."""
    if seconds is None:
        return ""
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def run_detail(engine: Engine, run_id: int) -> dict[str, Any] | None:
    """One run with what it did per target, kind and outcome (from the ledger events it
    wrote) and the records that failed in it, or None."""
    e, t = ledger_events, ledger
    with engine.connect() as conn:
        row = conn.execute(sa.select(runs).where(runs.c.id == run_id)).mappings().first()
        if row is None:
            return None
        grouped = conn.execute(
            sa.select(t.c.target, t.c.kind, e.c.event, e.c.status, sa.func.count())
            .select_from(e.join(t, t.c.id == e.c.ledger_id))
            .where(e.c.run_id == run_id)
            .group_by(t.c.target, t.c.kind, e.c.event, e.c.status)
            .order_by(t.c.target, t.c.kind, e.c.event, e.c.status)
        ).all()
        failed = conn.execute(
            sa.select(
                t.c.id,
                t.c.target,
                t.c.kind,
                t.c.label,
                t.c.customer_account,
                t.c.document_date,
                e.c.status,
                e.c.detail,
                t.c.status.label("status_now"),
            )
            .select_from(e.join(t, t.c.id == e.c.ledger_id))
            .where(e.c.run_id == run_id, e.c.status.in_(("failed", "dead", "retry")))
            .order_by(e.c.id)
            .limit(BULK_LIMIT)
        ).mappings()
        failures = [dict(f) for f in failed]
    detail = _with_summary(dict(row) | {"counts": _json(row["counts"])})
    detail["activity"] = [
        {"target": g[0], "kind": g[1], "event": g[2], "status": g[3], "count": int(g[4])}
        for g in grouped
    ]
    detail["failures"] = failures
    return detail


#: A process counts as alive while its last heartbeat is this many poll intervals old at most.
_ALIVE_POLLS = 3
_ALIVE_AT_LEAST = timedelta(seconds=15)


@dataclass(frozen=True)
class JobHealth:
    """One scheduled job: when it last ran (as a run of the history) and when it runs next."""

    id: str
    last_run: dict[str, Any] | None
    next_run_at: datetime | None


@dataclass(frozen=True)
class ServiceHealth:
    """The service as the state store sees it: live processes, the leader, the jobs."""

    processes: list[dict[str, Any]]
    jobs: list[JobHealth]

    @property
    def leader(self) -> dict[str, Any] | None:
        """The live process that runs the scheduler, if any."""
        return next((p for p in self.processes if p["role"] == "leader"), None)

    @property
    def workers(self) -> int:
        """Live processes that push (every ``serve`` runs a push worker, and every ``worker``)."""
        return len(self.processes)


def _job_times(conn: sa.Connection) -> dict[str, datetime | None]:
    from finsync.schedule import JOBS_TABLE

    if JOBS_TABLE not in sa.inspect(conn).get_table_names():
        return {}
    table = sa.table(JOBS_TABLE, sa.column("id", sa.String), sa.column("next_run_time", sa.Float))
    return {
        str(job_id): None if when is None else datetime.fromtimestamp(float(when), UTC)
        for job_id, when in conn.execute(sa.select(table.c.id, table.c.next_run_time))
    }


def _last_run(conn: sa.Connection, *conditions: sa.ColumnElement[bool]) -> dict[str, Any] | None:
    row = (
        conn.execute(sa.select(runs).where(*conditions).order_by(runs.c.id.desc()).limit(1))
        .mappings()
        .first()
    )
    return None if row is None else _with_summary(dict(row) | {"counts": _json(row["counts"])})


def service_health(engine: Engine, targets: list[str], now: datetime) -> ServiceHealth:
    """Live ``serve``/``worker`` processes (from their heartbeats) and, per scheduled job, its
    last and next run (the scheduler's job store holds the next)."""
    from finsync.schedule import REPORT_JOB, SYNC_JOB_PREFIX

    with engine.connect() as conn:
        processes = []
        for p in conn.execute(sa.select(service_processes)).mappings():
            window = max(_ALIVE_AT_LEAST, timedelta(seconds=_ALIVE_POLLS * p["poll_seconds"]))
            if p["seen_at"] >= now - window:
                processes.append(dict(p))
        times = _job_times(conn)
        ids = sorted({f"{SYNC_JOB_PREFIX}{t}" for t in targets} | set(times))
        jobs = []
        for job_id in ids:
            if job_id.startswith(SYNC_JOB_PREFIX):
                target = job_id[len(SYNC_JOB_PREFIX) :]
                last = _last_run(conn, runs.c.kind == "sync", runs.c.target == target)
            elif job_id == REPORT_JOB:
                last = _last_run(conn, runs.c.kind == "report")
            else:
                last = None  # the retry sweep is recorded on the records it sends, not as a run
            jobs.append(JobHealth(job_id, last, times.get(job_id)))
    processes.sort(key=lambda p: (p["role"] != "leader", p["started_at"]))
    return ServiceHealth(processes, jobs)


def open_alerts(engine: Engine) -> list[dict[str, Any]]:
    """Alert incidents not resolved yet, oldest first."""
    query = sa.select(alerts).where(alerts.c.resolved_at.is_(None)).order_by(alerts.c.id)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def list_audit(
    engine: Engine,
    *,
    limit: int,
    offset: int,
    actor: str | None = None,
    action: str | None = None,
) -> tuple[int, list[dict[str, Any]]]:
    """Audit log entries, newest first, with their details decoded."""
    conditions = []
    if actor:
        conditions.append(audit_log.c.actor == actor)
    if action:
        conditions.append(audit_log.c.action == action)
    where = sa.and_(sa.true(), *conditions)
    query = (
        sa.select(audit_log)
        .where(where)
        .order_by(audit_log.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    with engine.connect() as conn:
        total = int(
            conn.execute(
                sa.select(sa.func.count()).select_from(audit_log).where(where)
            ).scalar_one()
        )
        rows = [dict(r) | {"details": _json(r["details"])} for r in conn.execute(query).mappings()]
    return total, rows


#: Field names whose values are amounts of money (NetSuite and AvaTax payloads).
_MONEY_FIELD = re.compile(r"(amount|amt|rate|total|price|debit|credit|tax)$", re.IGNORECASE)
#: Payload field names (NetSuite's mostly) as accountants say them.
_FIELD_WORDS = {
    "tax1Amt": "tax",
    "rate": "unit price",
    "tranDate": "document date",
    "tranId": "document number",
    "entity": "customer",
    "externalId": "external id",
    "currency": "currency",
    "payment": "amount paid",
}
#: How the repeated parts of a payload read: ``itemList.item[2]`` is line 3.
_LIST_ITEMS = {"item": "line", "line": "line", "apply": "applied to", "lines": "line"}


def money_text(amount: Decimal | str | int | float | None, currency: str | None) -> str:
    """``1,234.50 USD``: rounded to the currency's minor units; as given when not a number."""
    if amount is None:
        return "—"
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        return str(amount)
    if currency and is_known_currency(currency):
        value = round_money(value, currency)
        return f"{value:,.{minor_units(currency)}f} {currency}"
    return f"{value:,}"


def _words(name: str) -> str:
    if name in _FIELD_WORDS:
        return _FIELD_WORDS[name]
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ").lower()


def field_label(path: str) -> str:
    """A payload path in words: ``itemList.item[1].amount`` -> ``line 2 · amount``."""
    parts: list[str] = []
    segments = path.split(".")
    for i, segment in enumerate(segments):
        match = re.fullmatch(r"(\w+)\[(\d+)\]", segment)
        if match:
            name, index = match.group(1), int(match.group(2)) + 1
            name = name.removesuffix("List") or name
            parts.append(f"{_LIST_ITEMS.get(name, _words(name))} {index}")
        elif segment.endswith("List") and i + 1 < len(segments):
            continue  # itemList.item[0]: the list's name says nothing the item does not
        else:
            parts.append(_words(segment))
    return " · ".join(parts) or path


def value_text(path: str, value: Any, absent: bool, currency: str | None) -> str:
    """A diff value for people: amounts formatted with the currency, text as it is."""
    if absent:
        return "(none)"
    leaf = path.rsplit(".", 1)[-1].split("[", 1)[0]
    amount_like = isinstance(value, str | int | float | Decimal) and not isinstance(value, bool)
    if _MONEY_FIELD.search(leaf) and amount_like:
        return money_text(value, currency)
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    if value is None:
        return "(empty)"
    return str(value)


def labelled_changes(
    changes: Iterable[dict[str, Any]], currency: str | None
) -> list[dict[str, Any]]:
    """The diff entries (``change_out``) with a ``label`` and the values in words."""
    return [
        c
        | {
            "label": field_label(c["path"]),
            "old_text": value_text(c["path"], c["old"], c["old_absent"], currency),
            "new_text": value_text(c["path"], c["new"], c["new_absent"], currency),
        }
        for c in changes
    ]


def finance_facts(billing: Engine, row: dict[str, Any]) -> dict[str, Any]:
    """What an accountant knows the record by, read from billing now: the customer's name and
    account, the document's date, amount and currency (None where billing has none)."""
    facts: dict[str, Any] = {
        "customer_name": None,
        "customer_account": row["customer_account"],
        "document_date": row["document_date"],
        "amount": None,
        "currency": None,
        "amount_text": "—",
    }
    kind = row["kind"]
    if kind == "revenue" or not str(row["source_id"]).isdigit():
        return facts
    with billing.connect() as conn:
        page = BillingReader(conn).by_ids(kind, [int(row["source_id"])])
        record = page.records[0] if page.records else None
        if record is not None and kind != "customer":
            amount = getattr(record, "total", None) or getattr(record, "amount", None)
            facts["amount"] = amount
            facts["currency"] = getattr(record, "currency", None)
            facts["amount_text"] = money_text(amount, facts["currency"])
        if kind == "customer" and record is not None:
            facts["customer_name"] = getattr(record, "name", None)
        elif row["customer_account"]:
            c = billing_schema.customers
            facts["customer_name"] = conn.execute(
                sa.select(c.c.name).where(c.c.account_number == row["customer_account"])
            ).scalar()
    return facts


def _absent(value: Any) -> bool:
    # sync.diff marks a missing side with a bare object(), which no JSON value can be.
    return type(value) is object


def change_out(change: Change) -> dict[str, Any]:
    """A diff entry as JSON: the marker of a missing side becomes an ``*_absent`` flag."""
    old_absent, new_absent = _absent(change.old), _absent(change.new)
    return {
        "path": change.path,
        "old": None if old_absent else change.old,
        "new": None if new_absent else change.new,
        "old_absent": old_absent,
        "new_absent": new_absent,
    }


def current_state(
    row: dict[str, Any],
    *,
    billing: Engine,
    mapping: TargetMapping | None,
    tables: MappingTables | ConfigError,
) -> dict[str, Any]:
    """Re-read the record from billing now, map it, and compare with what was last sent."""

    def state(
        name: str, message: str | None, changes: list[Change] | None = None
    ) -> dict[str, Any]:
        changes = changes or []
        return {"state": name, "message": message, "changes": [change_out(c) for c in changes]}

    if isinstance(tables, ConfigError):
        return state("unavailable", f"the mapping file cannot be read: {tables}")
    if mapping is None:
        return state("unavailable", f"target {row['target']!r} is not enabled in the config")
    if not row["source_id"].isdigit():
        return state("unavailable", f"billing id {row['source_id']!r} is not a number")
    with billing.connect() as conn:
        page = BillingReader(conn).by_ids(row["kind"], [int(row["source_id"])])
    if not page.records:
        return state("missing", "the record is no longer in billing")
    result = map_record(mapping, page.records[0], page, tables)
    if result is None:
        return state("missing", "the target takes no document for this record")
    if isinstance(result, MappingError):
        return state("mapping failed", str(result))
    old = _json(row["synced_payload"])
    if old is None:
        return state("never sent", "nothing was sent yet: the whole document is new", [])
    changes = diff_payloads(old, json.loads(canonical_json(result.payload)))
    return state("changed" if changes else "unchanged", None, changes)


def record_detail(engine: Engine, record_id: int) -> dict[str, Any] | None:
    """One ledger row with its history (oldest first) and decoded payloads, or None."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(ledger).where(ledger.c.id == record_id)).mappings().first()
        if row is None:
            return None
        events = conn.execute(
            sa.select(ledger_events)
            .where(ledger_events.c.ledger_id == record_id)
            .order_by(ledger_events.c.id)
        ).mappings()
        history = [{k: e[k] for k in ("at", "event", "status", "detail", "run_id")} for e in events]
    detail = dict(row)
    detail["history"] = history
    detail["payload_json"] = _json(row["payload"])
    detail["synced_payload_json"] = _json(row["synced_payload"])
    detail["result_json"] = _json(row["result"])
    return detail


def list_workbooks(engine: Engine, out_dir: Path) -> tuple[str, str | None, list[dict[str, Any]]]:
    """Workbooks from the workbooks table; when it is empty, the .xlsx files of ``out_dir``.

    Returns (source, note, items); an item's ``id`` is the row id, or the file name for files.
    """
    with engine.connect() as conn:
        rows = list(conn.execute(sa.select(workbooks).order_by(workbooks.c.id.desc())).mappings())
    if rows:
        items = []
        for r in rows:
            path = Path(r["path"])
            exists = path.is_file()
            items.append(
                {
                    "id": str(r["id"]),
                    "name": path.name,
                    "period": r["period"],
                    "entity": r["entity"],
                    "built_at": r["built_at"],
                    "delivered_at": r["delivered_at"],
                    "delivery_error": r["delivery_error"],
                    "size_bytes": path.stat().st_size if exists else None,
                    "available": exists,
                }
            )
        return "table", None, items
    files = sorted(
        (p for p in out_dir.glob("*.xlsx") if p.is_file()),
        key=lambda p: (p.stat().st_mtime, p.name),
        reverse=True,
    )
    note = (
        f"no workbook is recorded in the state store yet; listing the files of {out_dir.name}/ "
        "(the report folder)"
    )
    items = [
        {
            "id": p.name,
            "name": p.name,
            "period": None,
            "entity": None,
            "built_at": None,
            "delivered_at": None,
            "delivery_error": None,
            "size_bytes": p.stat().st_size,
            "available": True,
        }
        for p in files
    ]
    return "out_dir", note, items


def workbook_path(engine: Engine, out_dir: Path, workbook_id: str) -> Path | None:
    """The file of workbook ``workbook_id`` (row id, or a file name when the table is empty)."""
    source, _note, items = list_workbooks(engine, out_dir)
    for item in items:
        if item["id"] == workbook_id and item["available"]:
            if source == "out_dir":
                return out_dir / str(item["name"])
            with engine.connect() as conn:
                path: str = conn.execute(
                    sa.select(workbooks.c.path).where(workbooks.c.id == int(workbook_id))
                ).scalar_one()
            return Path(path)
    return None
