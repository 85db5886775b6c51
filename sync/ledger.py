"""The ledger: the outbox of every document finsync sends, one row per (target, kind, record).

All SQL on the state store's ledger, cursors and events lives here. Extraction enqueues mapped
documents (``enqueue``) in the same transaction that advances the cursor (``save_cursor``), so a
record is in the ledger before the cursor moves past it. Pushing claims due rows (``claim``) under
a lease and records each outcome (``record_successes``, ``record_failures``). A document whose
payload hash is unchanged is not sent again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine, RowMapping
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import BindParameter

from billing.records import (
    CreditNote,
    Customer,
    Invoice,
    Payment,
    Refund,
    RevenueEntry,
    SourceRecord,
)
from core.documents import DocKey, Document, canonical_json, hash_payload_text
from core.errors import MappingError
from finsync.db import UTCDateTime
from sync.extract import Cursor
from sync.state import cursors, ledger, ledger_events


@runtime_checkable
class AggregateRecord(Protocol):
    """A document source that is not one billing row (a month's revenue journal, sync.revrec).

    It states its own ledger facts; ``id`` is its source id in the ledger.
    """

    @property
    def id(self) -> str:
        """The ledger's source id."""
        ...

    @property
    def label(self) -> str:
        """How messages name the record."""
        ...

    @property
    def document_date(self) -> date | None:
        """The date the ledger files the document under."""
        ...

    @property
    def updated_at(self) -> datetime | None:
        """When its billing data last changed, if known."""
        ...


@dataclass(frozen=True)
class MapOutcome:
    """A source record and what mapping made of it: a document, or the reason it cannot be."""

    record: SourceRecord | AggregateRecord
    result: Document | MappingError


@dataclass
class EnqueueCounts:
    """What one enqueue did: new and changed documents, unchanged ones, mapping failures."""

    new: int = 0
    changed: int = 0
    unchanged: int = 0
    failed: int = 0

    def add(self, other: EnqueueCounts) -> None:
        """Accumulate ``other`` into this."""
        self.new += other.new
        self.changed += other.changed
        self.unchanged += other.unchanged
        self.failed += other.failed


def record_facts(record: SourceRecord | AggregateRecord) -> dict[str, Any]:
    """Label, customer account and document date of a record, as the ledger indexes them."""
    document_date: date | None
    if isinstance(record, Customer):
        account: str | None = record.account_number
        document_date = None
    elif isinstance(record, Invoice | CreditNote):
        account, document_date = record.customer_account, record.issue_date
    elif isinstance(record, Payment):
        account, document_date = record.customer_account, record.received_on
    elif isinstance(record, Refund):
        account, document_date = record.customer_account, record.refunded_on
    elif isinstance(record, RevenueEntry):
        account, document_date = None, record.period
    elif isinstance(record, AggregateRecord):
        account, document_date = None, record.document_date
    else:  # pragma: no cover - the union above is exhaustive
        raise TypeError(type(record).__name__)
    return {
        "label": record.label,
        "customer_account": account,
        "document_date": document_date,
        "source_updated_at": record.updated_at,
    }


def _event(
    ledger_id: int,
    event: str,
    status: str,
    now: datetime,
    run_id: int | None,
    detail: str | None = None,
) -> dict[str, Any]:
    return {
        "ledger_id": ledger_id,
        "at": now,
        "run_id": run_id,
        "event": event,
        "status": status,
        "detail": detail,
    }


def source_id_among(
    conn: Connection, source_ids: Sequence[str]
) -> Iterator[sa.ColumnElement[bool]]:
    """``source_id`` among ``source_ids``, in chunks the database takes: one array parameter
    on PostgreSQL (an index probe per id), IN lists of 900 on SQLite (its variable limit)."""
    if conn.dialect.name == "postgresql":
        for start in range(0, len(source_ids), 5000):
            chunk = list(source_ids[start : start + 5000])
            yield ledger.c.source_id == sa.any_(
                sa.bindparam(None, chunk, type_=postgresql.ARRAY(sa.String()))
            )
        return
    for start in range(0, len(source_ids), 900):
        yield ledger.c.source_id.in_(source_ids[start : start + 900])


def _id_among(conn: Connection, ids: list[int]) -> sa.ColumnElement[bool]:
    """``id`` among ``ids`` (one batch): an array parameter on PostgreSQL, else an IN list."""
    if conn.dialect.name == "postgresql":
        return ledger.c.id == sa.any_(
            sa.bindparam(None, ids, type_=postgresql.ARRAY(sa.BigInteger()))
        )
    return ledger.c.id.in_(ids)


def _existing(
    conn: Connection, target: str, kind: str, source_ids: Sequence[str]
) -> dict[str, RowMapping]:
    found: dict[str, RowMapping] = {}
    for among in source_id_among(conn, source_ids):
        query = sa.select(
            ledger.c.id,
            ledger.c.source_id,
            ledger.c.status,
            ledger.c.payload_hash,
            ledger.c.synced_hash,
            ledger.c.error_kind,
            ledger.c.last_error,
        ).where(ledger.c.target == target, ledger.c.kind == kind, among)
        for row in conn.execute(query).mappings():
            found[row["source_id"]] = row
    return found


def withdraw_unsent(
    conn: Connection, *, target: str, kind: str, source_ids: Sequence[str]
) -> set[str]:
    """Forget the documents of ``source_ids`` that ``target`` never received; return the ids
    it did receive at some point (those still need their reversal sent).

    For records that turned out to be nothing to send (a payment that failed before it was
    ever synced): a row still waiting to go out, never synced, is deleted with its history.
    A row being sent right now is left alone and counts as received.
    """
    received: set[str] = set()
    unsent: list[int] = []
    for source_id, row in _existing(conn, target, kind, source_ids).items():
        if row["synced_hash"] is not None or row["status"] == "sending":
            received.add(source_id)
        else:
            unsent.append(row["id"])
    if unsent:
        conn.execute(ledger_events.delete().where(ledger_events.c.ledger_id.in_(unsent)))
        conn.execute(ledger.delete().where(ledger.c.id.in_(unsent)))
    return received


def rows_of_kind(conn: Connection, target: str, kind: str) -> list[RowMapping]:
    """Every ledger row of (target, kind) with its payloads, by source id order.

    For aggregated kinds (revenue journals) whose documents are planned from what was sent.
    """
    query = (
        sa.select(
            ledger.c.id,
            ledger.c.source_id,
            ledger.c.status,
            ledger.c.payload,
            ledger.c.payload_hash,
            ledger.c.synced_payload,
            ledger.c.synced_hash,
            ledger.c.error_kind,
        )
        .where(ledger.c.target == target, ledger.c.kind == kind)
        .order_by(ledger.c.source_id)
    )
    return list(conn.execute(query).mappings())


def _record_enqueued(
    conn: Connection,
    target: str,
    kind: str,
    source_ids: Sequence[str],
    now: datetime,
    run_id: int | None,
) -> None:
    """One history event per new ledger row, written by the database from the rows themselves
    (no round trip for their ids)."""
    event = sa.case((ledger.c.status == "failed", "mapping_failed"), else_="enqueued")
    for among in source_id_among(conn, source_ids):
        rows = sa.select(
            ledger.c.id,
            sa.literal(now, UTCDateTime()),
            sa.literal(run_id, sa.BigInteger()),
            event,
            ledger.c.status,
            ledger.c.last_error,
        ).where(ledger.c.target == target, ledger.c.kind == kind, among)
        conn.execute(
            ledger_events.insert().from_select(
                ["ledger_id", "at", "run_id", "event", "status", "detail"], rows
            )
        )


def analyze(engine: Engine, *, vacuum: bool = False) -> None:
    """Refresh PostgreSQL's statistics of the ledger after a large enqueue, and with ``vacuum``
    also clear the dead row versions a large push leaves in its status index (autovacuum would,
    a minute later; the next claims should not wait for it). No-op on SQLite."""
    if engine.dialect.name != "postgresql":
        return
    if vacuum:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM (ANALYZE) ledger"))
        return
    with engine.begin() as conn:
        conn.execute(sa.text("ANALYZE ledger"))


def _lock_kind(conn: Connection, target: str, kind: str) -> None:
    """Serialise enqueues of one (target, kind) across processes until the transaction ends.

    Two syncs running at once then never insert the same ledger row twice: the second one
    sees the first one's rows and finds them unchanged. (SQLite has one writer anyway.)
    """
    if conn.dialect.name == "postgresql":
        key = sa.func.hashtext(f"finsync.enqueue:{target}:{kind}")
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))
        # During a first sync the ledger grows by thousands of rows a page, faster than
        # autovacuum refreshes its statistics; a planner that still believes it small scans the
        # whole (wide) table for every page's look-ups. They are index probes: say so.
        conn.execute(sa.text("SET LOCAL enable_seqscan = off"))


def _holds(row: RowMapping | None, result: Document | MappingError) -> bool:
    """The ledger row already holds ``result`` as it is: an enqueue would leave it alone."""
    if row is None:
        return False
    if isinstance(result, MappingError):
        return bool(row["error_kind"] == "mapping" and row["last_error"] == str(result))
    digest = hash_payload_text(result.operation, canonical_json(result.payload))
    return bool(row["payload_hash"] == digest and row["error_kind"] != "mapping")


def holds_unchanged(
    conn: Connection, *, target: str, kind: str, outcomes: Sequence[MapOutcome]
) -> bool:
    """True when the ledger holds every outcome as it is, so enqueuing them writes nothing.

    Takes the enqueue lock of (target, kind), so the answer holds until the transaction ends.
    """
    _lock_kind(conn, target, kind)
    existing = _existing(conn, target, kind, [str(o.record.id) for o in outcomes])
    return all(_holds(existing.get(str(o.record.id)), o.result) for o in outcomes)


def enqueue(
    conn: Connection,
    *,
    target: str,
    kind: str,
    outcomes: Sequence[MapOutcome],
    run_id: int | None,
    now: datetime,
) -> EnqueueCounts:
    """Put mapped documents (and mapping failures) into the ledger.

    New documents become ``pending``; a changed payload makes its row ``pending`` again with
    attempts reset; an unchanged payload is skipped; a payload equal to what the target already
    holds is ``synced``. A record that cannot be mapped becomes ``failed`` with the message.
    """
    counts = EnqueueCounts()
    _lock_kind(conn, target, kind)
    source_ids = [str(o.record.id) for o in outcomes]
    existing = _existing(conn, target, kind, source_ids)
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for outcome in outcomes:
        source_id = str(outcome.record.id)
        facts = record_facts(outcome.record)
        row = existing.get(source_id)
        if isinstance(outcome.result, MappingError):
            message = str(outcome.result)
            if row is not None and row["error_kind"] == "mapping" and row["last_error"] == message:
                counts.unchanged += 1
                continue
            counts.failed += 1
            values = {
                **facts,
                "status": "failed",
                "error_kind": "mapping",
                "last_error": message,
                "payload": None,
                "payload_hash": None,
                "next_attempt_at": None,
                "run_id": run_id,
                "updated_at": now,
            }
            if row is None:
                inserts.append(
                    {
                        **values,
                        "target": target,
                        "kind": kind,
                        "source_id": source_id,
                        "external_id": None,
                        "record_type": None,
                        "operation": "upsert",
                        "attempts": 0,
                        "depends_on": "[]",
                        "created_at": now,
                    }
                )
            else:
                updates.append({**values, "_id": row["id"]})
                events.append(_event(row["id"], "mapping_failed", "failed", now, run_id, message))
            continue
        doc = outcome.result
        payload_text = canonical_json(doc.payload)
        digest = hash_payload_text(doc.operation, payload_text)
        if row is not None and row["payload_hash"] == digest and row["error_kind"] != "mapping":
            counts.unchanged += 1
            continue
        status = "synced" if row is not None and row["synced_hash"] == digest else "pending"
        values = {
            **facts,
            "external_id": doc.external_id,
            "record_type": doc.record_type,
            "operation": doc.operation,
            "status": status,
            "payload": payload_text,
            "payload_hash": digest,
            "depends_on": json.dumps([str(k) for k in doc.depends_on]),
            "attempts": 0,
            "next_attempt_at": None,
            "last_error": None,
            "error_kind": None,
            "run_id": run_id,
            "updated_at": now,
        }
        if row is None:
            counts.new += 1
            inserts.append(
                {
                    **values,
                    "target": target,
                    "kind": kind,
                    "source_id": source_id,
                    "created_at": now,
                }
            )
        else:
            counts.changed += 1
            updates.append({**values, "_id": row["id"]})
            events.append(
                _event(
                    row["id"],
                    "changed",
                    status,
                    now,
                    run_id,
                    f"{doc.operation}: billing record changed",
                )
            )
    if inserts:
        for group in _same_keys(inserts):
            _insert(conn, group)
        _record_enqueued(conn, target, kind, [r["source_id"] for r in inserts], now, run_id)
    for group in _same_keys(updates):
        bulk_update(conn, group)
    if events:
        conn.execute(ledger_events.insert(), events)
    return counts


def _insert(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ledger rows that all have the same keys: by COPY on PostgreSQL (about three
    times the rate of an INSERT per row), by executemany elsewhere. Values go through the
    columns' types either way (a naive timestamp is refused)."""
    if conn.dialect.name != "postgresql":
        conn.execute(ledger.insert(), list(rows))
        return
    columns = list(rows[0])
    processors = [ledger.c[c].type.bind_processor(conn.dialect) for c in columns]
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(f"COPY ledger ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(
                [
                    row[c] if process is None or row[c] is None else process(row[c])
                    for c, process in zip(columns, processors, strict=True)
                ]
            )


def _same_keys(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    return list(groups.values())


def _replaced(expression: sa.ColumnElement[Any], replace: Callable[..., Any]) -> Any:
    """``expression`` with the elements ``replace`` gives a substitute for replaced."""
    options: dict[str, Any] = {}
    return visitors.replacement_traverse(expression, options, replace)


def bulk_update(conn: Connection, rows: Sequence[Mapping[str, Any]], **fixed: Any) -> None:
    """Update ledger rows by id: each row maps ``_id`` and column values.

    ``fixed`` values (plain values or SQL expressions) are the same for every row; an
    expression may name a row's new value as ``sa.bindparam("p_<column>")``. On PostgreSQL
    the whole batch is one ``UPDATE ... FROM unnest(<an array per column>)``; elsewhere one
    executemany.
    """
    if not rows:
        return
    columns = [c for c in rows[0] if c != "_id"]
    if conn.dialect.name == "postgresql":
        # One array parameter per column, unnested into rows: the statement is the same for
        # any number of rows, so it is compiled once and sent small (a VALUES list of
        # thousands of parameters cost more to compile and parse than to run).
        names = ["id", *columns]
        types = [sa.BigInteger(), *(ledger.c[c].type for c in columns)]
        arrays = [[row["_id"] for row in rows], *([row[c] for row in rows] for c in columns)]
        new = (
            sa.func.unnest(
                *(
                    sa.bindparam(f"a_{name}", values, type_=postgresql.ARRAY(type_))
                    for name, type_, values in zip(names, types, arrays, strict=True)
                )
            )
            .table_valued(*(sa.column(n, t) for n, t in zip(names, types, strict=True)))
            .render_derived(name="new")
        )

        def from_new(element: Any, **_kw: Any) -> Any:
            if isinstance(element, BindParameter) and element.key[2:] in columns:
                return new.c[element.key[2:]]
            return None

        statement = (
            ledger.update()
            # The ids once more as an array: the planner then probes the primary key for the
            # batch instead of hashing a scan of the whole ledger (a cost that grew with it).
            .where(ledger.c.id == new.c.id, _id_among(conn, arrays[0]))
            .values(
                {
                    **{c: new.c[c] for c in columns},
                    **{
                        c: _replaced(v, from_new) if isinstance(v, sa.ColumnElement) else v
                        for c, v in fixed.items()
                    },
                }
            )
        )
        conn.execute(statement)
        return
    statement = (
        ledger.update()
        .where(ledger.c.id == sa.bindparam("p__id"))
        .values({**{c: sa.bindparam(f"p_{c}") for c in columns}, **fixed})
    )
    conn.execute(statement, [{f"p_{k}": v for k, v in row.items()} for row in rows])


# -- cursors -------------------------------------------------------------------------------


def load_cursor(conn: Connection, target: str, kind: str) -> Cursor | None:
    """The saved cursor of (target, kind), or None before the first read."""
    row = conn.execute(
        sa.select(cursors.c.updated_at, cursors.c.last_id).where(
            cursors.c.target == target, cursors.c.kind == kind
        )
    ).first()
    return Cursor(row.updated_at, row.last_id) if row else None


def save_cursor(conn: Connection, target: str, kind: str, cursor: Cursor, now: datetime) -> None:
    """Advance the cursor of (target, kind); it never moves backwards."""
    current = load_cursor(conn, target, kind)
    if current is not None and current >= cursor:
        return
    values = {"updated_at": cursor.updated_at, "last_id": cursor.last_id, "changed_at": now}
    if current is None:
        conn.execute(cursors.insert().values(target=target, kind=kind, **values))
    else:
        conn.execute(
            cursors.update()
            .where(cursors.c.target == target, cursors.c.kind == kind)
            .values(**values)
        )


def reset_cursor(conn: Connection, target: str, kind: str) -> None:
    """Forget the cursor so the next sync re-reads every record of the kind."""
    conn.execute(cursors.delete().where(cursors.c.target == target, cursors.c.kind == kind))


# -- claiming and outcomes -----------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    """A ledger row claimed for sending, with the document rebuilt from it."""

    ledger_id: int
    document: Document
    attempts: int
    suspect: bool  # a previous send may have been applied: look it up before sending again
    previously_synced: bool
    payload_text: str  # the canonical JSON stored in the ledger, i.e. what is sent
    payload_hash: str


@dataclass(frozen=True)
class ClaimBatch:
    """What one claim took: the claimed documents and the last ledger id it looked at (None
    when nothing was due). Rows looked at but postponed are not in ``items``."""

    items: list[Claimed]
    last_id: int | None


def _document(row: RowMapping, known_ids: Mapping[str, str] | None = None) -> Document:
    return Document(
        target=row["target"],
        kind=row["kind"],
        source_id=row["source_id"],
        external_id=row["external_id"],
        record_type=row["record_type"],
        label=row["label"],
        payload=json.loads(row["payload"]),
        operation=row["operation"],
        depends_on=tuple(DocKey(*k.split(":", 1)) for k in json.loads(row["depends_on"])),
        known_ids=known_ids or {},
    )


@dataclass(frozen=True)
class _Dependency:
    """What the ledger holds of a document another one depends on."""

    status: str
    label: str | None
    external_id: str | None
    internal_id: str | None


def _dependency_status(
    conn: Connection, target: str, keys: Iterable[DocKey]
) -> dict[DocKey, _Dependency]:
    by_kind: dict[str, list[str]] = {}
    for key in keys:
        by_kind.setdefault(key.kind, []).append(key.source_id)
    found: dict[DocKey, _Dependency] = {}
    for kind, ids in by_kind.items():
        for among in source_id_among(conn, ids):
            rows = conn.execute(
                sa.select(
                    ledger.c.source_id,
                    ledger.c.status,
                    ledger.c.label,
                    ledger.c.external_id,
                    ledger.c.internal_id,
                ).where(ledger.c.target == target, ledger.c.kind == kind, among)
            )
            for source_id, status, label, external_id, internal_id in rows:
                found[DocKey(kind, source_id)] = _Dependency(
                    status, label, external_id, internal_id
                )
    return found


def claim(
    conn: Connection,
    *,
    target: str,
    kind: str,
    worker: str,
    now: datetime,
    limit: int,
    lease: timedelta,
    wait: timedelta,
    after_id: int = 0,
) -> ClaimBatch:
    """Claim up to ``limit`` due documents of (target, kind) for ``worker`` under a lease.

    Due: ``pending`` or ``retry`` whose ``next_attempt_at`` has come, or ``sending`` whose lease
    ran out (its outcome is unknown, so it is marked suspect). Documents whose dependencies are
    not synced yet are postponed by ``wait`` with a note. Rows are locked with FOR UPDATE SKIP
    LOCKED on PostgreSQL, so concurrent workers never claim the same row. On SQLite the claim
    first takes the database's write lock, so a second claimer waits and then reads the rows
    this one claimed as claimed (pysqlite starts a transaction only at the first write: without
    it two claimers could read the same due rows and both send them).

    Only rows with an id above ``after_id`` are looked at: a worker draining the queue passes
    the last id it saw, so each claim starts where the previous one ended instead of stepping
    over every row already synced (which made a first sync of 100,000 records quadratic).
    """
    if conn.dialect.name == "sqlite":
        # A write statement, even one that changes nothing, takes SQLite's write lock for the
        # rest of this transaction (held until the claim commits).
        conn.execute(ledger.update().where(sa.false()).values(id=ledger.c.id))
    due = sa.or_(
        sa.and_(
            ledger.c.status.in_(("pending", "retry")),
            sa.or_(ledger.c.next_attempt_at.is_(None), ledger.c.next_attempt_at <= now),
        ),
        sa.and_(ledger.c.status == "sending", ledger.c.claimed_until < now),
    )
    query = (
        sa.select(ledger)
        .where(ledger.c.target == target, ledger.c.kind == kind, ledger.c.id > after_id, due)
        .order_by(ledger.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = list(conn.execute(query).mappings())
    if not rows:
        return ClaimBatch([], None)
    dependencies = _dependency_status(
        conn, target, {DocKey(*k.split(":", 1)) for r in rows for k in json.loads(r["depends_on"])}
    )
    claimed: list[Claimed] = []
    postponed: list[dict[str, Any]] = []
    missing = _Dependency("missing", None, None, None)
    for row in rows:
        needed = [
            (key, dependencies.get(key, missing))
            for key in (DocKey(*k.split(":", 1)) for k in json.loads(row["depends_on"]))
        ]
        waiting = [(key, dep) for key, dep in needed if dep.status != "synced"]
        if waiting:
            key, dep = waiting[0]
            note = f"waiting for {dep.label or key} ({dep.status}) to sync first"
            postponed.append(
                {
                    "_id": row["id"],
                    "next_attempt_at": now + wait,
                    "last_error": note,
                    "updated_at": now,
                }
            )
            continue
        claimed.append(
            Claimed(
                ledger_id=row["id"],
                document=_document(
                    row,
                    {
                        dep.external_id: dep.internal_id
                        for _, dep in needed
                        if dep.external_id and dep.internal_id
                    },
                ),
                attempts=row["attempts"] + 1,
                suspect=row["status"] == "sending" or row["error_kind"] == "unknown",
                previously_synced=row["synced_hash"] is not None,
                payload_text=row["payload"],
                payload_hash=row["payload_hash"],
            )
        )
    bulk_update(
        conn,
        postponed,
        status=sa.case((ledger.c.status == "sending", "pending"), else_=ledger.c.status),
    )
    bulk_update(
        conn,
        [{"_id": c.ledger_id, "attempts": c.attempts} for c in claimed],
        status="sending",
        claimed_by=worker,
        claimed_until=now + lease,
        updated_at=now,
    )
    return ClaimBatch(claimed, rows[-1]["id"])


@dataclass(frozen=True)
class Success:
    """A claimed document the target now holds."""

    claimed: Claimed
    internal_id: str | None
    details: Mapping[str, Any] | None = None
    created: bool | None = None


@dataclass(frozen=True)
class Failure:
    """A claimed document that was not written: ``retry`` (at a time), ``dead`` or ``failed``."""

    claimed: Claimed
    status: str
    error_kind: str
    message: str
    next_attempt_at: datetime | None = None


def record_successes(
    conn: Connection, successes: Sequence[Success], *, now: datetime, run_id: int | None
) -> None:
    """Mark documents synced, in two statements for the whole batch (three when a payload
    changed in flight).

    A row whose payload changed in billing while it was in flight goes back to ``pending``,
    so the newer payload is sent too. The payload sent is what the row still holds unless it
    changed in flight, so only those rows are sent their ``synced_payload`` text.
    """
    if not successes:
        return
    unchanged = ledger.c.payload_hash == sa.bindparam("p_synced_hash")
    bulk_update(
        conn,
        [
            {
                "_id": s.claimed.ledger_id,
                "synced_hash": s.claimed.payload_hash,
                "internal_id": s.internal_id,
                "result": json.dumps(s.details or {}, sort_keys=True),
            }
            for s in successes
        ],
        synced_payload=sa.case((unchanged, ledger.c.payload), else_=None),
        status=sa.case((unchanged, "synced"), else_="pending"),
        last_error=None,
        error_kind=None,
        next_attempt_at=None,
        claimed_by=None,
        claimed_until=None,
        synced_at=now,
        updated_at=now,
        run_id=run_id,
    )
    by_id = {s.claimed.ledger_id: s.claimed for s in successes}
    moved = conn.execute(
        sa.select(ledger.c.id).where(
            _id_among(conn, list(by_id)),
            ledger.c.synced_hash.is_distinct_from(ledger.c.payload_hash),
        )
    ).scalars()
    bulk_update(conn, [{"_id": i, "synced_payload": by_id[i].payload_text} for i in moved])
    conn.execute(
        ledger_events.insert(),
        [
            _event(
                s.claimed.ledger_id,
                "created" if s.created else ("updated" if s.created is False else "synced"),
                "synced",
                now,
                run_id,
                f"{s.claimed.document.operation} ok, id {s.internal_id}" if s.internal_id else None,
            )
            for s in successes
        ],
    )


def record_failures(
    conn: Connection, failures: Sequence[Failure], *, now: datetime, run_id: int | None
) -> None:
    """Record failed sends, in two statements for the whole batch."""
    if not failures:
        return
    bulk_update(
        conn,
        [
            {
                "_id": f.claimed.ledger_id,
                "status": f.status,
                "error_kind": f.error_kind,
                "last_error": f.message,
                "next_attempt_at": f.next_attempt_at,
            }
            for f in failures
        ],
        claimed_by=None,
        claimed_until=None,
        updated_at=now,
        run_id=run_id,
    )
    conn.execute(
        ledger_events.insert(),
        [
            _event(f.claimed.ledger_id, f.error_kind, f.status, now, run_id, f.message)
            for f in failures
        ],
    )


def extend_lease(
    conn: Connection, claimed: Sequence[Claimed], *, worker: str, until: datetime
) -> int:
    """Keep ``worker``'s claims on ``claimed`` until ``until`` while their send is in flight
    (a slow send must not look like a dead worker); rows already recorded are left alone."""
    if not claimed:
        return 0
    result = conn.execute(
        ledger.update()
        .where(
            ledger.c.id.in_([c.ledger_id for c in claimed]),
            ledger.c.status == "sending",
            ledger.c.claimed_by == worker,
        )
        .values(claimed_until=until)
    )
    return int(result.rowcount or 0)


def release(conn: Connection, claimed: Sequence[Claimed], *, message: str, now: datetime) -> None:
    """Give claimed rows back untouched (e.g. credentials were refused): no attempt counted."""
    bulk_update(
        conn,
        [{"_id": c.ledger_id, "attempts": c.attempts - 1} for c in claimed],
        status="pending",
        last_error=message,
        claimed_by=None,
        claimed_until=None,
        updated_at=now,
    )
