"""Coordination of finsync processes on one state store: one process per SQLite file (an
``flock``-ed lock file beside it) and one scheduler leader on PostgreSQL (a session advisory
lock on a dedicated connection)."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from pathlib import Path
from typing import IO

import sqlalchemy as sa

from core.errors import FinsyncError
from finsync.db import make_engine

log = logging.getLogger("finsync.service")


class ServiceError(FinsyncError):
    """The service cannot start (e.g. a second process on a SQLite state store)."""


# -- one process on SQLite ---------------------------------------------------------------------


class SqliteProcessLock:
    """An ``flock`` on ``<state db>.service.lock``: one finsync process per SQLite state store."""

    def __init__(self, database: Path) -> None:
        self.path = database.with_name(f".{database.name}.service.lock")
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock or raise ServiceError naming the process that holds it."""
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the process
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise ServiceError(
                f"another finsync service ({holder}) is running on this SQLite state store "
                f"(lock file {self.path}); SQLite allows one process: stop it, or move the state "
                "store to PostgreSQL to run several"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        """Give the lock back."""
        if self._handle is not None:
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


def sqlite_database(url: str) -> Path | None:
    """The file of a SQLite URL (None for PostgreSQL or an in-memory database)."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    if parsed.database == ":memory:":
        return None
    return Path(parsed.database).resolve()


class LeaderLock:
    """A PostgreSQL session advisory lock held on a dedicated connection."""

    def __init__(self, url: str, key: int) -> None:
        self.key = key
        self._engine = make_engine(url, key="state.url", poolclass=sa.pool.NullPool)
        self._conn: sa.Connection | None = None
        self.held = False

    def try_acquire(self) -> bool:
        """Take the lock if it is free; False (and no exception) if the database is down."""
        try:
            if self._conn is None:
                self._conn = self._engine.connect()
            got = self._conn.execute(
                sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}
            ).scalar_one()
            self._conn.commit()
        except sa.exc.DBAPIError as exc:
            log.warning("leader election: database unreachable: %s", exc.orig)
            self._drop()
            return False
        self.held = bool(got)
        return self.held

    def still_held(self) -> bool:
        """True while the lock's connection is alive (losing it loses the lock)."""
        if not self.held or self._conn is None:
            return False
        try:
            # A session lock lives as long as its session: a live connection still holds it.
            self._conn.execute(sa.text("SELECT 1"))
            self._conn.commit()
        except sa.exc.DBAPIError as exc:
            log.warning("leader lock connection lost: %s", exc.orig)
            self._drop()
            return False
        return True

    def _drop(self) -> None:
        self.held = False
        if self._conn is not None:
            with contextlib.suppress(sa.exc.DBAPIError):
                self._conn.invalidate()
                self._conn.close()
            self._conn = None

    def release(self) -> None:
        """Unlock and close the connection."""
        if self._conn is not None and self.held:
            with contextlib.suppress(sa.exc.DBAPIError):
                self._conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                self._conn.commit()
        self.held = False
        if self._conn is not None:
            with contextlib.suppress(sa.exc.DBAPIError):
                self._conn.close()
            self._conn = None
        self._engine.dispose()
