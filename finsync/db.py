"""Database plumbing shared by the billing source and the state store.

SQLite has no decimal type and no time zones, so two column types keep the embedded default as
exact as PostgreSQL: ``ExactDecimal`` stores amounts as text on SQLite (NUMERIC on PostgreSQL),
and ``UTCDateTime`` stores aware timestamps and always hands back aware UTC datetimes.
"""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.types import TypeDecorator

from core.errors import ConfigError, UnavailableError


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


def _sqlite_read_only_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA query_only=ON")
    cursor.close()


def _sqlite_file(parsed: sa.engine.URL, key: str, *, read_only: bool) -> Path | None:
    """The file of a SQLite URL after checking it can be opened as asked (None: in memory)."""
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    path = Path(database).expanduser()
    if read_only:
        if not path.is_file():
            raise ConfigError(
                key,
                f"no SQLite database at {path}: correct the path (finsync only reads the "
                "billing database and never creates it)",
            )
        if not os.access(path, os.R_OK):
            raise ConfigError(key, f"{path} is not readable: give finsync read permission")
        return path
    folder = path.parent
    if not folder.is_dir():
        raise ConfigError(
            key, f"folder {folder} does not exist: create it or point {key} at another file"
        )
    if path.is_dir():
        raise ConfigError(key, f"{path} is a folder: point {key} at a database file in it")
    try:  # as root, permission bits say nothing: try for real (a read-only mount, /proc)
        with path.open("ab"):
            pass
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise ConfigError(
            key,
            f"cannot write {path} ({exc.strerror or exc}): SQLite writes the database and its "
            f"journal in {folder}; make it writable or point {key} elsewhere",
        ) from None
    return path


def probe(engine: Engine, key: str) -> None:
    """Connect once now, so an unreachable or refused database is one line naming ``key``."""
    try:
        with engine.connect():
            pass
    except sa.exc.DBAPIError as exc:
        detail = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else "refused"
        url = engine.url.render_as_string(hide_password=True)
        raise UnavailableError(
            key, f"cannot connect to {url} ({detail}): check that the server runs and the URL"
        ) from None


def make_engine(
    url: str, *, key: str = "database.url", read_only: bool = False, **kwargs: Any
) -> Engine:
    """Create an engine for ``url``: the one place finsync opens a database.

    ``postgresql://``, ``postgres://`` and ``postgresql+psycopg://`` URLs use psycopg 3;
    ``sqlite:///path`` a SQLite file. ``read_only`` (the billing database) opens a SQLite file
    read-only and never creates it, and makes PostgreSQL sessions read-only. Raises ConfigError
    naming ``key`` for a malformed URL, an unsupported kind, or a SQLite file that cannot be
    opened as asked.
    """
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigError(key, f"not a database URL: {exc}") from None
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername not in ("sqlite", "sqlite+pysqlite", "postgresql+psycopg"):
        raise ConfigError(
            key,
            f"unsupported database URL scheme {parsed.drivername!r}: use sqlite:///path or "
            "postgresql://user@host/db",
        )
    if parsed.get_backend_name() == "sqlite":
        path = _sqlite_file(parsed, key, read_only=read_only)
        if read_only and path is not None:
            parsed = parsed.set(
                database=f"file:{path}", query={**parsed.query, "mode": "ro", "uri": "true"}
            )
        engine = sa.create_engine(parsed, **kwargs)
        pragmas = _sqlite_read_only_pragmas if read_only else _sqlite_pragmas
        sa.event.listen(engine, "connect", pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    if read_only:
        # connect_args win over the URL's query, so keep the URL's own options (search_path).
        connect_args = dict(kwargs.pop("connect_args", {}))
        options = connect_args.get("options") or parsed.query.get("options") or ""
        if isinstance(options, tuple):
            options = " ".join(options)
        connect_args["options"] = f"{options} -c default_transaction_read_only=on".strip()
        kwargs["connect_args"] = connect_args
    return sa.create_engine(parsed, **kwargs)


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def missing_tables(engine: Engine, names: list[str]) -> list[str]:
    """Which of the tables or views ``names`` the database behind ``engine`` lacks."""
    inspector = sa.inspect(engine)
    present = set(inspector.get_table_names()) | set(inspector.get_view_names())
    return [name for name in names if name not in present]
