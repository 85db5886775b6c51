"""The console's records, re-sync, audit and workbooks over the API (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from sync.engine import SyncEngine
from sync.state import workbooks
from tests.builders import BillingBuilder
from tests.console_support import (
    console_setup,
    keys_for_roles,
    make_console_engine,
    scripted,
    seed_ledger,
)
from tests.engine_support import Clock, Setup


@dataclass
class Env:
    """A console over a seeded ledger on ``db_url``."""

    client: TestClient
    engine: SyncEngine
    setup: Setup
    ids: dict[str, int]
    billing: BillingBuilder
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
            seeded.ids,
            seeded.billing,
            {"Authorization": f"Bearer {keys['viewer']}"},
            {"Authorization": f"Bearer {keys['accountant']}"},
        )
    engine.close()


def labels(env: Env, query: str) -> list[str]:
    response = env.client.get(f"/api/records?{query}", headers=env.viewer)
    assert response.status_code == 200, response.text
    return sorted(item["label"] for item in response.json()["items"])


def test_records_filters(env):
    assert labels(env, "status=failed") == ["invoice INV-1", "invoice INV-3"]
    assert labels(env, "status=failed&customer=GLOBEX-2") == ["invoice INV-3"]
    assert labels(env, "kind=payment") == ["payment PAY-1"]
    assert labels(env, "q=inv-4") == ["invoice INV-40"]
    assert labels(env, "q=INV-") == [
        "invoice INV-1",
        "invoice INV-2",
        "invoice INV-3",
        "invoice INV-40",
    ]
    assert labels(env, "date_from=2026-01-20&date_to=2026-01-27") == [
        "invoice INV-3",
        "payment PAY-1",
    ]
    assert labels(env, "status=synced&status=failed&kind=customer") == [
        "customer ACME-1",
        "customer GLOBEX-2",
    ]
    assert labels(env, "target=nowhere") == []
    assert labels(env, "q=50%25") == []  # LIKE wildcards are taken literally


def test_records_are_paged(env):
    first = env.client.get("/api/records?limit=4", headers=env.viewer).json()
    second = env.client.get("/api/records?limit=4&offset=4", headers=env.viewer).json()
    assert first["total"] == second["total"] == 7
    assert len(first["items"]) == 4 and len(second["items"]) == 3
    assert {i["id"] for i in first["items"]}.isdisjoint({i["id"] for i in second["items"]})


def test_record_detail_shows_error_history_and_the_difference_billing_now_makes(env):
    inv3 = env.ids["invoice INV-3"]
    detail = env.client.get(f"/api/records/{inv3}", headers=env.viewer).json()
    assert detail["status"] == "failed"
    assert "Period Jan 2026 is closed" in detail["last_error"]
    history = [(e["event"], e["status"]) for e in detail["history"]]
    assert history == [("enqueued", "pending"), ("permanent", "failed")]
    assert "Period Jan 2026 is closed" in detail["history"][-1]["detail"]
    assert detail["external_id"] == "finsync:inv:INV-3"
    assert (detail["payload"]["tranId"], detail["payload"]["itemList"][0]["amount"]) == (
        "INV-3",
        "100.00",
    )
    assert detail["synced_payload"] is None
    assert detail["current"]["state"] == "never sent"

    inv2 = env.ids["invoice INV-2"]
    same = env.client.get(f"/api/records/{inv2}", headers=env.viewer).json()
    assert same["status"] == "synced" and same["current"] == {
        "state": "unchanged",
        "message": None,
        "changes": [],
    }
    env.billing.set_line_amount(int(same["source_id"]), 1, "120.00")
    changed = env.client.get(f"/api/records/{inv2}", headers=env.viewer).json()
    assert changed["current"]["state"] == "changed"
    changes = {c["path"]: (c["old"], c["new"]) for c in changed["current"]["changes"]}
    assert changes["itemList[0].amount"] == ("100.00", "120.00")
    assert set(changes) == {"itemList[0].amount", "itemList[0].rate", "itemList[0].tax1Amt"}
    assert changes["itemList[0].tax1Amt"] == ("7.25", "8.70")


def test_record_detail_of_an_unmapped_sku_says_how_to_fix_it(env):
    detail = env.client.get(f"/api/records/{env.ids['invoice INV-1']}", headers=env.viewer).json()
    assert detail["current"]["state"] == "mapping failed"
    assert "cdn-pro" in detail["current"]["message"]
    assert env.client.get("/api/records/999999", headers=env.viewer).status_code == 404


def test_resync_after_a_mapping_fix_sends_the_record_and_audits_who_why_what(env):
    inv1 = env.ids["invoice INV-1"]
    before = env.client.post(
        "/api/resync", headers=env.accountant, json={"ledger_ids": [inv1], "reason": "try"}
    ).json()
    assert before["items"][0]["outcome"] == "mapping failed"
    assert before["items"][0]["status_now"] == "failed"

    mapping = env.setup.mapping_path
    mapping.write_text(
        mapping.read_text().replace('plat-pro = "102"', 'plat-pro = "102"\ncdn-pro = "104"')
    )
    response = env.client.post(
        "/api/resync",
        headers=env.accountant,
        json={"numbers": ["INV-1"], "reason": "cdn-pro mapped to item 104"},
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["matched"], result["queued"], result["pushed"]) == (1, 1, True)
    item = result["items"][0]
    assert (item["ledger_id"], item["status_before"], item["status_now"]) == (
        inv1,
        "failed",
        "synced",
    )
    stored = {r["external_id"]: r for r in scripted(env.engine).records()}
    lines = stored["finsync:inv:INV-1"]["payload"]["itemList"]
    assert [(line["item"], line["amount"]) for line in lines] == [({"internalId": "104"}, "250.00")]
    assert Decimal(lines[0]["tax1Amt"]) == Decimal("18.13")

    audit = env.client.get("/api/audit?action=resync", headers=env.viewer).json()
    assert audit["total"] == 2
    latest = audit["items"][0]
    assert latest["actor"] == "accountant-key"
    assert latest["reason"] == "cdn-pro mapped to item 104"
    assert latest["details"]["selection"] == {"numbers": ["INV-1"]}
    assert latest["details"]["records"] == [
        {"ledger_id": inv1, "target": "erp", "label": "invoice INV-1", "outcome": "queued"}
    ]
    assert latest["at"] == "2026-02-01T12:00:00Z"


def test_resync_of_every_failure_without_push_only_queues(env):
    response = env.client.post(
        "/api/resync",
        headers=env.accountant,
        json={"statuses": ["failed"], "reason": "period reopened", "push": False},
    ).json()
    outcomes = {i["label"]: (i["outcome"], i["status_now"]) for i in response["items"]}
    assert outcomes == {
        "invoice INV-1": ("mapping failed", "failed"),
        "invoice INV-3": ("queued", "pending"),
    }
    assert response["pushed"] is False
    assert "finsync:inv:INV-3" not in {r["external_id"] for r in scripted(env.engine).records()}


def test_resync_dry_run_changes_nothing(env):
    inv3 = env.ids["invoice INV-3"]
    result = env.client.post(
        "/api/resync",
        headers=env.accountant,
        json={"ledger_ids": [inv3], "reason": "look", "dry_run": True},
    ).json()
    assert (result["dry_run"], result["audit_id"], result["queued"]) == (True, None, 1)
    assert result["items"][0]["status_now"] == "failed"
    assert env.client.get("/api/audit", headers=env.viewer).json()["total"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {"reason": "no selection"},
        {"ledger_ids": [1], "reason": "   "},
        {"ledger_ids": [1]},
        {"ledger_ids": [0], "reason": "x"},
        {"statuses": ["lost"], "reason": "x"},
    ],
)
def test_resync_refuses_requests_without_selection_or_reason(env, body):
    response = env.client.post("/api/resync", headers=env.accountant, json=body)
    assert response.status_code == 422
    assert env.client.get("/api/audit", headers=env.viewer).json()["total"] == 0


def test_viewer_cannot_resync(env):
    response = env.client.post(
        "/api/resync", headers=env.viewer, json={"ledger_ids": [1], "reason": "x"}
    )
    assert response.status_code == 403


def test_runs_and_status(env):
    runs = env.client.get("/api/runs", headers=env.viewer).json()
    assert runs["total"] == 1
    run = runs["items"][0]
    assert (run["kind"], run["status"]) == ("sync", "ok")
    assert run["counts"]["erp"]["pushed"]["created"] == 5
    status = env.client.get("/api/status", headers=env.viewer).json()
    assert status["totals"] == {
        "pending": 0,
        "sending": 0,
        "synced": 5,
        "retry": 0,
        "failed": 2,
        "dead": 0,
    }
    invoices = next(c for c in status["counts"] if c["kind"] == "invoice")
    assert invoices["counts"] == {"failed": 2, "synced": 2} and invoices["total"] == 4


def test_workbooks_from_the_report_folder_then_from_the_table(env):
    out_dir = env.setup.config().report.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "finance-2026-01.xlsx").write_bytes(b"PK\x03\x04january")
    (out_dir / "notes.txt").write_text("not a workbook")
    listed = env.client.get("/api/workbooks", headers=env.viewer).json()
    assert listed["source"] == "out_dir" and "no workbook is recorded" in listed["note"]
    assert [w["id"] for w in listed["items"]] == ["finance-2026-01.xlsx"]
    download = env.client.get(
        "/api/workbooks/finance-2026-01.xlsx/download", headers=env.accountant
    )
    assert download.status_code == 200 and download.content == b"PK\x03\x04january"
    assert 'filename="finance-2026-01.xlsx"' in download.headers["content-disposition"]
    assert (
        env.client.get("/api/workbooks/notes.txt/download", headers=env.accountant).status_code
        == 404
    )
    assert (
        env.client.get(
            "/api/workbooks/..%2Ffinsync.toml/download", headers=env.accountant
        ).status_code
        == 404
    )

    built = out_dir / "finance-2026-02-acme-us.xlsx"
    built.write_bytes(b"PK\x03\x04february")
    with env.engine.state.begin() as conn:
        conn.execute(
            workbooks.insert().values(
                period="2026-02",
                entity="acme-us",
                path=str(built),
                built_at=datetime(2026, 3, 1, 6, 0, tzinfo=UTC),
                delivery_error="SMTP 550 mailbox unavailable",
            )
        )
        row_id = conn.execute(sa.select(workbooks.c.id)).scalar_one()
    listed = env.client.get("/api/workbooks", headers=env.viewer).json()
    assert listed["source"] == "table" and listed["note"] is None
    [item] = listed["items"]
    assert (item["id"], item["period"], item["entity"], item["available"]) == (
        str(row_id),
        "2026-02",
        "acme-us",
        True,
    )
    assert item["delivery_error"] == "SMTP 550 mailbox unavailable"
    download = env.client.get(f"/api/workbooks/{row_id}/download", headers=env.accountant)
    assert download.content == b"PK\x03\x04february"
    # the table rules now: a stray file in the folder is not served
    assert (
        env.client.get(
            "/api/workbooks/finance-2026-01.xlsx/download", headers=env.accountant
        ).status_code
        == 404
    )
    downloads = env.client.get("/api/audit?action=download", headers=env.viewer).json()["items"]
    assert [(d["actor"], d["details"]["file"]) for d in downloads] == [
        ("accountant-key", "finance-2026-02-acme-us.xlsx"),
        ("accountant-key", "finance-2026-01.xlsx"),
    ]


def test_pages_render_for_a_signed_in_viewer(env):
    page = env.client.get("/signin")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    token = env.viewer["Authorization"].split()[1]
    env.client.post("/signin", data={"token": token, "csrf": csrf})
    dashboard = env.client.get("/")
    assert dashboard.status_code == 200 and "viewer-key" in dashboard.text
    failures = env.client.get("/failures")
    assert "invoice INV-1" in failures.text and "invoice INV-3" in failures.text
    assert "invoice INV-2" not in failures.text
    by_customer = env.client.get("/failures?status=all&customer=GLOBEX-2")
    assert "invoice INV-40" in by_customer.text and "invoice INV-1" not in by_customer.text
    record = env.client.get(f"/records/{env.ids['invoice INV-1']}")
    assert "no item mapped for SKU &#39;cdn-pro&#39;" in record.text
    assert "Re-sync" not in record.text.split("<h2>History")[0].split("Billing now")[1]
    assert env.client.get("/failures?date_from=yesterday").status_code == 400
    for path in ("/runs", "/audit", "/workbooks"):
        assert env.client.get(path).status_code == 200
    assert env.client.get("/admin").status_code == 403
