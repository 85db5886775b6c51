"""Where a run's billing verdicts come from: the verdict store, a worker process, or a pass now.

Validation checks every billing record against the contract, so its cost grows with all of
billing's history. Its outcome, though, changes only when billing does. Each pass is therefore
stored in the state database (``billing_verdicts``) under a *fingerprint* of what it read:

- per billing table, the number of rows and a sum of hashes of every row, all its columns
  (computed by the database: ``hash_record_extended`` on PostgreSQL, a CRC of the values
  registered on the SQLite connection), so any change to any column of any row changes it,
  whether or not billing moved ``updated_at`` as the contract asks (an amount written with
  more trailing zeros, equal as a number, hashes the same on PostgreSQL and judges the same);
- the billing entities the mapping file knows (validation rejects others);
- a digest of what decides the verdicts (the rules' source, Babel's currency data), so a
  finsync upgrade that checks more never reuses verdicts of the rules before it.

A sync or a report whose fingerprint matches a stored pass reuses its verdicts instead of
checking history again; anything else validates. A pass is stored only when billing's
fingerprint was the same before and after it (nothing changed while it read). The store is an
accelerator, never a source of truth: when its table is missing (a state store not yet
upgraded by ``finsync init``) or unreadable, validation simply runs, as it always did.

On PostgreSQL, the pass may run in a worker process beside the extraction that needs its
verdicts (``RunVerdicts.start``): the worker reads billing over its own connection and hands
back only the verdicts (the rejected records), which are small.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import multiprocessing
import uuid
import zlib
from collections.abc import Collection, Iterable
from decimal import Decimal
from functools import lru_cache
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

import billing.records
import billing.validation
import core.money
import sync.extract
from billing import schema as billing_schema
from billing.validation import Rejection, Verdicts, validate_billing
from core.errors import Problem, first_line
from finsync.db import make_engine, utcnow
from sync.extract import BillingReader, RecordCache
from sync.state import billing_verdicts

log = logging.getLogger(__name__)

#: Passes kept in the store: the newest (billing moves forward; a few, so that callers judging
#: with different entity lists do not push each other's pass out). Each holds its rejections.
_KEEP = 4
#: The name of the row-hash function registered on SQLite connections.
_SQLITE_ROW_HASH = "finsync_row_crc"


# --- fingerprint ---------------------------------------------------------------------------


@lru_cache(maxsize=1)
def rules_digest() -> str:
    """A digest of what decides verdicts: the source of the validation package, the records it
    checks, the reader that builds them and the currency rules (with the version of Babel,
    whose data says which codes are currencies and their decimals)."""
    files = sorted(Path(billing.validation.__file__).parent.glob("*.py"))
    files += [Path(m.__file__ or "") for m in (billing.records, sync.extract, core.money)]
    digest = hashlib.sha256(importlib.metadata.version("babel").encode())
    try:
        for path in files:
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    except OSError:  # no source beside the code: this process's passes are its own
        return uuid.uuid4().hex
    return digest.hexdigest()


def _row_crc(*values: Any) -> int:
    return zlib.crc32(repr(values).encode())


def _table_digest(conn: sa.Connection, table: sa.Table) -> tuple[int, int]:
    """(rows, sum of row hashes) of one billing table, computed by the database."""
    name = conn.dialect.identifier_preparer.format_table(table)
    if conn.dialect.name == "postgresql":
        # Each column hashed by its type's own hash function (no text output of every value);
        # a view column of a type without one, or a server before PostgreSQL 14, hashes the
        # row's text instead.
        for row_hash in ("hash_record_extended(t, 0)", "hashtextextended(t::text, 0)"):
            query = f"SELECT count(*), coalesce(sum({row_hash}), 0) FROM {name} t"
            try:
                with conn.begin_nested():
                    rows, total = conn.execute(sa.text(query)).one()
                break
            except sa.exc.DBAPIError:
                if row_hash.startswith("hashtext"):
                    raise
    else:
        columns = ", ".join(conn.dialect.identifier_preparer.quote(c.name) for c in table.c)
        query = f"SELECT count(*), coalesce(sum({_SQLITE_ROW_HASH}({columns})), 0) FROM {name}"
        rows, total = conn.execute(sa.text(query)).one()
    return int(rows), int(total)


def billing_fingerprint(conn: sa.Connection, entities: Collection[str] | None) -> str | None:
    """The fingerprint of what validation would read now (see the module), or None where
    this database cannot compute one (then nothing is stored or reused)."""
    dialect = conn.dialect.name
    if dialect == "sqlite":
        raw = conn.connection.driver_connection
        if raw is None:
            return None
        raw.create_function(_SQLITE_ROW_HASH, -1, _row_crc, deterministic=True)
    elif dialect != "postgresql":
        return None
    digest = hashlib.sha256(rules_digest().encode())
    digest.update(json.dumps(sorted(entities) if entities is not None else None).encode())
    try:
        for table in billing_schema.metadata.sorted_tables:
            rows, total = _table_digest(conn, table)
            digest.update(f"{table.name}:{rows}:{total};".encode())
    except sa.exc.DBAPIError:  # a table missing, say: validation reports it in its own words
        conn.rollback()
        return None
    return digest.hexdigest()


# --- the store -----------------------------------------------------------------------------


def _encode(verdicts: Verdicts) -> str:
    return json.dumps(
        [
            [
                r.kind,
                r.record_id,
                r.label,
                r.currency,
                None if r.amount is None else str(r.amount),
                [[p.field, p.message] for p in r.problems],
            ]
            for r in verdicts.rejections
        ]
    )


def _decode(text: str) -> Verdicts:
    return Verdicts(
        Rejection(
            kind=kind,
            record_id=int(record_id),
            label=label,
            currency=currency,
            amount=None if amount is None else Decimal(amount),
            problems=tuple(Problem(f, m) for f, m in problems),
        )
        for kind, record_id, label, currency, amount, problems in json.loads(text)
    )


def stored_verdicts(state: Engine, fingerprint: str) -> Verdicts | None:
    """The verdicts stored under ``fingerprint``, or None (none stored, or no store)."""
    stmt = sa.select(billing_verdicts.c.rejections).where(
        billing_verdicts.c.fingerprint == fingerprint
    )
    try:
        with state.connect() as conn:
            text = conn.execute(stmt).scalar_one_or_none()
    except sa.exc.DBAPIError as exc:
        reason = first_line(exc.orig)
        log.warning("verdict store not read (%s); billing is validated in full", reason)
        return None
    return None if text is None else _decode(text)


def store_verdicts(state: Engine, fingerprint: str, verdicts: Verdicts) -> None:
    """Keep ``verdicts`` under ``fingerprint``, and only the newest few passes beside it."""
    newest = sa.select(billing_verdicts.c.id).order_by(billing_verdicts.c.id.desc()).limit(_KEEP)
    try:
        with state.begin() as conn:
            conn.execute(
                sa.delete(billing_verdicts).where(billing_verdicts.c.fingerprint == fingerprint)
            )
            conn.execute(
                sa.insert(billing_verdicts).values(
                    fingerprint=fingerprint,
                    computed_at=utcnow(),
                    rejected=len(verdicts),
                    rejections=_encode(verdicts),
                )
            )
            conn.execute(
                sa.delete(billing_verdicts).where(
                    billing_verdicts.c.id.not_in(sa.select(newest.subquery().c.id))
                )
            )
    except sa.exc.DBAPIError as exc:  # a second pass stored the same fingerprint meanwhile
        log.warning("verdicts not stored (%s); the next run validates again", first_line(exc.orig))


def billing_verdicts_for(
    billing: Engine,
    state: Engine | None,
    entities: Collection[str] | None,
    *,
    records: RecordCache | None = None,
) -> Verdicts:
    """The verdicts on billing as it is now: stored ones when billing's fingerprint matches a
    stored pass, else a pass now (stored when billing did not change while it read).

    ``state`` None validates without the store; ``records`` keeps the records a pass builds.
    """
    with billing.connect() as conn:
        before = billing_fingerprint(conn, entities) if state is not None else None
        if state is not None and before is not None:
            found = stored_verdicts(state, before)
            if found is not None:
                return found
        verdicts = validate_billing(BillingReader(conn, cache=records), entities=entities)
        if state is not None and before is not None:
            conn.rollback()  # a fresh snapshot: see what changed while the pass read
            if billing_fingerprint(conn, entities) == before:
                store_verdicts(state, before, verdicts)
    return verdicts


# --- a pass in a worker process ------------------------------------------------------------


def _validate_urls(billing_url: str, state_url: str, entities: tuple[str, ...]) -> Verdicts | None:
    """The verdicts on the billing database at ``billing_url``, over connections of this
    process; None when anything goes wrong (the caller then validates in-process, where the
    error is raised and worded as usual)."""
    try:
        billing = make_engine(billing_url, key="billing.url", read_only=True)
        state = make_engine(state_url, key="state.url")
        try:
            return billing_verdicts_for(billing, state, entities)
        finally:
            billing.dispose()
            state.dispose()
    except Exception:  # reported by the in-process validation that follows
        return None


def _work(answer: Connection, billing_url: str, state_url: str, entities: tuple[str, ...]) -> None:
    answer.send(_validate_urls(billing_url, state_url, entities))
    answer.close()


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


class BackgroundValidation:
    """One validation of billing running in a worker process (spawned, so it shares nothing
    with this process's threads or connections)."""

    def __init__(self, billing: Engine, state: Engine, entities: Collection[str]) -> None:
        context = multiprocessing.get_context("spawn")
        self._answer, answer = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_work,
            args=(answer, _url(billing), _url(state), tuple(entities)),
            name="finsync-validation",
        )
        self._process.daemon = True  # never outlives the run that started it
        self._process.start()
        answer.close()

    def done(self) -> bool:
        """True once the worker has answered (or died)."""
        return self._answer.poll() or not self._process.is_alive()

    def result(self) -> Verdicts | None:
        """Wait for the worker: its verdicts, or None when it failed or died."""
        try:
            verdicts: Verdicts | None = self._answer.recv()
        except (EOFError, OSError):
            verdicts = None
        self._answer.close()
        self._process.join()
        return verdicts

    def cancel(self) -> None:
        """Stop the worker: the run ended without needing its verdicts."""
        self._answer.close()
        self._process.terminate()
        self._process.join()


# --- one run's verdicts --------------------------------------------------------------------


class RunVerdicts:
    """Billing validation for one run, computed on first use and shared by every target.

    A sync that reads no changed record never pays for the pass over billing, and a sync of
    billing that has not changed since the last pass reuses its stored verdicts. On
    PostgreSQL the pass may run in a worker process (``start``) while extraction goes on
    reading and mapping; in-process, the records the pass builds are kept (``records``) for
    the run's extraction, which then reads only their keys instead of building them again.
    """

    def __init__(self, billing: Engine, state: Engine, entities: Iterable[str]) -> None:
        self._billing = billing
        self._state = state
        self._entities = tuple(entities)
        self._verdicts: Verdicts | None = None
        self._worker: BackgroundValidation | None = None
        self.records = RecordCache()

    def known(self) -> Verdicts | None:
        """The verdicts if this run has them already, else None (nothing is read)."""
        if self._verdicts is None and self._worker is not None and self._worker.done():
            self.get()
        return self._verdicts

    def start(self) -> bool:
        """Begin validating in a worker process, unless the verdicts are known, a worker runs
        already, or billing is not PostgreSQL. True when a worker is (now) validating."""
        if (
            self._verdicts is None
            and self._worker is None
            and self._billing.dialect.name == "postgresql"
        ):
            self._worker = BackgroundValidation(self._billing, self._state, self._entities)
        return self._verdicts is None and self._worker is not None

    def get(self) -> Verdicts:
        """The verdicts of this run (read on the first call, or the worker's awaited)."""
        if self._verdicts is None and self._worker is not None:
            worker, self._worker = self._worker, None
            self._verdicts = worker.result()
        if self._verdicts is None:
            self._verdicts = billing_verdicts_for(
                self._billing, self._state, self._entities, records=self.records
            )
        return self._verdicts

    def close(self) -> None:
        """Stop a worker whose verdicts were never needed."""
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None
