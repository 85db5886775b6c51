"""The ledger's sync exceptions: rows failed, dead or waiting for a retry, with what to do.

Listed on the Reconciliation sheet; streamed like the document rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa

from reports.common import EXCEPTION_STATUSES, stream_rows
from sync.state import ledger


@dataclass(frozen=True)
class ExceptionRow:
    """A ledger row that failed, died or waits for a retry, and what to do about it."""

    target: str
    kind: str
    label: str
    customer_account: str | None
    document_date: date | None
    status: str
    attempts: int
    error: str
    action: str
    updated_at: datetime


def _action(status: str, error_kind: str | None) -> str:
    if status == "retry":
        return "None yet: finsync retries it automatically; act if it turns dead."
    if status == "dead":
        return (
            "Retries are exhausted: check that the target system is reachable and the "
            "error above, then re-sync the record (finsync resync)."
        )
    if error_kind == "mapping":
        return (
            "Fix the billing data or the mapping file as the error says, then re-sync the "
            "record (finsync resync)."
        )
    return "The target refused the record: correct what the error names, then re-sync it."


def exception_rows(state: sa.Engine) -> Iterator[ExceptionRow]:
    """Every ledger row failed, dead or waiting for a retry, all targets, oldest first."""
    lg = ledger.c
    stmt = (
        sa.select(
            lg.target,
            lg.kind,
            lg.label,
            lg.customer_account,
            lg.document_date,
            lg.status,
            lg.attempts,
            lg.last_error,
            lg.error_kind,
            lg.updated_at,
        )
        .where(lg.status.in_(EXCEPTION_STATUSES))
        .order_by(lg.target, lg.kind, lg.updated_at, lg.id)
    )
    for r in stream_rows(state, stmt):
        yield ExceptionRow(
            r.target,
            r.kind,
            r.label,
            r.customer_account,
            r.document_date,
            r.status,
            r.attempts,
            r.last_error or "",
            _action(r.status, r.error_kind),
            r.updated_at,
        )
