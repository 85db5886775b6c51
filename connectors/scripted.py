"""A scripted target for engine tests and crash trials: a tiny system of record in SQLite.

It stores what it receives in its own SQLite file (so it survives the death of the process that
sends), and fails on cue: ``fail_next`` (the whole call), ``timeout_after_commit`` (writes land,
the caller hears nothing), ``reject`` (one record refused). In ``create`` mode every send inserts
a new record, like an API without idempotency keys, so a blind re-send shows up as a duplicate.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from core.documents import Document, WriteResult, canonical_json
from core.errors import OutcomeUnknownError, PermanentError, RateLimitedError, RetryableError
from finsync.config import Section

Mode = Literal["upsert", "create"]
_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    internal_id INTEGER PRIMARY KEY AUTOINCREMENT,
    external_id TEXT NOT NULL,
    record_type TEXT NOT NULL,
    operation TEXT NOT NULL,
    payload TEXT NOT NULL,
    writes INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS ix_records_external ON records (external_id);
"""


@dataclass(frozen=True)
class ScriptedSettings:
    """Where the scripted system keeps its records and how it behaves."""

    store: Path
    mode: Mode = "upsert"
    batch_size: int = 50
    latency_seconds: float = 0.0  # half before the write, half after it (before answering)

    @classmethod
    def from_section(cls, section: Section) -> ScriptedSettings:
        """Read ``[targets.<name>]`` of system ``scripted``. Raises ConfigError naming the key."""
        settings = cls(
            store=Path(section.str("store", required=True)),
            mode=section.str("mode", "upsert", choices=("upsert", "create")),
            batch_size=section.int("batch_size", 50, minimum=1, maximum=1000),
            latency_seconds=section.float("latency_seconds", 0.0),
        )
        section.str("system")
        section.bool("enabled", True)
        section.done()
        return settings


@dataclass
class _Faults:
    fail_next: list[Exception] = field(default_factory=list)
    timeouts_after_commit: int = 0
    rejected: dict[str, str] = field(default_factory=dict)


class ScriptedConnector:
    """A Connector over the scripted system. Thread-safe."""

    system = "scripted"

    def __init__(self, settings: ScriptedSettings) -> None:
        self.settings = settings
        self.max_batch = settings.batch_size
        self._faults = _Faults()
        self._lock = threading.Lock()
        settings.store.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(_SCHEMA)
        self.calls: list[tuple[str, tuple[str, ...]]] = []

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.settings.store, timeout=30, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            yield db
        finally:
            db.close()

    # -- scripting -------------------------------------------------------------------------

    def fail_next(
        self, times: int = 1, *, error: str = "retryable", retry_after: float | None = None
    ) -> None:
        """The next ``times`` calls fail as a whole: 'retryable', 'rate_limited' or 'permanent'."""
        for _ in range(times):
            if error == "retryable":
                exc: Exception = RetryableError(self.system, "send", "HTTP 503 Service Unavailable")
            elif error == "rate_limited":
                exc = RateLimitedError(
                    self.system, "send", "HTTP 429 Too Many Requests", retry_after=retry_after
                )
            else:
                exc = PermanentError(self.system, "send", "HTTP 400 Bad Request")
            self._faults.fail_next.append(exc)

    def timeout_after_commit(self, times: int = 1) -> None:
        """The next ``times`` sends are applied, then the caller gets a timeout."""
        self._faults.timeouts_after_commit += times

    def reject(self, external_id: str, message: str) -> None:
        """Refuse the record with ``external_id`` with ``message`` until ``clear_rejections``."""
        self._faults.rejected[external_id] = message

    def clear_rejections(self) -> None:
        """Stop refusing records."""
        self._faults.rejected.clear()

    # -- the system's contents ---------------------------------------------------------------

    def records(self) -> list[dict[str, object]]:
        """Every stored record (duplicates included), oldest first."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT internal_id, external_id, record_type, operation, payload, "
                "writes FROM records ORDER BY internal_id"
            ).fetchall()
        return [
            {
                "internal_id": r[0],
                "external_id": r[1],
                "record_type": r[2],
                "operation": r[3],
                "payload": json.loads(r[4]),
                "writes": r[5],
            }
            for r in rows
        ]

    # -- Connector ---------------------------------------------------------------------------

    def send(self, documents: Sequence[Document]) -> list[WriteResult]:
        """Store the documents; one result per document."""
        with self._lock:
            self.calls.append(("send", tuple(d.external_id for d in documents)))
            if self._faults.fail_next:
                raise self._faults.fail_next.pop(0)
            timeout = self._faults.timeouts_after_commit > 0
            if timeout:
                self._faults.timeouts_after_commit -= 1
            rejected = dict(self._faults.rejected)
        time.sleep(self.settings.latency_seconds / 2)
        results = []
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            for doc in documents:
                if doc.external_id in rejected:
                    results.append(
                        WriteResult(
                            doc.external_id,
                            ok=False,
                            error=PermanentError(
                                self.system, "send", rejected[doc.external_id], code="REJECTED"
                            ),
                        )
                    )
                    continue
                results.append(self._write(db, doc))
            db.execute("COMMIT")
        # A caller killed now has written to the target without recording it: the crash
        # trials rely on this window.
        time.sleep(self.settings.latency_seconds / 2)
        if timeout:
            raise OutcomeUnknownError(self.system, "send", "timed out waiting for the answer")
        return results

    def _write(self, db: sqlite3.Connection, doc: Document) -> WriteResult:
        payload = canonical_json(doc.payload)
        row = db.execute(
            "SELECT internal_id FROM records WHERE external_id = ? ORDER BY internal_id LIMIT 1",
            (doc.external_id,),
        ).fetchone()
        if row is not None and self.settings.mode == "upsert":
            db.execute(
                "UPDATE records SET payload = ?, operation = ?, writes = writes + 1 "
                "WHERE internal_id = ?",
                (payload, doc.operation, row[0]),
            )
            return WriteResult(doc.external_id, ok=True, internal_id=str(row[0]), created=False)
        cursor = db.execute(
            "INSERT INTO records (external_id, record_type, operation, payload) VALUES (?,?,?,?)",
            (doc.external_id, doc.record_type, doc.operation, payload),
        )
        return WriteResult(
            doc.external_id, ok=True, internal_id=str(cursor.lastrowid), created=True
        )

    def lookup(self, documents: Sequence[Document]) -> dict[str, str | None]:
        """Internal id of each document's external id, or None."""
        with self._lock:
            self.calls.append(("lookup", tuple(d.external_id for d in documents)))
        found: dict[str, str | None] = {}
        with self._connect() as db:
            for doc in documents:
                row = db.execute(
                    "SELECT MIN(internal_id) FROM records WHERE external_id = ?", (doc.external_id,)
                ).fetchone()
                found[doc.external_id] = str(row[0]) if row and row[0] is not None else None
        return found

    def close(self) -> None:
        """Nothing to release: every call opens its own connection."""
