"""The service: ``finsync serve`` and ``finsync worker``, and the scheduled jobs they run.

``serve`` runs, in one process: the scheduler (only while this process is the leader), a push
worker, and an HTTP server with ``GET /health`` (plus the accountants' console from
``api.create_app``; ``api/serving.py``). ``worker`` runs only the push loop; start as many as
the ERP's account-wide concurrency limit allows (the connectors share it through
``connectors/limits.py``). The commands themselves are in ``finsync/cli/service.py``.

One leader: on PostgreSQL every ``serve`` process polls ``pg_try_advisory_lock`` on a dedicated
connection every ``[service] leader_poll_seconds``; the holder runs the scheduler. If the leader
dies, PostgreSQL drops its session and its lock at once, and another process takes over at its
next poll. SQLite allows one process: a second ``serve`` or ``worker`` on the same state file
is refused (an ``flock``-ed lock file next to it). Both locks are in ``sync/locks.py``.

Stopping: SIGTERM or SIGINT stops claiming; the push in flight records its batch, then unwinds;
the scheduler shuts down; the process exits 0. Whatever is still running after
``stop_timeout_seconds`` is abandoned: its claims' leases lapse and the next worker looks those
records up in the target before sending them again.

The scheduler is APScheduler 3.x, built from the configuration. Jobs (stable ids, named in
``finsync/schedule.py``, so a restarted service finds its own jobs in the job store):

  ``sync:<target>``   every ``[service] sync_interval_minutes``: extract and push one target
  ``retry-sweep``     every ``retry_sweep_minutes``: push what is due (retries) on every target,
                      then open or resolve the ``failed_records`` and ``dead_records`` alerts
  ``monthly-report``  on ``report_day`` at ``report_time`` in the finance time zone: the workbook
                      of the month just ended, recorded in ``workbooks`` and e-mailed when
                      ``[report] recipients`` are set

Every job has ``coalesce=True``, ``max_instances=1`` and ``misfire_grace_time``, and the job store
is APScheduler's ``SQLAlchemyJobStore`` on the state database. A service that was down when a job
was due finds the job's past ``next_run_time`` there and runs it once (coalesced) when it comes
back within the grace time; the ``workbooks`` table guards against building a period twice.

Jobs are pickled into the job store, so they carry nothing but a target name: the running
service installs a ``JobContext`` (engine, alerts, stop flag) that the job functions look up.
The store names the job functions and ``LocalCronTrigger`` by their place in this module
(``scheduler:run_sync``), which is why they live here and nowhere else.

The top of the layers with the CLI: it may import everything but ``finsync.cli``, and nothing
but the CLI imports it (an import-linter contract in ``pyproject.toml``).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MISSED,
    EVENT_JOB_SUBMITTED,
    JobEvent,
    JobSubmissionEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED, BaseScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.engine import Engine

from api.serving import HttpServer, Status, UvicornServer, asgi_app, console_app, health_app
from finsync.alerts import Alerts
from finsync.config import Config, ServiceSettings
from finsync.db import utcnow
from finsync.schedule import JOBS_TABLE, REPORT_JOB, RETRY_JOB, SYNC_JOB_PREFIX
from reports.workbook import build_configured_report, record_workbook
from sync.locks import LeaderLock, SqliteProcessLock, sqlite_database
from sync.state import runs, workbooks

if TYPE_CHECKING:
    from sync.engine import SyncEngine

log = logging.getLogger("finsync.scheduler")

service_log = logging.getLogger("finsync.service")

_WORKBOOK_LOCK_PREFIX = "finsync:workbook:"


# -- the running service's context -----------------------------------------------------------


@dataclass
class JobContext:
    """What the job functions need from the running service."""

    config: Config
    engine: SyncEngine
    alerts: Alerts
    stopping: threading.Event = field(default_factory=threading.Event)
    clock: Callable[[], datetime] = utcnow

    def should_stop(self) -> bool:
        """True once the service is stopping: a push or sync ends after the batch in flight."""
        return self.stopping.is_set()


_context: JobContext | None = None
_context_lock = threading.Lock()


def install_context(context: JobContext | None) -> None:
    """Make ``context`` the one the job functions use (None when the service stops)."""
    global _context
    with _context_lock:
        _context = context


def current_context() -> JobContext:
    """The installed context. Raises RuntimeError outside a running service."""
    with _context_lock:
        if _context is None:
            raise RuntimeError("no finsync service is running in this process")
        return _context


# -- triggers --------------------------------------------------------------------------------


class LocalCronTrigger(CronTrigger):  # type: ignore[misc]
    """A cron trigger in a local time zone that fires at most once per local day.

    APScheduler's CronTrigger fires twice when the time falls in the hour repeated at the end
    of daylight saving time (01:30 EDT, then 01:30 EST) and returns a non-normalised time for a
    wall time skipped at its start; this one skips the repeat and normalises the result, so
    ``02:30`` on a spring-forward day fires at 03:30 local, just after the gap.
    """

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        """The next fire time after ``now``, never the same wall time twice in a row."""
        candidate = super().get_next_fire_time(previous_fire_time, now)
        if (
            candidate is not None
            and previous_fire_time is not None
            and candidate.replace(tzinfo=None)
            == previous_fire_time.astimezone(self.timezone).replace(tzinfo=None)
        ):
            # The repeat of a wall time in the fall-back hour: go on from the next local day
            # (it starts from the previous fire time, not from `now`, so forget that one).
            next_day = datetime.combine(
                candidate.date() + timedelta(days=1), time(0), tzinfo=self.timezone
            )
            candidate = super().get_next_fire_time(None, next_day)
        if candidate is None:
            return None
        normalised: datetime = candidate.astimezone(UTC).astimezone(self.timezone)
        return normalised


def sync_trigger(
    settings: ServiceSettings, timezone: ZoneInfo, start: datetime | None = None
) -> IntervalTrigger:
    """Every ``sync_interval_minutes`` of elapsed time from ``start`` (default: now); DST
    changes neither stretch nor shrink it."""
    return IntervalTrigger(
        seconds=round(settings.sync_interval_minutes * 60), start_date=start, timezone=timezone
    )


def retry_trigger(settings: ServiceSettings, timezone: ZoneInfo) -> IntervalTrigger:
    """Every ``retry_sweep_minutes``."""
    return IntervalTrigger(seconds=round(settings.retry_sweep_minutes * 60), timezone=timezone)


def report_trigger(settings: ServiceSettings, timezone: ZoneInfo) -> LocalCronTrigger:
    """``report_day`` of every month at ``report_time``, local time in the finance time zone."""
    return LocalCronTrigger(
        day=settings.report_day,
        hour=settings.report_hour,
        minute=settings.report_minute,
        timezone=timezone,
    )


def next_fire_times(trigger: BaseTrigger, now: datetime, count: int) -> list[datetime]:
    """The next ``count`` fire times of ``trigger`` after ``now``, as the scheduler computes
    them (each from the previous one)."""
    times: list[datetime] = []
    previous = None
    for _ in range(count):
        fire = trigger.get_next_fire_time(previous, now)
        if fire is None:
            break
        times.append(fire)
        previous = fire
        now = fire + timedelta(microseconds=1)
    return times


def report_period_due(now: datetime, settings: ServiceSettings, timezone: ZoneInfo) -> str:
    """The period (``YYYY-MM``) of the latest monthly fire time at or before ``now``.

    A workbook built late, after an outage, still covers the month before its due date.
    """
    local = now.astimezone(timezone)
    due = datetime(
        local.year,
        local.month,
        settings.report_day,
        settings.report_hour,
        settings.report_minute,
        tzinfo=timezone,
    )
    fire_month = date(local.year, local.month, 1)
    if local < due:
        fire_month = (fire_month - timedelta(days=1)).replace(day=1)
    period = (fire_month - timedelta(days=1)).replace(day=1)
    return f"{period:%Y-%m}"


# -- building the scheduler ------------------------------------------------------------------


@dataclass(frozen=True)
class JobSpec:
    """One job the configuration asks for."""

    id: str
    name: str
    func: Callable[..., None]
    trigger: BaseTrigger
    args: tuple[str, ...] = ()

    @property
    def func_ref(self) -> str:
        """``module:function``, as the job store records it."""
        return f"{self.func.__module__}:{self.func.__qualname__}"


def job_specs(config: Config, targets: list[str]) -> list[JobSpec]:
    """The jobs ``config`` asks for, given the enabled ``targets``."""
    service, tz = config.service, config.timezone
    specs = [
        JobSpec(f"{SYNC_JOB_PREFIX}{t}", f"sync {t}", run_sync, sync_trigger(service, tz), (t,))
        for t in targets
    ]
    specs.append(JobSpec(RETRY_JOB, "retry sweep", run_retry_sweep, retry_trigger(service, tz)))
    if service.report_enabled:
        specs.append(
            JobSpec(REPORT_JOB, "monthly workbook", run_monthly_report, report_trigger(service, tz))
        )
    return specs


class ServiceScheduler(BackgroundScheduler):  # type: ignore[misc]
    """APScheduler's background scheduler, minus one way of losing a due run.

    On ``shutdown`` APScheduler wakes its thread, which looks for due jobs once more although
    the executors are closed: the submission fails, yet the job's next run time moves on, so a
    run due at that moment (e.g. the monthly workbook of a service stopped while paused) would
    be skipped for good. A stopped scheduler does not look.
    """

    def _process_jobs(self) -> float | None:
        if self.state == STATE_STOPPED:
            return None
        wait: float | None = super()._process_jobs()
        return wait


def build_scheduler(config: Config, state: Engine) -> ServiceScheduler:
    """A (not yet started) background scheduler whose job store is the state database."""
    scheduler = ServiceScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=state, tablename=JOBS_TABLE)},
        executors={"default": ThreadPoolExecutor(max_workers=4)},
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": config.service.misfire_grace_seconds,
        },
        timezone=config.timezone,
    )
    scheduler.add_listener(_log_event, EVENT_JOB_SUBMITTED | EVENT_JOB_MISSED | EVENT_JOB_ERROR)
    return scheduler


def _same_job(job: Any, spec: JobSpec, grace: int) -> bool:
    trigger = job.trigger
    return bool(
        job.func_ref == spec.func_ref
        and type(trigger) is type(spec.trigger)
        and str(trigger) == str(spec.trigger)
        and str(getattr(trigger, "timezone", "")) == str(getattr(spec.trigger, "timezone", ""))
        and tuple(job.args) == spec.args
        and job.misfire_grace_time == grace
        and job.coalesce
        and job.max_instances == 1
    )


def reconcile_jobs(scheduler: BaseScheduler, config: Config, targets: list[str]) -> list[str]:
    """Make the job store hold exactly the configured jobs; returns the ids (re)scheduled.

    A job whose schedule did not change is left alone, keeping its ``next_run_time``: that is
    what lets a job missed while the service was down run once when it comes back. Call it on a
    scheduler started paused, so the job store is open and nothing runs yet.
    """
    grace = config.service.misfire_grace_seconds
    wanted = {spec.id: spec for spec in job_specs(config, targets)}
    for job in scheduler.get_jobs():
        if job.id not in wanted:
            log.info("removing job %s: no longer configured", job.id, extra={"job_id": job.id})
            scheduler.remove_job(job.id)
    changed = []
    for spec in wanted.values():
        existing = scheduler.get_job(spec.id)
        if existing is not None and _same_job(existing, spec, grace):
            continue
        scheduler.add_job(
            spec.func,
            trigger=spec.trigger,
            args=spec.args,
            id=spec.id,
            name=spec.name,
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=grace,
        )
        changed.append(spec.id)
    return changed


def _log_event(event: JobEvent) -> None:
    if isinstance(event, JobSubmissionEvent):
        for when in event.scheduled_run_times:
            log.info(
                "job %s due at %s started",
                event.job_id,
                when.isoformat(),
                extra={
                    "job_id": event.job_id,
                    "scheduled_run_time": when.astimezone(UTC).isoformat(),
                    "event": "job_submitted",
                },
            )
    elif event.code == EVENT_JOB_MISSED:
        log.warning(
            "job %s due at %s was missed beyond the grace time; it runs at its next time",
            event.job_id,
            event.scheduled_run_time.isoformat(),
            extra={"job_id": event.job_id, "event": "job_missed"},
        )
    elif event.exception is not None:
        log.error(
            "job %s failed: %s",
            event.job_id,
            event.exception,
            extra={"job_id": event.job_id, "event": "job_error"},
        )


# -- the jobs --------------------------------------------------------------------------------


def run_sync(target: str) -> None:
    """Job ``sync:<target>``: extract and push one target; alert when the run fails."""
    ctx = current_context()
    incident = f"sync:{target}"
    try:
        summary = ctx.engine.sync(targets=[target], should_stop=ctx.should_stop)
    except Exception as exc:
        log.exception("sync of %s failed", target, extra={"target": target, "kind": "sync"})
        ctx.alerts.open("run_failed", incident, f"the scheduled sync of {target} failed: {exc}")
        return
    if summary.stopped:
        log.info("sync of %s stopped: the service is stopping", target, extra={"target": target})
        return
    pushed = summary.targets[0].pushed if summary.targets else None
    log.info(
        "sync of %s done: %s",
        target,
        json.dumps(pushed.__dict__ if pushed else {}, sort_keys=True),
        extra={"target": target, "kind": "sync", "run_id": summary.run_id},
    )
    if summary.run_id is not None:
        fold_idle_run(ctx.engine.state, summary.run_id, ctx.config.timezone)
    ctx.alerts.resolve("run_failed", incident)
    ctx.alerts.check_record_alerts([target])


#: What an extract or a push did that makes a run worth its own line in the run history.
_WORK_COUNTS = {
    "extracted": ("new", "changed", "failed"),
    "pushed": ("sent", "recovered", "failed", "retrying", "dead"),
}


def is_idle(run: Mapping[Any, Any]) -> bool:
    """True for a finished sync run that found nothing to do: nothing new, changed or failed
    was extracted, nothing was sent, no check ran and no target failed."""
    if run["kind"] != "sync" or run["status"] != "ok" or run["error"]:
        return False
    counts = json.loads(run["counts"] or "{}")
    if "checks" in counts:
        return False
    for per_target in counts.values():
        for section, names in _WORK_COUNTS.items():
            done = per_target.get(section, {})
            if any(done.get(name, 0) for name in names):
                return False
    return True


def fold_idle_run(state: Engine, run_id: int, timezone: ZoneInfo) -> bool:
    """Fold the scheduled run ``run_id`` into its hour's idle line when it found nothing.

    The first idle run of a target in an hour (finance time zone) becomes that hour's line,
    status ``idle``, counting ``idle_runs``; later idle runs of the hour add to its count and
    its finish time and leave no row of their own. A run that did something is left alone.
    Returns True when the run was folded into an earlier line.
    """
    with state.begin() as conn:
        run = conn.execute(sa.select(runs).where(runs.c.id == run_id)).mappings().first()
        if run is None or not is_idle(run):
            return False
        local = run["started_at"].astimezone(timezone)
        hour_start = local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
        line = (
            conn.execute(
                sa.select(runs)
                .where(
                    runs.c.kind == "sync",
                    runs.c.status == "idle",
                    runs.c.target == run["target"],
                    runs.c.started_at >= hour_start,
                    runs.c.id < run_id,
                )
                .order_by(runs.c.id.desc())
                .limit(1)
            )
            .mappings()
            .first()
        )
        if line is None:
            conn.execute(
                runs.update()
                .where(runs.c.id == run_id)
                .values(status="idle", counts=json.dumps({"idle_runs": 1}))
            )
            return False
        folded = int(json.loads(line["counts"] or "{}").get("idle_runs", 1)) + 1
        conn.execute(
            runs.update()
            .where(runs.c.id == line["id"])
            .values(finished_at=run["finished_at"], counts=json.dumps({"idle_runs": folded}))
        )
        conn.execute(runs.delete().where(runs.c.id == run_id))
        return True


def run_retry_sweep() -> None:
    """Job ``retry-sweep``: push what is due on every target; open/resolve dead-record alerts."""
    ctx = current_context()
    targets = ctx.engine.target_names()
    for target in targets:
        incident = f"push:{target}"
        if ctx.should_stop():
            return
        try:
            counts = ctx.engine.push(target, should_stop=ctx.should_stop)
        except Exception as exc:
            log.exception("retry sweep of %s failed", target, extra={"target": target})
            ctx.alerts.open("run_failed", incident, f"pushing to {target} failed: {exc}")
            continue
        if counts.sent or counts.recovered:
            log.info(
                "retry sweep of %s: %d sent, %d recovered, %d dead",
                target,
                counts.sent,
                counts.recovered,
                counts.dead,
                extra={"target": target, "kind": "push"},
            )
        ctx.alerts.resolve("run_failed", incident)
    ctx.alerts.check_record_alerts(targets)


def run_monthly_report() -> None:
    """Job ``monthly-report``: the workbook of the month just ended (once), delivered."""
    ctx = current_context()
    period = report_period_due(ctx.clock(), ctx.config.service, ctx.config.timezone)
    try:
        produce_monthly_workbook(ctx.config, ctx.engine, ctx.alerts, period, clock=ctx.clock)
    except Exception as exc:
        log.exception("monthly workbook %s failed", period, extra={"kind": "report"})
        ctx.alerts.open("run_failed", f"report:{period}", f"the workbook {period} failed: {exc}")
    else:
        ctx.alerts.resolve("run_failed", f"report:{period}")


# -- the monthly workbook --------------------------------------------------------------------


@dataclass(frozen=True)
class WorkbookOutcome:
    """What the monthly job did for one period."""

    period: str
    built: bool  # False: already built (or being built by another process)
    path: Path | None
    delivered: bool | None  # None: nobody to deliver to
    error: str | None = None


@contextmanager
def _workbook_lock(state: Engine, period: str) -> Iterator[bool]:
    """On PostgreSQL, a session lock per period so two processes never build it together."""
    with state.connect() as conn:
        if conn.dialect.name != "postgresql":
            yield True
            return
        key = {"k": _WORKBOOK_LOCK_PREFIX + period}
        got = conn.execute(sa.text("SELECT pg_try_advisory_lock(hashtext(:k))"), key).scalar_one()
        conn.commit()
        try:
            yield bool(got)
        finally:
            if got:
                conn.execute(sa.text("SELECT pg_advisory_unlock(hashtext(:k))"), key)
                conn.commit()


def produce_monthly_workbook(
    config: Config,
    engine: SyncEngine,
    alerts: Alerts,
    period: str,
    *,
    clock: Callable[[], datetime] = utcnow,
) -> WorkbookOutcome:
    """Build and deliver the workbook of ``period`` unless the ``workbooks`` table has it.

    Recorded as a run of kind ``report``; a failed delivery opens a ``delivery_failed`` alert
    and keeps the file. Database and build errors propagate.
    """
    from reports.delivery import deliver_report

    state = engine.state
    with _workbook_lock(state, period) as locked:
        if not locked:
            log.info("workbook %s is being built by another process", period)
            return WorkbookOutcome(period, False, None, None)
        with state.connect() as conn:
            existing = conn.execute(
                sa.select(workbooks.c.path)
                .where(workbooks.c.period == period, workbooks.c.entity.is_(None))
                .limit(1)
            ).scalar()
        if existing is not None:
            log.info(
                "workbook %s was built already (%s); not building it again",
                period,
                existing,
                extra={"kind": "report"},
            )
            return WorkbookOutcome(period, False, Path(existing), None)
        with state.begin() as conn:
            run_id = conn.execute(
                runs.insert().values(
                    kind="report",
                    target=None,
                    actor="scheduler",
                    status="running",
                    started_at=clock(),
                    counts="{}",
                )
            ).inserted_primary_key[0]  # type: ignore[index]
        try:
            result = build_configured_report(config, engine.billing, state, period)
        except Exception as exc:
            with state.begin() as conn:
                conn.execute(
                    runs.update()
                    .where(runs.c.id == run_id)
                    .values(status="failed", finished_at=clock(), error=str(exc))
                )
            raise
        with state.begin() as conn:
            workbook_id = record_workbook(conn, result, built_at=clock(), run_id=run_id)
            conn.execute(
                runs.update()
                .where(runs.c.id == run_id)
                .values(
                    status="ok",
                    finished_at=clock(),
                    counts=json.dumps({"rows": result.rows, "exceptions": result.exceptions}),
                )
            )
    log.info(
        "workbook %s written to %s",
        period,
        result.path,
        extra={"kind": "report", "run_id": run_id},
    )
    if not (config.report.recipients and config.report.smtp):
        return WorkbookOutcome(period, True, result.path, None)
    delivery = deliver_report(result, config.report)
    with engine.state.begin() as conn:
        conn.execute(
            workbooks.update()
            .where(workbooks.c.id == workbook_id)
            .values(
                delivered_at=clock() if delivery.ok else None,
                delivery_error=delivery.error,
            )
        )
    if delivery.ok:
        alerts.resolve("delivery_failed", period)
    else:
        alerts.open(
            "delivery_failed",
            period,
            f"the workbook {period} was written to {result.path} but could not be e-mailed: "
            f"{delivery.error}",
        )
    return WorkbookOutcome(period, True, result.path, delivery.ok, delivery.error)


# -- the push worker ---------------------------------------------------------------------------


class PushWorker:
    """Claims and pushes due documents of every target until stopped; sleeps when idle."""

    def __init__(
        self, engine: SyncEngine, *, idle_seconds: float, stopping: threading.Event
    ) -> None:
        self.engine = engine
        self.idle_seconds = idle_seconds
        self.stopping = stopping
        self.rounds = 0

    def run_once(self) -> int:
        """Push every target once; returns how many documents were handled."""
        handled = 0
        for target in self.engine.target_names():
            if self.stopping.is_set():
                break
            try:
                counts = self.engine.push(target, should_stop=self.stopping.is_set)
            except Exception:
                # A broken target must not stop the others; the retry sweep alerts on it.
                service_log.exception("push to %s failed", target, extra={"target": target})
                continue
            handled += counts.sent + counts.recovered
            if counts.sent or counts.recovered:
                service_log.info(
                    "pushed %d to %s (%d created, %d updated, %d recovered, %d retrying, "
                    "%d failed, %d dead)",
                    counts.sent,
                    target,
                    counts.created,
                    counts.updated,
                    counts.recovered,
                    counts.retrying,
                    counts.failed,
                    counts.dead,
                    extra={"target": target, "kind": "push"},
                )
        self.rounds += 1
        return handled

    def run(self) -> None:
        """Loop until ``stopping`` is set."""
        while not self.stopping.is_set():
            if self.run_once() == 0:
                self.stopping.wait(self.idle_seconds)


# -- the service -------------------------------------------------------------------------------


class Service:
    """``finsync serve`` (scheduler when leader + push worker + HTTP) or ``finsync worker``."""

    def __init__(
        self,
        config: Config,
        *,
        mode: str = "serve",
        engine: SyncEngine | None = None,
        http: bool = True,
    ) -> None:
        from sync.engine import SyncEngine

        if mode not in ("serve", "worker"):
            raise ValueError(f"unknown mode {mode!r}")
        self.config = config
        self.mode = mode
        self.stopping = threading.Event()
        self.status = Status(mode)
        self.engine = engine or SyncEngine(config, actor=f"finsync-{mode}")
        self.engine.check()
        self.alerts: Alerts = Alerts(
            config.alerts, config.report.smtp, self.engine.state, clock=self.engine.clock
        )
        self._sqlite = sqlite_database(config.state_url)
        self._process_lock = SqliteProcessLock(self._sqlite) if self._sqlite else None
        self._leader_lock = (
            LeaderLock(config.state_url, config.service.leader_lock_key)
            if self._sqlite is None and mode == "serve"
            else None
        )
        self._scheduler: BackgroundScheduler | None = None
        self._http_enabled = http
        self.http: HttpServer | UvicornServer | None = None
        self.unfinished = False
        self.name = f"{socket.gethostname()}:{os.getpid()}:{self.status.started_at:%H%M%S%f}"

    # -- leadership ------------------------------------------------------------------------

    def _become_leader(self) -> None:
        sched = build_scheduler(self.config, self.engine.state)
        install_context(
            JobContext(self.config, self.engine, self.alerts, self.stopping, self.engine.clock)
        )
        # Paused first: the job store opens, the jobs are reconciled, nothing runs before.
        sched.start(paused=True)
        changed = reconcile_jobs(sched, self.config, self.engine.target_names())
        sched.resume()
        self._scheduler = sched
        self.status.leader = True
        service_log.info(
            "this process leads the scheduler (jobs rescheduled: %s)",
            ", ".join(changed) or "none",
            extra={"role": "leader", "event": "leader_elected"},
        )

    def _step_down(self) -> None:
        self.status.leader = False
        sched, self._scheduler = self._scheduler, None
        if sched is not None:
            service_log.warning(
                "lost the scheduler lead", extra={"role": "follower", "event": "lost_lead"}
            )
            sched.shutdown(wait=False)

    def _elect(self) -> None:
        if self.mode != "serve":
            return
        if self._leader_lock is None:  # SQLite: the only process leads
            if not self.status.leader:
                self._become_leader()
            return
        if self.status.leader:
            if not self._leader_lock.still_held():
                self._step_down()
        elif self._leader_lock.try_acquire():
            self._become_leader()

    # -- running ---------------------------------------------------------------------------

    def start(self) -> None:
        """Take the process lock (SQLite), start HTTP, the worker and the election loop's
        first round. Raises ServiceError when another process holds a SQLite state store."""
        if self._process_lock is not None:
            self._process_lock.acquire()
        if self._http_enabled and self.mode == "serve":
            host, port = self.config.service.health_host, self.config.service.health_port
            console = console_app(self.config, self.engine)
            self.http = (
                UvicornServer(host, port, asgi_app(self.engine.state, self.status, console))
                if console is not None
                else HttpServer(host, port, health_app(self.engine.state, self.status, None))
            )
            self.http.start()
            service_log.info(
                "health on http://%s:%d/health",
                self.config.service.health_host,
                self.http.port,
                extra={"event": "http_started"},
            )
        self._worker = PushWorker(
            self.engine,
            idle_seconds=self.config.service.worker_idle_seconds,
            stopping=self.stopping,
        )
        self._worker_thread = threading.Thread(target=self._worker.run, name="push-worker")
        self._worker_thread.start()
        self._elect()
        self.heartbeat()

    def heartbeat(self) -> None:
        """Record in ``service_processes`` that this process is alive and what role it has
        (the console's dashboard shows the leader and the workers from it)."""
        from sync.state import service_processes as table

        now = utcnow()
        values = {
            "mode": self.mode,
            "role": self.status.role,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started_at": self.status.started_at,
            "seen_at": now,
            "poll_seconds": self.config.service.leader_poll_seconds,
        }
        try:
            with self.engine.state.begin() as conn:
                updated = conn.execute(
                    table.update().where(table.c.name == self.name).values(**values)
                ).rowcount
                if not updated:
                    conn.execute(table.insert().values(name=self.name, **values))
        except sa.exc.DBAPIError as exc:
            service_log.warning(
                "could not record this process's heartbeat: %s",
                type(exc.orig).__name__,
                extra={"event": "heartbeat_failed"},
            )

    def _forget_heartbeat(self) -> None:
        from sync.state import service_processes as table

        try:
            with self.engine.state.begin() as conn:
                conn.execute(table.delete().where(table.c.name == self.name))
        except sa.exc.DBAPIError:
            pass  # the row ages out: the dashboard counts only processes seen lately

    def run(self) -> int:
        """Run until ``stop()`` (or SIGTERM/SIGINT when called on the main thread); returns 0."""
        self.start()
        try:
            while not self.stopping.wait(self.config.service.leader_poll_seconds):
                self._elect()
                self.heartbeat()
        finally:
            self.shutdown()
        return 0

    def stop(self, *_args: Any) -> None:
        """Ask everything to stop (safe from a signal handler)."""
        self.stopping.set()

    def shutdown(self) -> None:
        """Stop claiming, let the batch in flight finish, stop the scheduler, release locks."""
        self.stopping.set()
        timeout = self.config.service.stop_timeout_seconds
        service_log.info("stopping", extra={"event": "stopping"})
        self._worker_thread.join(timeout)
        sched, self._scheduler = self._scheduler, None
        if sched is not None:
            stopper = threading.Thread(target=sched.shutdown, kwargs={"wait": True}, daemon=True)
            stopper.start()
            stopper.join(timeout)
            self.unfinished = stopper.is_alive()
        self.unfinished = self.unfinished or self._worker_thread.is_alive()
        install_context(None)
        self.status.leader = False
        if self.http is not None:
            self.http.stop()
        if self._leader_lock is not None:
            self._leader_lock.release()
        if self._process_lock is not None:
            self._process_lock.release()
        self._forget_heartbeat()
        if not self.unfinished:
            self.engine.close()
        service_log.info(
            "stopped%s",
            " (work still in flight was abandoned; its leases will lapse)"
            if self.unfinished
            else "",
            extra={"event": "stopped"},
        )
