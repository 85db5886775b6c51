"""Read-only views of the state store for `finsync status`, the console and the workbook."""

from __future__ import annotations

import json
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
