"""Database plumbing shared by the billing source and the state store.

SQLite has no decimal type and no time zones, so two column types keep the embedded default as
exact as PostgreSQL: ``ExactDecimal`` stores amounts as text on SQLite (NUMERIC on PostgreSQL),
and ``UTCDateTime`` stores aware timestamps and always hands back aware UTC datetimes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.types import TypeDecorator

from finsync.errors import ConfigError


class ExactDecimal(TypeDecorator[Decimal]):
    """An exact decimal: NUMERIC on PostgreSQL, canonical text on SQLite. Refuses floats."""

    impl = sa.Numeric
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String(64))
        return dialect.type_descriptor(sa.Numeric(asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError("refusing to store a float as money; use Decimal")
        value = Decimal(value)
        if dialect.name == "sqlite":
            return str(value)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if isinstance(value, float):
            return float_to_decimal(value)
        return Decimal(value) if not isinstance(value, Decimal) else value


def float_to_decimal(value: float) -> Decimal:
    """The decimal a billing database meant when it handed back a binary float.

    SQLite stores a NUMERIC or REAL column's ``12.50`` as the double nearest to it. Python's
    ``repr`` is the shortest text that reads back as the same double, which is the original
    decimal whenever it had at most 15 significant digits (every amount a billing system
    holds). A float that was never such a decimal (``0.1 + 0.2``) keeps all its digits here,
    so the record's currency-scale check refuses it with the field and the fix instead of
    finsync rounding it silently (NaN and infinities come back as such and are refused there too).
    """
    return Decimal(repr(value))


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp. Naive datetimes are refused on the way in."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise TypeError(f"timestamps must be timezone-aware datetimes, got {value!r}")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        stamp: datetime = value
        if stamp.tzinfo is None:
            return stamp.replace(tzinfo=UTC)
        return stamp.astimezone(UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(url: str, *, key: str = "database.url", **kwargs: Any) -> Engine:
    """Create an engine for ``url`` (SQLite or PostgreSQL via psycopg 3).

    ``postgresql://`` URLs are routed to psycopg 3. Raises ConfigError naming ``key`` if the URL
    is malformed or of an unsupported kind.
    """
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigError(key, f"not a database URL: {exc}") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(
            key, f"unsupported database {parsed.get_backend_name()!r}: use sqlite or postgresql"
        )
    if parsed.get_backend_name() == "sqlite":
        engine = sa.create_engine(parsed, **kwargs)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return sa.create_engine(parsed, **kwargs)


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)
