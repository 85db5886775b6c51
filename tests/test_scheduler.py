"""Schedules computed from the triggers with a given "now": local times across the end of
daylight saving time in New York (2026-11-01) and its start (2027-03-14), month and year ends,
and the job store keeping a missed job's due time across restarts (SQLite and PostgreSQL)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

import scheduler as jobs
from finsync.config import ServiceSettings
from finsync.schedule import REPORT_JOB
from sync.migrate import upgrade
from tests.engine_support import Clock, make_engine
from tests.service_support import service_config

NY = ZoneInfo("America/New_York")


def test_monthly_workbook_fires_on_the_first_at_six_local_through_the_dst_change():
    trigger = jobs.report_trigger(ServiceSettings(), NY)
    fires = jobs.next_fire_times(trigger, datetime(2026, 9, 15, 12, tzinfo=UTC), 4)
    assert [f.astimezone(UTC) for f in fires] == [
        datetime(2026, 10, 1, 10, 0, tzinfo=UTC),  # 06:00 EDT (UTC-4)
        datetime(2026, 11, 1, 11, 0, tzinfo=UTC),  # 06:00 EST (UTC-5): DST ended at 02:00
        datetime(2026, 12, 1, 11, 0, tzinfo=UTC),
        datetime(2027, 1, 1, 11, 0, tzinfo=UTC),
    ]
    assert {(f.day, f.hour, f.minute) for f in fires} == {(1, 6, 0)}


def test_a_time_in_the_repeated_hour_fires_once_that_day():
    # 01:30 happens twice on 2026-11-01 in New York (EDT, then EST).
    settings = ServiceSettings(report_hour=1, report_minute=30)
    fires = jobs.next_fire_times(
        jobs.report_trigger(settings, NY), datetime(2026, 10, 20, tzinfo=UTC), 3
    )
    assert [(f.date().isoformat(), f.hour, f.minute) for f in fires] == [
        ("2026-11-01", 1, 30),
        ("2026-12-01", 1, 30),
        ("2027-01-01", 1, 30),
    ]
    assert fires[0].astimezone(UTC) == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # the first one


def test_a_time_skipped_by_spring_forward_fires_just_after_the_gap():
    settings = ServiceSettings(report_day=14, report_hour=2, report_minute=30)
    fires = jobs.next_fire_times(
        jobs.report_trigger(settings, NY), datetime(2027, 2, 20, tzinfo=UTC), 2
    )
    assert fires[0].astimezone(UTC) == datetime(2027, 3, 14, 7, 30, tzinfo=UTC)
    assert (fires[0].hour, fires[0].minute, fires[0].utcoffset()) == (3, 30, timedelta(hours=-4))
    assert fires[1].astimezone(UTC) == datetime(2027, 4, 14, 6, 30, tzinfo=UTC)


def test_sync_interval_counts_elapsed_time_across_the_dst_change():
    start = datetime(2026, 11, 1, 0, 0, tzinfo=NY)  # midnight EDT on the 25-hour day
    trigger = jobs.sync_trigger(ServiceSettings(sync_interval_minutes=15), NY, start)
    fires = jobs.next_fire_times(trigger, start, 120)
    utc = [f.astimezone(UTC) for f in fires]
    assert all(b - a == timedelta(minutes=15) for a, b in itertools.pairwise(utc))
    on_the_day = [f for f in fires if f.astimezone(NY).date().isoformat() == "2026-11-01"]
    assert len(on_the_day) == 25 * 4  # every quarter hour of the 25-hour day, midnight included
    local_times = [f.astimezone(NY).strftime("%H:%M") for f in on_the_day]
    assert local_times.count("01:15") == 2  # the repeated hour runs twice, as real time does


@pytest.mark.parametrize(
    ("now", "period"),
    [
        (datetime(2026, 11, 1, 10, 59, tzinfo=UTC), "2026-09"),  # 05:59 EST: not due yet
        (datetime(2026, 11, 1, 11, 0, tzinfo=UTC), "2026-10"),  # 06:00 EST
        (datetime(2026, 11, 1, 3, 0, tzinfo=UTC), "2026-09"),  # still Oct 31 in New York
        (datetime(2026, 11, 3, 9, 0, tzinfo=UTC), "2026-10"),  # late, after an outage
        (datetime(2027, 1, 1, 11, 0, tzinfo=UTC), "2026-12"),  # across the year end
        (datetime(2027, 3, 1, 11, 0, tzinfo=UTC), "2027-02"),  # after a 28-day month
    ],
)
def test_the_workbook_covers_the_month_before_its_due_date(now, period):
    assert jobs.report_period_due(now, ServiceSettings(), NY) == period


def _scheduler(config, state):
    sched = jobs.build_scheduler(config, state)
    sched.start(paused=True)
    return sched


def test_the_job_store_keeps_a_missed_due_time_and_reschedules_only_changed_jobs(tmp_path, db_url):
    setup = service_config(tmp_path, db_url, service={"report_time": "06:00"})
    engine = make_engine(setup, Clock())
    upgrade(engine.state)
    config = setup.config()
    sched = _scheduler(config, engine.state)
    changed = jobs.reconcile_jobs(sched, config, ["erp"])
    assert sorted(changed) == ["monthly-report", "retry-sweep", "sync:erp"]
    missed = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    sched.modify_job(REPORT_JOB, next_run_time=missed)
    sched.shutdown(wait=False)

    # The service comes back with the same schedule: the missed run is still due.
    sched = _scheduler(config, engine.state)
    assert jobs.reconcile_jobs(sched, config, ["erp"]) == []
    assert sched.get_job(REPORT_JOB).next_run_time == missed
    assert {j.id for j in sched.get_jobs()} == {"monthly-report", "retry-sweep", "sync:erp"}
    sched.shutdown(wait=False)

    # A changed schedule and a removed target are applied.
    text = setup.config_path.read_text().replace('report_time = "06:00"', 'report_time = "07:15"')
    setup.config_path.write_text(text)
    config = setup.config()
    sched = _scheduler(config, engine.state)
    assert jobs.reconcile_jobs(sched, config, []) == ["monthly-report"]
    job = sched.get_job(REPORT_JOB)
    local = job.next_run_time.astimezone(config.timezone)
    assert (local.day, local.hour, local.minute) == (1, 7, 15)
    assert job.next_run_time > datetime.now(UTC)
    assert {j.id for j in sched.get_jobs()} == {"monthly-report", "retry-sweep"}
    assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (
        True,
        1,
        config.service.misfire_grace_seconds,
    )
    sched.shutdown(wait=False)
    engine.close()
