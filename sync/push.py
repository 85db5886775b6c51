"""Pushing: claim due ledger rows, send them through a connector, record every outcome.

Order: kinds are pushed in ``billing.records.KIND_ORDER`` (customers before their invoices,
invoices before payments and credit notes), and a document whose dependencies are not synced
waits. A write whose outcome is unknown (a timeout after sending, or a worker that died while
sending) is looked up by external id before it is sent again, so no second record is created.

Outcomes: success -> ``synced``; retryable -> ``retry`` at an exponential-backoff time, ``dead``
after ``max_attempts``; permanent -> ``failed`` with the system's message; refused credentials
stop the run and give the claimed rows back untouched.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from connectors.base import Connector
from core.documents import WriteResult
from core.errors import (
    AuthError,
    ConnectorError,
    OutcomeUnknownError,
    PermanentError,
    RateLimitedError,
    RetryableError,
)
from finsync.config import SyncSettings
from finsync.db import utcnow
from sync import ledger

log = logging.getLogger(__name__)

Progress = Callable[[str, int], None]


@dataclass
class PushCounts:
    """What a push did, per outcome."""

    sent: int = 0
    created: int = 0
    updated: int = 0
    recovered: int = 0  # found in the target after an unknown outcome, not sent again
    failed: int = 0
    retrying: int = 0
    dead: int = 0
    #: Requests the connector retried inside its calls (a timeout, a 503, a rate limit),
    #: during the whole sync of the target (the engine sets it).
    retried_requests: int = 0

    def add(self, other: PushCounts) -> None:
        """Accumulate ``other`` into this."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


def backoff_delay(attempts: int, settings: SyncSettings, rng: random.Random) -> timedelta:
    """Exponential backoff with jitter: base * 2^(attempts-1), capped, times 0.5..1."""
    raw = min(
        settings.backoff_max_seconds, settings.backoff_base_seconds * 2 ** max(attempts - 1, 0)
    )
    return timedelta(seconds=raw * (0.5 + rng.random() / 2))


class Pusher:
    """Pushes one target's due documents through its connector."""

    def __init__(
        self,
        state: Engine,
        connector: Connector,
        *,
        target: str,
        settings: SyncSettings,
        worker: str,
        run_id: int | None = None,
        clock: Callable[[], datetime] = utcnow,
        threads: int = 1,
        progress: Progress | None = None,
        seed: int | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        self._state = state
        self._connector = connector
        self._target = target
        self._settings = settings
        self._worker = worker
        self._run_id = run_id
        self._clock = clock
        self._threads = max(1, threads)
        self._progress = progress
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._should_stop = should_stop or (lambda: False)

    def push(self, kinds: Sequence[str]) -> PushCounts:
        """Push every due document of ``kinds``, in dependency order. Raises AuthError.

        When ``should_stop`` turns true, the batch in flight is finished and recorded, and no
        further batch is claimed.
        """
        total = PushCounts()
        for kind in kinds:
            if self._should_stop():
                break
            if self._threads == 1:
                total.add(self._drain(kind))
                continue
            with ThreadPoolExecutor(self._threads, thread_name_prefix=f"push-{kind}") as pool:
                for counts in pool.map(self._drain, [kind] * self._threads):
                    total.add(counts)
        return total

    def _drain(self, kind: str) -> PushCounts:
        counts = PushCounts()
        after = 0
        while not self._should_stop():
            with self._state.begin() as conn:
                batch = ledger.claim(
                    conn,
                    target=self._target,
                    kind=kind,
                    worker=self._worker,
                    now=self._clock(),
                    limit=self._connector.max_batch,
                    lease=timedelta(seconds=self._settings.lease_seconds),
                    wait=timedelta(seconds=self._settings.backoff_base_seconds),
                    after_id=after,
                )
            if batch.last_id is None:
                if after == 0:
                    break
                after = 0  # one more pass from the start, for rows that became due behind us
                continue
            after = batch.last_id
            if batch.items:
                counts.add(self._process(batch.items))
        return counts

    def _process(self, batch: list[ledger.Claimed]) -> PushCounts:
        counts = PushCounts()
        to_send = self._recover(batch, counts)
        if not to_send:
            return counts
        try:
            with self._lease_kept(to_send):
                results = self._connector.send([c.document for c in to_send])
        except AuthError as exc:
            with self._state.begin() as conn:
                ledger.release(conn, to_send, message=str(exc), now=self._clock())
            raise
        except ConnectorError as exc:
            self._fail_all(to_send, exc, counts)
            return counts
        except Exception as exc:  # a local failure: nothing may stay 'sending' because of it
            log.error("%s: sending a batch failed locally: %r", self._target, exc)
            unknown = OutcomeUnknownError(
                self._connector.system,
                "send",
                f"finsync could not finish sending this batch ({type(exc).__name__}: {exc}); "
                "the documents are looked up before they are sent again",
            )
            self._fail_all(to_send, unknown, counts)
            return counts
        if len(results) != len(to_send):
            raise RuntimeError(
                f"{self._connector.system} connector returned {len(results)} "
                f"results for {len(to_send)} documents"
            )
        now = self._clock()
        successes: list[ledger.Success] = []
        failures: list[ledger.Failure] = []
        for claimed, result in zip(to_send, results, strict=True):
            counts.sent += 1
            if result.ok:
                successes.append(self._success(claimed, result, counts))
            else:
                error = result.error or PermanentError(
                    self._connector.system, "send", "rejected without a message"
                )
                failures.append(self._failure(claimed, error, now, counts))
        with self._state.begin() as conn:
            ledger.record_successes(conn, successes, now=now, run_id=self._run_id)
            ledger.record_failures(conn, failures, now=now, run_id=self._run_id)
        self._report("pushed", len(to_send))
        return counts

    @contextmanager
    def _lease_kept(self, claimed: Sequence[ledger.Claimed]) -> Iterator[None]:
        """Extend the lease of ``claimed`` every third of it while their send is in flight, so
        another worker reclaims them (as suspects) only when this one has really stopped."""
        lease = timedelta(seconds=self._settings.lease_seconds)
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(lease.total_seconds() / 3):
                try:
                    with self._state.begin() as conn:
                        ledger.extend_lease(
                            conn, claimed, worker=self._worker, until=self._clock() + lease
                        )
                except Exception as exc:  # the send goes on; the lease may then run out
                    log.warning("%s: could not extend a lease: %r", self._target, exc)

        keeper = threading.Thread(target=beat, name=f"lease-{self._target}", daemon=True)
        keeper.start()
        try:
            yield
        finally:
            stop.set()
            keeper.join()

    def _recover(self, batch: list[ledger.Claimed], counts: PushCounts) -> list[ledger.Claimed]:
        """Look up suspects (earlier outcome unknown); those the target holds are done."""
        suspects = [c for c in batch if c.suspect and not c.previously_synced]
        if not suspects:
            return batch
        try:
            found = self._connector.lookup([c.document for c in suspects])
        except ConnectorError as exc:
            # Without a look-up we must not send again: try the suspects later.
            self._fail_all(suspects, exc, counts)
            return [c for c in batch if c not in suspects]
        recovered = [
            ledger.Success(c, internal_id, details={"recovered_by_lookup": True})
            for c in suspects
            if (internal_id := found.get(c.document.external_id)) is not None
        ]
        if recovered:
            with self._state.begin() as conn:
                ledger.record_successes(conn, recovered, now=self._clock(), run_id=self._run_id)
            counts.recovered += len(recovered)
            self._report("pushed", len(recovered))
        done = {s.claimed.ledger_id for s in recovered}
        return [c for c in batch if c.ledger_id not in done]

    @staticmethod
    def _success(
        claimed: ledger.Claimed, result: WriteResult, counts: PushCounts
    ) -> ledger.Success:
        if result.created is False or (result.created is None and claimed.previously_synced):
            counts.updated += 1
        else:
            counts.created += 1
        return ledger.Success(claimed, result.internal_id, result.details, result.created)

    def _failure(
        self, claimed: ledger.Claimed, error: ConnectorError, now: datetime, counts: PushCounts
    ) -> ledger.Failure:
        """Classify one failed send: retry later (with backoff), dead, or failed for good."""
        if not isinstance(error, RetryableError):
            counts.failed += 1
            return ledger.Failure(claimed, "failed", "permanent", str(error))
        kind = "unknown" if isinstance(error, OutcomeUnknownError) else "retryable"
        if claimed.attempts >= self._settings.max_attempts:
            counts.dead += 1
            message = f"gave up after {claimed.attempts} attempts: {error}"
            return ledger.Failure(claimed, "dead", kind, message)
        with self._lock:
            delay = backoff_delay(claimed.attempts, self._settings, self._rng)
        if isinstance(error, RateLimitedError) and error.retry_after:
            delay = max(delay, timedelta(seconds=error.retry_after))
        counts.retrying += 1
        return ledger.Failure(claimed, "retry", kind, str(error), now + delay)

    def _fail_all(
        self, claimed: Sequence[ledger.Claimed], error: ConnectorError, counts: PushCounts
    ) -> None:
        now = self._clock()
        failures = [self._failure(item, error, now, counts) for item in claimed]
        with self._state.begin() as conn:
            ledger.record_failures(conn, failures, now=now, run_id=self._run_id)
        log.warning("%s: %d documents not sent: %s", self._target, len(claimed), error)
        self._report("pushed", len(claimed))

    def _report(self, event: str, n: int) -> None:
        if self._progress is not None:
            self._progress(event, n)
