"""Run history and the dashboard (SQLite and PostgreSQL): a re-sync is a run with its counts,
activity and failures; idle scheduled runs fold into one line per target and hour; the
dashboard shows the leader, the workers, each job's last and next run, open alerts and the
records that need attention, those waiting behind a failure included."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

import scheduler as jobs
from api.app import create_app
from finsync.alerts import Alerts
from scheduler import Service
from sync.engine import SyncEngine
from sync.state import runs
from tests.console_support import (
    Seeded,
    console_setup,
    keys_for_roles,
    make_console_engine,
    seed_ledger,
)
from tests.engine_support import Clock, Setup


@dataclass
class Env:
    client: TestClient
    engine: SyncEngine
    setup: Setup
    seeded: Seeded
    clock: Clock
    viewer: dict[str, str]
    accountant: dict[str, str]


@pytest.fixture
def env(tmp_path, db_url) -> Iterator[Env]:
    setup = console_setup(tmp_path, db_url)
    clock = Clock()
    engine = make_console_engine(setup, clock)
    seeded = seed_ledger(engine)
    keys = keys_for_roles(engine, clock)
    app = create_app(setup.config(), engine=engine, clock=clock)
    with TestClient(app) as client:
        yield Env(
            client,
            engine,
            setup,
            seeded,
            clock,
            {"Authorization": f"Bearer {keys['viewer']}"},
            {"Authorization": f"Bearer {keys['accountant']}"},
        )
    engine.close()


def _run_rows(engine: SyncEngine) -> list[dict]:
    with engine.state.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(runs).order_by(runs.c.id)).mappings()]


def test_the_seeding_sync_lists_its_failures_on_its_run_page(env):
    run = env.client.get(f"/api/runs/{env.seeded.run_id}", headers=env.viewer).json()
    assert run["kind"] == "sync" and run["status"] == "ok"
    failed = sorted((f["label"], f["status"]) for f in run["failures"])
    assert failed == [("invoice INV-1", "failed"), ("invoice INV-3", "failed")]
    # 2 customers and 4 invoices were enqueued, 1 payment too; 5 of them synced.
    enqueued = {(a["kind"], a["count"]) for a in run["activity"] if a["event"] == "enqueued"}
    assert ("customer", 2) in enqueued and ("payment", 1) in enqueued
    synced = sum(a["count"] for a in run["activity"] if a["status"] == "synced")
    assert synced == 2 + 2 + 1  # customers, INV-2 and INV-40, PAY-1
    page = env.client.get(f"/runs/{env.seeded.run_id}", headers=env.viewer)
    assert page.status_code == 200
    assert "invoice INV-1" in page.text and "invoice INV-3" in page.text
    assert f'href="/records/{env.seeded.ids["invoice INV-1"]}"' in page.text
    assert env.client.get("/api/runs/999999", headers=env.viewer).status_code == 404


def test_a_resync_is_a_run_with_its_counts(env):
    env.clock.advance(90)
    inv3 = env.seeded.ids["invoice INV-3"]
    answer = env.client.post(
        "/api/resync",
        headers=env.accountant,
        json={"ledger_ids": [inv3], "reason": "period reopened"},
    ).json()
    assert answer["items"][0]["status_now"] == "synced"
    run = env.client.get(f"/api/runs/{answer['run_id']}", headers=env.viewer).json()
    assert (run["kind"], run["actor"], run["status"], run["target"]) == (
        "resync",
        "accountant-key",
        "ok",
        "erp",
    )
    assert run["counts"]["erp"]["requeued"]["queued"] == 1
    assert run["counts"]["erp"]["pushed"]["sent"] == 1
    assert run["failures"] == []
    outcomes = {(a["kind"], a["event"], a["status"], a["count"]) for a in run["activity"]}
    assert ("invoice", "resync", "pending", 1) in outcomes
    assert any(o[0] == "invoice" and o[2] == "synced" and o[3] == 1 for o in outcomes)
    listed = env.client.get("/runs", headers=env.viewer).text
    assert f'href="/runs/{answer["run_id"]}"' in listed
    assert "erp: 1 queued again" in listed
    # A dry run changes nothing, so it is no run.
    before = len(_run_rows(env.engine))
    dry = env.client.post(
        "/api/resync",
        headers=env.accountant,
        json={"ledger_ids": [inv3], "reason": "look", "dry_run": True},
    ).json()
    assert dry["run_id"] is None and len(_run_rows(env.engine)) == before


def test_idle_scheduled_runs_fold_into_one_line_per_hour(env):
    tz = env.setup.config().timezone
    env.clock.now = env.clock.now.replace(minute=0, second=30)
    first = len(_run_rows(env.engine))

    def scheduled_sync() -> int:
        summary = env.engine.sync(targets=["erp"])
        jobs.fold_idle_run(env.engine.state, summary.run_id, tz)
        env.clock.advance(5 * 60)
        return summary.run_id

    idle_line = scheduled_sync()
    for _ in range(3):
        scheduled_sync()
    rows = _run_rows(env.engine)
    assert len(rows) == first + 1
    assert rows[-1]["id"] == idle_line and rows[-1]["status"] == "idle"
    assert json.loads(rows[-1]["counts"]) == {"idle_runs": 4}
    # Work in between keeps its own line; the next idle run joins the hour's idle line.
    env.seeded.billing.customer("INITECH-3")
    worked = scheduled_sync()
    scheduled_sync()
    rows = _run_rows(env.engine)
    assert [r["id"] for r in rows[first:]] == [idle_line, worked]
    assert json.loads(rows[first]["counts"]) == {"idle_runs": 5}
    # A new hour, a new idle line.
    env.clock.now = env.clock.now.replace(minute=0) + timedelta(hours=1)
    next_hour = scheduled_sync()
    assert [r["id"] for r in _run_rows(env.engine)[first:]] == [idle_line, worked, next_hour]
    page = env.client.get("/runs", headers=env.viewer).text
    assert "5 scheduled runs found nothing to send" in page
    assert "1 scheduled run found nothing to send" in page


def test_dashboard_shows_health_jobs_alerts_and_waiting_records(env):
    config = env.setup.config()
    # A record that fails, and a payment of it that waits behind it.
    billing = env.seeded.billing
    customer = billing.customer("HOOLI-4")
    invoice = billing.invoice(
        customer, number="INV-77", lines=[{"sku": "cdn-pro", "unit_price": "80.00"}]
    )
    billing.payment(customer, "80.00", applications=[(invoice, "80.00")], reference="PAY-77")
    env.engine.sync()

    service = Service(config, engine=env.engine, http=False)
    service.status.leader = True
    service.heartbeat()
    sched = jobs.build_scheduler(config, env.engine.state)
    sched.start(paused=True)
    jobs.reconcile_jobs(sched, config, env.engine.target_names())
    next_sync = sched.get_job("sync:erp").next_run_time.astimezone(UTC)
    sched.shutdown(wait=False)
    Alerts(config.alerts, None, env.engine.state, clock=env.clock).open(
        "dead_records", "erp", "2 record(s) for erp ran out of retries"
    )

    page = env.client.get("/", headers=env.viewer)
    assert page.status_code == 200
    text = page.text
    health = text[text.index('id="health"') : text.index('id="alerts"')]
    assert f"(pid {os.getpid()}," in health
    assert "1 push worker alive" in health
    assert f"{next_sync:%Y-%m-%d %H:%M} UTC" in health
    assert "sync:erp" in health and "retry-sweep" in health
    alerts = text[text.index('id="alerts"') : text.index('id="attention"')]
    assert "dead records" in alerts and "2 record(s) for erp ran out of retries" in alerts
    attention = text[text.index('id="attention"') :]
    assert "/failures?status=waiting" in attention
    # Failed: INV-1, INV-3 (seed) and INV-77; waiting: PAY-77.
    assert "Needs attention <small>4</small>" in attention

    listed = env.client.get("/api/records?status=pending", headers=env.viewer).json()
    assert [r["label"] for r in listed["items"]] == ["payment PAY-77"]
    failures = env.client.get("/failures", headers=env.viewer).text
    assert "payment PAY-77" in failures and "invoice INV-77" in failures
    waiting = env.client.get("/failures?status=waiting", headers=env.viewer).text
    assert ">payment PAY-77</a>" in waiting and ">invoice INV-77</a>" not in waiting

    service._forget_heartbeat()
    gone = env.client.get("/", headers=env.viewer).text
    assert "No <code>finsync serve</code> or <code>finsync worker</code> is running" in gone
