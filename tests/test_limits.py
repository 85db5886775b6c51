"""Concurrency limiters: never more than N holders at once, across threads and processes."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from connectors.limits import FileSlotLimiter, PostgresSlotLimiter, ThreadLimiter, build_limiter
from core.errors import RetryableError


def _peak(limiters, workers: int = 8, rounds: int = 5) -> int:
    """Run ``workers`` threads, each taking slots from its own limiter; the most at once."""
    active = 0
    peak = 0
    lock = threading.Lock()

    def work(limiter):
        nonlocal active, peak
        for _ in range(rounds):
            with limiter.slot():
                with lock:
                    active += 1
                    peak = max(peak, active)
                time.sleep(0.01)
                with lock:
                    active -= 1

    threads = [
        threading.Thread(target=work, args=(limiters[i % len(limiters)],)) for i in range(workers)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return peak


def test_thread_limiter_bounds_threads():
    assert _peak([ThreadLimiter("acct", 2)]) == 2


def test_file_limiter_shared_by_separate_instances(tmp_path: Path):
    # two instances stand for two processes: they share only the lock files
    limiters = [FileSlotLimiter("acct", 3, tmp_path), FileSlotLimiter("acct", 3, tmp_path)]
    assert _peak(limiters, workers=10) == 3


@pytest.mark.postgres
def test_postgres_limiter_shared_by_separate_engines(pg_database: str):
    limiters = [
        PostgresSlotLimiter("acct-pg", 2, pg_database),
        PostgresSlotLimiter("acct-pg", 2, pg_database),
    ]
    try:
        assert _peak(limiters, workers=6, rounds=3) == 2
    finally:
        for limiter in limiters:
            limiter.close()


def test_busy_slots_time_out_as_retryable(tmp_path: Path):
    holder = FileSlotLimiter("busy", 1, tmp_path)
    waiter = FileSlotLimiter("busy", 1, tmp_path, timeout=0.05)
    with holder.slot(), pytest.raises(RetryableError), waiter.slot():
        pass


@pytest.mark.postgres
def test_build_limiter_picks_by_url(tmp_path: Path, pg_database: str):
    assert isinstance(build_limiter("a", 2), ThreadLimiter)
    assert isinstance(build_limiter("a", 2, f"sqlite:///{tmp_path / 'state.db'}"), FileSlotLimiter)
    pg = build_limiter("a", 2, pg_database)
    assert isinstance(pg, PostgresSlotLimiter)
    pg.close()
