"""`finsync serve` as real processes: health, one process on SQLite, SIGTERM during a push,
two processes on one PostgreSQL (each due run once, takeover after SIGKILL of the leader), and
the workbook missed during an outage built once when the service comes back."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

import scheduler as jobs
from connectors.scripted import ScriptedConnector, ScriptedSettings
from finsync.schedule import JOBS_TABLE, REPORT_JOB
from sync.state import ledger, runs, workbooks
from tests.builders import BillingBuilder
from tests.engine_support import REPO, Clock, make_engine
from tests.service_support import ServiceProcess, service_config, wait_for


def _seed_customers(setup, count):
    engine = make_engine(setup, Clock())  # migrates the state store
    builder = BillingBuilder(engine.billing)
    for n in range(count):
        builder.customer(f"CU-{n:03d}")
    engine.close()
    return {f"finsync:cust:CU-{n:03d}" for n in range(count)}


def _sync_runs(db_url):
    """(id, status) of every scheduled sync that ran: an hour's idle line stands for as many
    runs as it folded (``idle_runs``)."""
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(runs.c.id, runs.c.status, runs.c.counts).where(runs.c.kind == "sync")
            ).all()
    finally:
        engine.dispose()
    return [
        (run_id, status)
        for run_id, status, counts in rows
        for _ in range(json.loads(counts).get("idle_runs", 1) if status == "idle" else 1)
    ]


def test_health_and_a_second_process_refused_on_sqlite(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'finsync.db'}"
    setup = service_config(tmp_path, db_url)
    _seed_customers(setup, 2)
    first = ServiceProcess(setup.config_path, tmp_path / "first.log").start()
    try:
        health = wait_for(
            lambda: (h := first.health()).get("last_run") and h, 60, first
        )  # the first sync ran
        assert health["status"] == "ok" and health["database"] == "ok"
        assert health["role"] == "leader"
        assert health["last_run"]["kind"] == "sync"
        second = subprocess.run(
            [sys.executable, "-m", "finsync", "--config", str(setup.config_path), "serve"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert second.returncode == 1
        assert "SQLite allows one process" in second.stderr
        assert first.process.poll() is None  # the first one is unharmed
        assert first.terminate() == 0
    finally:
        first.stop_quietly()
    stopped = [line["message"] for line in first.events("stopped")]
    assert stopped == ["stopped"]


def test_sigterm_during_a_push_loses_and_duplicates_nothing(tmp_path, db_url):
    setup = service_config(
        tmp_path,
        db_url,
        mode="create",  # a blind re-send would show up as a duplicate
        extra="batch_size = 2\nlatency_seconds = 0.4",
        sync={"lease_seconds": 2, "backoff_base_seconds": 1, "max_attempts": 50},
        service={"leader_lock_key": 7001},
    )
    expected = _seed_customers(setup, 24)
    target = ScriptedConnector(ScriptedSettings(store=setup.store_path, mode="create"))

    first = ServiceProcess(setup.config_path, tmp_path / "first.log").start()
    try:
        wait_for(lambda: len(target.records()) >= 4, 120, first)
        assert first.terminate() == 0
    finally:
        first.stop_quietly()
    assert first.events("stopped")[0]["message"] == "stopped"  # nothing abandoned
    assert len(target.records()) < len(expected)  # it stopped in the middle

    second = ServiceProcess(setup.config_path, tmp_path / "second.log").start()
    state = sa.create_engine(db_url)
    try:

        def all_synced():
            with state.connect() as conn:
                statuses = conn.execute(sa.select(ledger.c.status)).scalars().all()
            return len(statuses) == len(expected) and set(statuses) == {"synced"}

        wait_for(all_synced, 180, second)
        assert second.terminate() == 0
    finally:
        second.stop_quietly()
        state.dispose()
    stored = [r["external_id"] for r in target.records()]
    assert sorted(stored) == sorted(expected)  # each exactly once


@pytest.fixture
def pg_url(pg_database):
    from tests.conftest import fresh_pg_schema

    return fresh_pg_schema(pg_database)


@pytest.mark.postgres
def test_two_processes_run_each_due_job_once_and_the_follower_takes_over(tmp_path, pg_url):
    setup = service_config(
        tmp_path,
        pg_url,
        service={"leader_lock_key": 7002, "leader_poll_seconds": 1, "report_enabled": "false"},
    )
    _seed_customers(setup, 3)
    procs = [
        ServiceProcess(setup.config_path, tmp_path / f"serve{n}.log").start() for n in range(2)
    ]
    try:
        wait_for(lambda: len(_sync_runs(pg_url)) >= 4, 120, procs[0])
        roles = sorted(p.health()["role"] for p in procs)
        assert roles == ["follower", "leader"]
        leader = next(p for p in procs if p.health()["role"] == "leader")
        follower = next(p for p in procs if p is not leader)
        runs_before = len(_sync_runs(pg_url))

        leader.kill()
        killed_at = time.monotonic()
        wait_for(lambda: follower.health()["role"] == "leader", 30, follower)
        # The bound: the next poll (1 s here) after PostgreSQL dropped the dead session's lock;
        # generous, so a loaded CI machine does not turn a correct takeover into a failure.
        assert time.monotonic() - killed_at < 20
        wait_for(lambda: len(_sync_runs(pg_url)) >= runs_before + 2, 60, follower)
        assert follower.terminate() == 0
    finally:
        for p in procs:
            p.stop_quietly()

    submitted = [
        (line["job_id"], line["scheduled_run_time"])
        for p in procs
        for line in p.events("job_submitted")
        if line["job_id"] == "sync:erp"
    ]
    duplicates = [key for key, n in Counter(submitted).items() if n > 1]
    assert duplicates == []
    recorded = _sync_runs(pg_url)
    # Every due time ran once; the leader killed mid-run may leave its last run 'running', and
    # the follower, terminated at the end, may stop the run it is in ('stopped': a SIGTERM ends
    # a sync between batches). Nothing else may be unfinished or failed.
    assert len(recorded) == len(submitted)
    statuses = Counter(status for _, status in recorded)
    assert statuses["running"] <= 1 and statuses["stopped"] <= 1
    assert set(statuses) <= {"ok", "idle", "running", "stopped"}
    assert [len(p.events("leader_elected")) for p in procs].count(1) == 2  # one, then the other


@pytest.mark.postgres
def test_a_workbook_missed_during_an_outage_is_built_once_on_return(tmp_path, pg_url):
    setup = service_config(
        tmp_path,
        pg_url,
        service={"leader_lock_key": 7003, "sync_interval_minutes": 60},
    )
    _seed_customers(setup, 2)
    config = setup.config()
    # The service ran before and went down before 06:00 on the 1st: its job store holds the
    # monthly run due two hours ago (within the grace time).
    state = sa.create_engine(pg_url)
    sched = jobs.build_scheduler(config, state)
    sched.start(paused=True)
    jobs.reconcile_jobs(sched, config, ["erp"])
    missed = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    sched.modify_job(REPORT_JOB, next_run_time=missed)
    sched.shutdown(wait=False)

    procs = [
        ServiceProcess(setup.config_path, tmp_path / f"serve{n}.log").start() for n in range(2)
    ]
    try:

        def built():
            with state.connect() as conn:
                return conn.execute(sa.select(workbooks)).mappings().all()

        rows = wait_for(built, 120, procs[0])
        # Both processes keep running a while: neither builds it again.
        wait_for(lambda: all(p.health()["status"] == "ok" for p in procs), 30, procs[0])
        for p in procs:
            assert p.terminate() == 0
    finally:
        for p in procs:
            p.stop_quietly()
    rows = built()
    period = jobs.report_period_due(missed, config.service, config.timezone)
    assert [(r["period"], r["entity"]) for r in rows] == [(period, None)]
    with state.connect() as conn:
        report_runs = (
            conn.execute(sa.select(runs.c.status).where(runs.c.kind == "report")).scalars().all()
        )
        next_due = conn.execute(
            sa.text(f"SELECT next_run_time FROM {JOBS_TABLE} WHERE id = :id"),
            {"id": REPORT_JOB},
        ).scalar_one()
    state.dispose()
    assert report_runs == ["ok"]
    assert next_due > time.time()  # the next month's run, not the missed one again
    submitted = [
        line
        for p in procs
        for line in p.events("job_submitted")
        if line["job_id"] == "monthly-report"
    ]
    assert len(submitted) == 1


@pytest.mark.postgres
def test_two_workers_push_what_is_queued_once(tmp_path, pg_url):
    setup = service_config(
        tmp_path, pg_url, mode="create", extra="batch_size = 2\nlatency_seconds = 0.1"
    )
    expected = _seed_customers(setup, 12)
    engine = make_engine(setup, Clock(datetime.now(UTC)))
    queued = engine.extract("erp", ["customer"])  # queued, not pushed
    engine.close()
    assert queued.new == len(expected)
    workers = [
        ServiceProcess(setup.config_path, tmp_path / f"worker{n}.log", "worker").start()
        for n in range(2)
    ]
    target = ScriptedConnector(ScriptedSettings(store=setup.store_path, mode="create"))
    try:
        wait_for(lambda: len(target.records()) == len(expected), 120, workers[0])
        for w in workers:
            assert w.terminate() == 0
    finally:
        for w in workers:
            w.stop_quietly()
    assert sorted(r["external_id"] for r in target.records()) == sorted(expected)
    assert all(w.events("job_submitted") == [] for w in workers)  # workers never schedule


@pytest.mark.parametrize(
    ("section", "key", "problem"),
    [
        ("[service]\nreport_day = 31", "service.report_day", "between 1 and 28"),
        ('[service]\nreport_time = "6h"', "service.report_time", "HH:MM"),
        ("[service]\nsync_interval = 5", "service.sync_interval", "unknown setting"),
        ('[alerts]\nrecipients = ["a@example.com"]', "alerts.recipients", "[report.smtp]"),
        ('[alerts]\nwebhook_url = "ftp://x"', "alerts.webhook_url", "http(s) URL"),
        (
            '[alerts]\nwebhook_url = "https://x"\nwebhook_secret = { env = "NOPE_NOT_SET" }',
            "alerts.webhook_secret",
            "NOPE_NOT_SET is not set",
        ),
    ],
)
def test_bad_service_and_alert_settings_fail_at_start_naming_the_key(
    tmp_path, section, key, problem
):
    from core.errors import ConfigError
    from finsync.config import load_config
    from tests.engine_support import write_config

    setup = write_config(tmp_path, f"sqlite:///{tmp_path / 'x.db'}")
    text = setup.config_path.read_text().replace("[targets.erp]", f"{section}\n\n[targets.erp]")
    setup.config_path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(setup.config_path)
    assert caught.value.key == key
    assert problem in caught.value.problem
