"""What every figure of the monthly workbook shares: the period, the records validation left
out, per-currency tallies, streamed reads and the ledger lookup.

Amounts are ``Decimal``: rows stream (``yield_per``) and are summed in Python, because SQLite would
sum money as floats and a month can hold a million invoice lines; only PostgreSQL, whose NUMERIC
sums are exact, may sum in SQL. Every figure follows docs/accounting.md; an invoice's void date is
``voided_at`` in the company's time zone.
"""

from __future__ import annotations

import calendar
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from functools import cached_property
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from billing.validation import Rejection
from core.errors import ConfigError
from mappings.tables import MappingTables
from sync.ledger import source_id_among
from sync.state import ledger
from sync.verdicts import billing_verdicts_for

ZERO = Decimal(0)


#: Rows fetched per round trip, and source ids looked up in the ledger per query.
CHUNK = 2000


#: Ledger statuses that need someone's attention (the Reconciliation sheet's exceptions).
EXCEPTION_STATUSES = ("failed", "dead", "retry")


T = TypeVar("T")


@dataclass(frozen=True)
class Period:
    """One calendar month: ``start`` (first day) to ``end`` (last day), both inclusive."""

    start: date
    end: date

    @property
    def label(self) -> str:
        """``YYYY-MM``."""
        return f"{self.start:%Y-%m}"


def parse_period(text: str) -> Period:
    """Parse ``YYYY-MM`` into a ``Period``. Raises ConfigError naming ``period``."""
    match = re.fullmatch(r"(\d{4})-(\d{2})", text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ConfigError("period", f"must be a month written YYYY-MM, got {text!r}")
    year, month = int(match.group(1)), int(match.group(2))
    return Period(date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1]))


def add_months(day: date, months: int) -> date:
    """The first day of the month ``months`` after ``day``'s month."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


#: What a document sheet row counts as (its "Counted as" column, which the totals select on).
INVOICED = "invoiced"


VOIDED = "voided"


VOID_IN_MONTH = "void in its month"


CREDITED = "credited"


COLLECTED = "collected"


REFUNDED = "refunded"


NOT_COUNTED = "not counted"


@dataclass(frozen=True)
class LedgerInfo:
    """What the ledger says about one billing record in the ERP target."""

    status: str
    internal_id: str | None
    operation: str = "upsert"

    @property
    def synced(self) -> bool:
        """The target holds the record's latest version."""
        return self.status == "synced"


#: Rejection kinds whose records carry money (a customer or schedule entry adds to the count).
MONEY_KINDS = ("invoice", "credit_note", "payment", "refund")


@dataclass(frozen=True)
class LeftOut:
    """Billing records validation rejected: left out of every figure, listed on Exceptions."""

    rejections: tuple[Rejection, ...] = ()

    @cached_property
    def _ids(self) -> dict[str, frozenset[int]]:
        ids: dict[str, set[int]] = defaultdict(set)
        for r in self.rejections:
            ids[r.kind].add(r.record_id)
        return {kind: frozenset(v) for kind, v in ids.items()}

    def ids(self, kind: str) -> frozenset[int]:
        """The rejected ids of ``kind``."""
        return self._ids.get(kind, frozenset())

    def has(self, kind: str, record_id: int | None) -> bool:
        """True when record ``record_id`` of ``kind`` was rejected."""
        return record_id is not None and record_id in self._ids.get(kind, ())

    def per_currency(self) -> dict[str, tuple[int, Decimal]]:
        """Per currency code as billing holds it: (records left out, their money)."""
        out: dict[str, tuple[int, Decimal]] = {}
        for r in self.rejections:
            code = r.currency if r.currency is not None else "(none)"
            count, money = out.get(code, (0, ZERO))
            if r.kind in MONEY_KINDS and r.amount is not None:
                money += r.amount
            out[code] = (count + 1, money)
        return dict(sorted(out.items()))


#: No record left out (the default where a caller validated nothing).
NOTHING_LEFT_OUT = LeftOut()


def find_left_out(
    billing: sa.Engine, mapping: MappingTables | None, state: sa.Engine | None = None
) -> LeftOut:
    """Validate billing (``billing.validation``) and return what the figures leave out.

    With a mapping file, billing entities it does not know are rejected too. With the state
    database, the verdicts of the last pass are reused while billing is unchanged since it
    (``sync.verdicts``); without, billing is validated now.
    """
    entities = set(mapping.entities) if mapping is not None else None
    return LeftOut(billing_verdicts_for(billing, state, entities).rejections)


@dataclass
class CurrencyTally:
    """Counts and amounts of one kind of document in one currency."""

    count: int = 0
    amount: Decimal = ZERO
    tax: Decimal = ZERO
    synced_count: int = 0
    synced_amount: Decimal = ZERO


@dataclass
class Tally:
    """Per-currency totals of the documents of one kind that count (voids etc. excluded).

    Filled while the kind's rows stream; read by the Summary and Reconciliation sheets.
    """

    kind: str
    by_currency: dict[str, CurrencyTally] = field(default_factory=dict)
    entities: set[str] = field(default_factory=set)
    rows: int = 0

    def add(
        self,
        currency: str,
        amount: Decimal,
        tax: Decimal,
        synced: bool,
        synced_amount: Decimal | None = None,
    ) -> None:
        """Count one document that is part of the period's totals.

        ``synced_amount`` is what the target holds when it differs from ``amount`` (a journal).
        """
        t = self.by_currency.setdefault(currency, CurrencyTally())
        t.count += 1
        t.amount += amount
        t.tax += tax
        if synced:
            t.synced_count += 1
        if synced or synced_amount is not None:
            t.synced_amount += amount if synced_amount is None else synced_amount


# --- streaming helpers -------------------------------------------------------------------


def stream_rows(engine: sa.Engine, stmt: sa.Select[Any]) -> Iterator[sa.Row[Any]]:
    """Yield the rows of ``stmt`` in chunks (a server-side cursor on PostgreSQL)."""
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=CHUNK).execute(stmt)
        yield from result


def chunks(rows: Iterable[T], size: int = CHUNK) -> Iterator[list[T]]:
    """Lists of up to ``size`` items of ``rows``, in order."""
    batch: list[T] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _ledger_lookup(
    state_engine: sa.Engine, target: str, kind: str, source_ids: Sequence[str]
) -> dict[str, LedgerInfo]:
    found: dict[str, LedgerInfo] = {}
    with state_engine.connect() as conn:
        for among in source_id_among(conn, source_ids):
            stmt = sa.select(
                ledger.c.source_id, ledger.c.status, ledger.c.internal_id, ledger.c.operation
            ).where(ledger.c.target == target, ledger.c.kind == kind, among)
            for source_id, status, internal_id, operation in conn.execute(stmt):
                found[source_id] = LedgerInfo(status, internal_id, operation)
    return found


def with_ledger(
    rows: Iterable[Any], state_engine: sa.Engine, target: str, kind: str
) -> Iterator[tuple[Any, LedgerInfo | None]]:
    """Pair each billing row (with an ``id``) with its ledger row, one query per chunk."""
    for batch in chunks(rows):
        found = _ledger_lookup(state_engine, target, kind, [str(r.id) for r in batch])
        for row in batch:
            yield row, found.get(str(row.id))


def sync_status(info: LedgerInfo | None) -> str:
    """The ledger status of a record, or ``not in ledger``."""
    return info.status if info else "not in ledger"


def in_period(column: Any, period: Period) -> Any:
    """``column`` between the period's first and last day."""
    return column.between(period.start, period.end)


# --- document sheets ---------------------------------------------------------------------


def void_date(status: str, voided_at: datetime | None, issued: date, tz: ZoneInfo) -> date | None:
    """The company-time date an invoice was voided, or None when it is not void.

    A void without ``voided_at`` (which validation rejects) is taken as voided when issued.
    """
    if voided_at is not None:
        return voided_at.astimezone(tz).date()
    return issued if status == "void" else None


def day_start(day: date, tz: ZoneInfo) -> datetime:
    """Midnight starting ``day`` in time zone ``tz``."""
    return datetime.combine(day, time(0), tzinfo=tz)
