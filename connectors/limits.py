"""Concurrency limits: at most N requests in flight to one account, across threads and processes.

NetSuite's concurrency limit is account-wide (SOAP, REST and RESTlets share one pool), so every
``finsync worker`` talking to the same account must share one limit. A limiter hands out slots;
a request holds a slot for exactly as long as it is in flight.

Choice: **slots are locks in PostgreSQL** (``PostgresSlotLimiter``), because PostgreSQL is
already the one coordinator all workers share (the ledger lives there) and it needs no new
infrastructure. Slot *i* of limit *name* is the session advisory lock
``(crc32(name), i)``; a worker takes the first free slot with ``pg_try_advisory_lock`` and holds
its connection until the request returns. A worker that dies loses its session, and PostgreSQL
frees its slots at once: no lease expiry, no stale rows. Each process also keeps a local
semaphore in front, so it never holds more connections than slots.

Without PostgreSQL (the SQLite demo, one machine) ``FileSlotLimiter`` does the same with
``fcntl.flock`` on N files in a shared directory (the kernel frees them when a process dies);
``ThreadLimiter`` covers a single process. ``build_limiter`` picks one from a URL.
"""

from __future__ import annotations

import contextlib
import fcntl
import random
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Protocol

import sqlalchemy as sa

from core.errors import RetryableError
from finsync.db import make_engine

#: How long to wait between attempts to find a free slot held by another process.
_POLL_SECONDS = (0.01, 0.05)


class Limiter(Protocol):
    """Hands out at most ``slots`` concurrent slots."""

    slots: int

    def slot(self) -> contextlib.AbstractContextManager[None]:
        """Hold one slot for the duration of the ``with`` block; RetryableError on timeout."""
        ...

    def close(self) -> None:
        """Release resources (connections, files)."""
        ...


def _timeout_error(name: str, slots: int, timeout: float) -> RetryableError:
    return RetryableError(
        name,
        "acquire slot",
        f"all {slots} concurrency slots busy for {timeout:g}s",
        code="SLOTS_BUSY",
    )


class ThreadLimiter:
    """A limit within one process (a bounded semaphore)."""

    def __init__(self, name: str, slots: int, *, timeout: float = 300.0) -> None:
        self.name = name
        self.slots = slots
        self.timeout = timeout
        self._sem = threading.BoundedSemaphore(slots)

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one slot; RetryableError if none frees up within ``timeout``."""
        if not self._sem.acquire(timeout=self.timeout):
            raise _timeout_error(self.name, self.slots, self.timeout)
        try:
            yield
        finally:
            self._sem.release()

    def close(self) -> None:
        """Nothing to release."""


class _SharedSlots:
    """Common loop of the cross-process limiters: local semaphore, then poll for a free slot."""

    def __init__(
        self, name: str, slots: int, timeout: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.name = name
        self.slots = slots
        self.timeout = timeout
        self._local = ThreadLimiter(name, slots, timeout=timeout)
        self._clock = clock

    def _try(self, index: int) -> object | None:
        raise NotImplementedError

    def _release(self, index: int, handle: object) -> None:
        raise NotImplementedError

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one slot shared with other processes; RetryableError on timeout."""
        deadline = self._clock() + self.timeout
        with self._local.slot():
            while True:
                # Start at a random slot so waiting processes do not all fight over slot 0.
                start = random.randrange(self.slots)
                for offset in range(self.slots):
                    index = (start + offset) % self.slots
                    handle = self._try(index)
                    if handle is not None:
                        try:
                            yield
                        finally:
                            self._release(index, handle)
                        return
                if self._clock() >= deadline:
                    raise _timeout_error(self.name, self.slots, self.timeout)
                time.sleep(random.uniform(*_POLL_SECONDS))


class FileSlotLimiter(_SharedSlots):
    """Slots as ``flock``-ed files in ``directory``: shared by the processes of one machine."""

    def __init__(
        self, name: str, slots: int, directory: Path | None = None, *, timeout: float = 300.0
    ) -> None:
        super().__init__(name, slots, timeout)
        self.directory = directory or Path(tempfile.gettempdir()) / "finsync-slots"
        self.directory.mkdir(parents=True, exist_ok=True)
        self._safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)

    def _try(self, index: int) -> IO[bytes] | None:
        handle = open(self.directory / f"{self._safe}.{index}.lock", "ab")  # noqa: SIM115
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return None
        return handle

    def _release(self, index: int, handle: object) -> None:
        assert hasattr(handle, "fileno") and hasattr(handle, "close")
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        handle.close()

    def close(self) -> None:
        """Nothing held between slots."""


class PostgresSlotLimiter(_SharedSlots):
    """Slots as PostgreSQL session advisory locks: shared by every worker on every machine."""

    def __init__(self, name: str, slots: int, url: str, *, timeout: float = 300.0) -> None:
        super().__init__(name, slots, timeout)
        # One connection per slot this process may hold, and no more.
        self._engine = make_engine(url, key="state.url", pool_size=slots, max_overflow=0)
        self._key = zlib.crc32(f"finsync:limit:{name}".encode()) - 2**31  # signed int4

    def _try(self, index: int) -> sa.Connection | None:
        conn = self._engine.connect()
        try:
            got = conn.execute(
                sa.text("SELECT pg_try_advisory_lock(:k, :i)"), {"k": self._key, "i": index}
            ).scalar_one()
            conn.commit()
        except BaseException:
            conn.close()
            raise
        if not got:
            conn.close()
            return None
        return conn

    def _release(self, index: int, handle: object) -> None:
        assert isinstance(handle, sa.Connection)
        try:
            handle.execute(
                sa.text("SELECT pg_advisory_unlock(:k, :i)"), {"k": self._key, "i": index}
            )
            handle.commit()
        finally:
            handle.close()

    def close(self) -> None:
        """Close the pooled connections."""
        self._engine.dispose()


def build_limiter(
    name: str, slots: int, url: str | None = None, *, timeout: float = 300.0
) -> Limiter:
    """A limiter for ``name``: PostgreSQL advisory locks for a ``postgresql`` URL, file locks
    for ``file:`` URLs (a directory) and SQLite URLs (next to the database), else in-process.
    """
    if url is None:
        return ThreadLimiter(name, slots, timeout=timeout)
    if url.startswith(("postgresql", "postgres:")):
        return PostgresSlotLimiter(name, slots, url, timeout=timeout)
    if url.startswith("file:"):
        return FileSlotLimiter(
            name, slots, Path(url.removeprefix("file://").removeprefix("file:")), timeout=timeout
        )
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        db = Path(url.removeprefix("sqlite:///"))
        return FileSlotLimiter(name, slots, db.parent / f".{db.name}.slots", timeout=timeout)
    return ThreadLimiter(name, slots, timeout=timeout)
