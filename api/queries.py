"""Read-only questions the console asks of the state store, the billing database and disk."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from connectors.base import canonical_json
from finsync.errors import ConfigError, MappingError
from mappings.tables import MappingTables
from sync.diff import Change, diff_payloads
from sync.engine import map_record
from sync.extract import BillingReader
from sync.state import STATUSES, audit_log, ledger, ledger_events, runs, workbooks
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
    if filters.statuses:
        conditions.append(t.c.status.in_(filters.statuses))
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
            )
        )
    if filters.error:
        conditions.append(
            sa.func.coalesce(t.c.last_error, "").contains(filters.error.strip(), autoescape=True)
        )
    return sa.and_(sa.true(), *conditions)


def find_records(
    engine: Engine, filters: RecordFilters, *, limit: int, offset: int
) -> tuple[int, list[dict[str, Any]]]:
    """Ledger rows matching ``filters``, most recently changed first, and how many match."""
    t = ledger
    where = _where(filters)
    columns = [t.c[name] for name in _SUMMARY_COLUMNS]
    query = (
        sa.select(*columns)
        .where(where)
        .order_by(t.c.updated_at.desc(), t.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    with engine.connect() as conn:
        total = int(
            conn.execute(sa.select(sa.func.count()).select_from(t).where(where)).scalar_one()
        )
        rows = [dict(r) for r in conn.execute(query).mappings()]
    return total, rows


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
        rows = [dict(r) | {"counts": _json(r["counts"])} for r in conn.execute(query).mappings()]
    return total, rows


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
