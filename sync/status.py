"""Read-only views of the state store for `finsync status`, the console and the workbook."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sync.state import ledger, runs


def ledger_counts(engine: Engine) -> list[dict[str, Any]]:
    """Counts per (target, kind) with one key per status and a total, sorted."""
    query = sa.select(ledger.c.target, ledger.c.kind, ledger.c.status, sa.func.count()).group_by(
        ledger.c.target, ledger.c.kind, ledger.c.status
    )
    table: dict[tuple[str, str], dict[str, Any]] = {}
    with engine.connect() as conn:
        for target, kind, status, count in conn.execute(query):
            row = table.setdefault((target, kind), {"target": target, "kind": kind, "total": 0})
            row[status] = count
            row["total"] += count
    return [table[k] for k in sorted(table)]


def failures(engine: Engine, *, limit: int = 20) -> list[dict[str, Any]]:
    """Failed and dead records with their last error, newest first."""
    query = (
        sa.select(
            ledger.c.id,
            ledger.c.target,
            ledger.c.kind,
            ledger.c.label,
            ledger.c.status,
            ledger.c.attempts,
            ledger.c.last_error,
            ledger.c.updated_at,
        )
        .where(ledger.c.status.in_(("failed", "dead")))
        .order_by(ledger.c.updated_at.desc(), ledger.c.id.desc())
        .limit(limit)
    )
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def needs_attention(engine: Engine, targets: list[str] | None = None) -> int:
    """Records that need someone: failed, dead, retrying, or pending behind one of those."""
    waiting = sa.and_(ledger.c.status == "pending", ledger.c.last_error.like("waiting for %"))
    query = sa.select(sa.func.count()).where(
        sa.or_(ledger.c.status.in_(("failed", "dead", "retry")), waiting)
    )
    if targets:
        query = query.where(ledger.c.target.in_(targets))
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def last_runs(engine: Engine, *, limit: int = 10) -> list[dict[str, Any]]:
    """The most recent runs."""
    query = sa.select(runs).order_by(runs.c.id.desc()).limit(limit)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def ledger_rows(engine: Engine, ids: list[int]) -> list[dict[str, Any]]:
    """Ledger rows by id, in id order."""
    if not ids:
        return []
    query = sa.select(ledger).where(ledger.c.id.in_(ids)).order_by(ledger.c.id)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def last_checks(engine: Engine) -> list[dict[str, Any]]:
    """The revenue-recognition checks of the latest sync run that ran them."""
    query = (
        sa.select(runs.c.counts)
        .where(runs.c.kind == "sync", runs.c.counts.like('%"checks"%'))
        .order_by(runs.c.id.desc())
        .limit(1)
    )
    with engine.connect() as conn:
        counts = conn.execute(query).scalar()
    if counts is None:
        return []
    checks: list[dict[str, Any]] = json.loads(counts).get("checks", [])
    return checks


#: How ledger labels start, per kind of document; what follows is the document number.
LABEL_PREFIXES = ("customer", "invoice", "credit note", "payment", "refund")
#: How many records of one group are named before the rest are counted.
NAMED_PER_GROUP = 10


def document_number(label: str) -> str | None:
    """The document number of a ledger label (``invoice INV-1042`` -> ``INV-1042``), if any."""
    for prefix in LABEL_PREFIXES:
        if label.startswith(prefix + " ") and label[len(prefix) + 1 :].strip():
            return label[len(prefix) + 1 :].strip()
    return None


def error_without_label(label: str, message: str | None) -> str:
    """The part of an error message shared by every record it hit: the record's own label
    (``invoice INV-1042: ...``) is left out so that one cause groups its records."""
    text = (message or "(no message)").strip()
    if text.startswith(label + ": "):
        return text[len(label) + 2 :]
    return text


@dataclass
class FailureGroup:
    """Records of one status that failed with the same error, and what to do next."""

    status: str
    error: str
    #: (ledger id, target, label) of each record, oldest first.
    records: list[tuple[int, str, str]] = field(default_factory=list)

    @property
    def count(self) -> int:
        """How many records the group holds."""
        return len(self.records)

    @property
    def named(self) -> list[str]:
        """The first records as ``label (target)``; the rest are only counted."""
        return [f"{label} ({target})" for _, target, label in self.records[:NAMED_PER_GROUP]]

    def next_step(self, command: str) -> str:
        """The next thing to do, as a command line starting with ``command``."""
        if self.status == "retry":
            return "nothing yet: finsync retries these by itself (dead after sync.max_attempts)"
        numbers = sorted({document_number(label) or "" for _, _, label in self.records})
        if self.count <= NAMED_PER_GROUP and all(numbers):
            which = " ".join(numbers)
        elif self.count <= NAMED_PER_GROUP:
            which = "--id " + " ".join(str(i) for i, _, _ in self.records)
        else:
            which = f"--status {self.status}"
        fix = (
            "fix what the message says (mapping file or billing)"
            if self.status == "failed"
            else "make sure the target is reachable and accepts the records"
        )
        return f'{fix}, then `{command} resync {which} --reason "..."`'


@dataclass
class WaitingRecord:
    """A pending record that waits for another one that has not synced."""

    ledger_id: int
    target: str
    label: str
    waiting_for: str


@dataclass
class Attention:
    """Everything that needs someone: failures grouped by error, and what waits behind them."""

    groups: list[FailureGroup]
    waiting: list[WaitingRecord]

    @property
    def failed(self) -> int:
        """Records in a failure group."""
        return sum(g.count for g in self.groups)


def attention(engine: Engine, targets: list[str] | None = None) -> Attention:
    """Failed, dead and retrying records grouped by status and error (largest group first),
    and the pending records waiting behind one of them."""
    query = (
        sa.select(
            ledger.c.id, ledger.c.target, ledger.c.label, ledger.c.status, ledger.c.last_error
        )
        .where(
            sa.or_(
                ledger.c.status.in_(("failed", "dead", "retry")),
                sa.and_(ledger.c.status == "pending", ledger.c.last_error.like("waiting for %")),
            )
        )
        .order_by(ledger.c.id)
    )
    if targets:
        query = query.where(ledger.c.target.in_(targets))
    groups: dict[tuple[str, str], FailureGroup] = {}
    waiting: list[WaitingRecord] = []
    with engine.connect() as conn:
        for row in conn.execute(query).mappings():
            if row["status"] == "pending":
                waiting.append(
                    WaitingRecord(row["id"], row["target"], row["label"], row["last_error"])
                )
                continue
            error = error_without_label(row["label"], row["last_error"])
            group = groups.setdefault((row["status"], error), FailureGroup(row["status"], error))
            group.records.append((row["id"], row["target"], row["label"]))
    ordered = sorted(groups.values(), key=lambda g: (-g.count, g.status, g.error))
    return Attention(groups=ordered, waiting=waiting)


def due_count(engine: Engine, target: str, kinds: list[str] | None = None) -> int:
    """Documents of ``target`` waiting to be sent (pending or retry)."""
    query = sa.select(sa.func.count()).where(
        ledger.c.target == target, ledger.c.status.in_(("pending", "retry"))
    )
    if kinds:
        query = query.where(ledger.c.kind.in_(kinds))
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())
