"""Alerts reach a real SMTP server (aiosmtpd) and a real webhook receiver on 127.0.0.1, once
per incident: many dead records are one message; a failed workbook delivery is one message;
a cleared condition followed by a new one is a second message. SQLite and PostgreSQL."""

from __future__ import annotations

import email
import email.policy
import io
import json
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

import scheduler as jobs
from finsync.alerts import Alerts
from finsync.logs import RedactingFilter, config_secrets, configure_logging
from sync.state import alerts as alerts_table
from sync.state import workbooks
from tests.builders import BillingBuilder
from tests.engine_support import Clock, make_engine
from tests.service_support import service_config

WEBHOOK_SECRET = "whk-7f3a9c1e55d2"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Mailbox:
    """Accepts mail; refuses (554) any message whose text contains ``refuse_containing``."""

    refuse_containing: bytes | None = None
    received: list[Any] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse_containing and self.refuse_containing in envelope.content:
            return "554 5.7.1 message refused"
        self.received.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)
        )
        return "250 OK"


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = _free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


@pytest.fixture
def webhook() -> Iterator[tuple[list[dict[str, Any]], int]]:
    calls: list[dict[str, Any]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            calls.append({"headers": dict(self.headers), "body": json.loads(body)})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield calls, int(server.server_address[1])
    server.shutdown()
    server.server_close()


def _alerting_setup(tmp_path, db_url, smtp_port, webhook_port, monkeypatch, **kwargs):
    monkeypatch.setenv("FINSYNC_TEST_WEBHOOK_SECRET", WEBHOOK_SECRET)
    sections = f"""
[report]
recipients = ["finance@example.com"]

[report.smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
sender = "finsync@example.com"

[alerts]
recipients = ["oncall@example.com"]
webhook_url = "http://127.0.0.1:{webhook_port}/hooks/finsync"
webhook_secret = {{ env = "FINSYNC_TEST_WEBHOOK_SECRET" }}
"""
    return service_config(tmp_path, db_url, extra_sections=sections, **kwargs)


def _alert_mails(box: Mailbox) -> list[Any]:
    return [m for m in box.received if m["Subject"].startswith("[finsync]")]


def test_many_dead_records_are_one_incident_announced_once(
    tmp_path, db_url, mailbox, webhook, monkeypatch
):
    box, smtp_port = mailbox
    calls, hook_port = webhook
    setup = _alerting_setup(
        tmp_path, db_url, smtp_port, hook_port, monkeypatch, sync={"max_attempts": 1}
    )
    clock = Clock()
    engine = make_engine(setup, clock)
    builder = BillingBuilder(engine.billing)
    for n in range(3):
        builder.customer(f"C-{n}")
    config = setup.config()
    alerts = Alerts(config.alerts, config.report.smtp, engine.state, clock=clock)
    jobs.install_context(jobs.JobContext(config, engine, alerts, clock=clock))
    try:
        engine.connector("erp").fail_next(times=1)  # the one attempt fails: all go dead
        jobs.run_sync("erp")
        jobs.run_retry_sweep()
        jobs.run_retry_sweep()
        dead = [m for m in _alert_mails(box) if "dead records" in m["Subject"]]
        assert len(dead) == 1
        assert dead[0]["To"] == "oncall@example.com"
        assert "3 record(s) for erp ran out of retries" in dead[0].get_content()
        assert [c["body"]["kind"] for c in calls] == ["dead_records"]
        assert calls[0]["body"]["incident"] == "erp"
        assert calls[0]["headers"]["X-Finsync-Secret"] == WEBHOOK_SECRET

        # Fixed and re-synced: the incident resolves; the next dead record is a new one.
        from sync.engine import Selection

        engine.resync(Selection(statuses=("dead",)), reason="ERP back up")
        jobs.run_retry_sweep()
        assert alerts.open_incidents() == []
        # The end of the incident is announced on both channels.
        [resolved] = [m for m in _alert_mails(box) if m["Subject"].startswith("[finsync] resolved")]
        assert resolved["Subject"] == "[finsync] resolved: dead records: erp"
        assert "3 record(s) for erp ran out of retries" in resolved.get_content()
        assert [c["body"]["event"] for c in calls] == ["alert.opened", "alert.resolved"]
        builder.customer("C-9")
        engine.connector("erp").fail_next(times=1)
        jobs.run_sync("erp")
        jobs.run_retry_sweep()
        opened = [m for m in _alert_mails(box) if m["Subject"] == "[finsync] dead records: erp"]
        assert len(opened) == 2
        assert [c["body"]["event"] for c in calls] == [
            "alert.opened",
            "alert.resolved",
            "alert.opened",
        ]
        with engine.state.connect() as conn:
            rows = conn.execute(
                sa.select(alerts_table.c.kind, alerts_table.c.resolved_at.is_(None))
            ).all()
        assert sorted(rows) == [("dead_records", False), ("dead_records", True)]
    finally:
        jobs.install_context(None)
        engine.close()


def test_permanent_failures_are_one_grouped_alert_and_their_fix_resolves_it(
    tmp_path, db_url, mailbox, webhook, monkeypatch
):
    box, smtp_port = mailbox
    calls, hook_port = webhook
    setup = _alerting_setup(tmp_path, db_url, smtp_port, hook_port, monkeypatch)
    clock = Clock()
    engine = make_engine(setup, clock)
    builder = BillingBuilder(engine.billing)
    customer = builder.customer("ACME-1")
    for n in range(4):  # four invoices of a SKU the mapping file does not know
        builder.invoice(customer, number=f"INV-{n}", lines=[{"sku": "cdn-pro"}])
    builder.invoice(customer, number="INV-OK")
    config = setup.config()
    alerts = Alerts(config.alerts, config.report.smtp, engine.state, clock=clock)
    jobs.install_context(jobs.JobContext(config, engine, alerts, clock=clock))
    try:
        jobs.run_sync("erp")
        jobs.run_sync("erp")
        jobs.run_retry_sweep()
        [mail] = _alert_mails(box)
        assert mail["Subject"] == "[finsync] failed records: erp"
        text = mail.get_content()
        assert "4 record(s) for erp failed permanently" in text
        assert text.count("cdn-pro") >= 1 and "- 4 x " in text  # one group of four
        assert "INV-OK" not in text
        assert [(c["body"]["event"], c["body"]["kind"]) for c in calls] == [
            ("alert.opened", "failed_records")
        ]

        # The SKU is mapped; the re-sync sends them; the next check says it is over.
        mapping = setup.mapping_path.read_text()
        setup.mapping_path.write_text(
            mapping.replace('plat-pro = "102"', 'plat-pro = "102"\ncdn-pro = "104"')
        )
        engine.reload_mapping()
        from sync.engine import Selection

        result = engine.resync(Selection(statuses=("failed",)), reason="cdn-pro mapped")
        engine.push_resync(result)
        jobs.run_retry_sweep()
        assert alerts.open_incidents() == []
        assert [m["Subject"] for m in _alert_mails(box)] == [
            "[finsync] failed records: erp",
            "[finsync] resolved: failed records: erp",
        ]
        assert [c["body"]["event"] for c in calls] == ["alert.opened", "alert.resolved"]
        assert "4 record(s) for erp failed permanently" in calls[1]["body"]["detail"]
    finally:
        jobs.install_context(None)
        engine.close()


def test_failed_workbook_delivery_is_announced_once_and_recorded(
    tmp_path, db_url, mailbox, webhook, monkeypatch
):
    box, smtp_port = mailbox
    box.refuse_containing = b"finsync monthly report"  # the workbook mail bounces, alerts pass
    calls, hook_port = webhook
    setup = _alerting_setup(tmp_path, db_url, smtp_port, hook_port, monkeypatch)
    clock = Clock()
    engine = make_engine(setup, clock)
    BillingBuilder(engine.billing)
    config = setup.config()
    alerts = Alerts(config.alerts, config.report.smtp, engine.state, clock=clock)
    try:
        first = jobs.produce_monthly_workbook(config, engine, alerts, "2026-01", clock=clock)
        again = jobs.produce_monthly_workbook(config, engine, alerts, "2026-01", clock=clock)
        assert first.built and first.delivered is False and first.path.exists()
        assert "554" in (first.error or "")
        assert not again.built  # the workbooks table guards the period
        with engine.state.connect() as conn:
            rows = conn.execute(
                sa.select(workbooks.c.period, workbooks.c.delivered_at, workbooks.c.delivery_error)
            ).all()
        assert len(rows) == 1 and rows[0][0] == "2026-01" and rows[0][1] is None
        assert "554" in rows[0][2]
        [mail] = _alert_mails(box)
        assert mail["Subject"] == "[finsync] delivery failed: 2026-01"
        assert [(c["body"]["kind"], c["body"]["incident"]) for c in calls] == [
            ("delivery_failed", "2026-01")
        ]
    finally:
        engine.close()


def test_logs_mask_secrets_and_credential_headers(tmp_path, monkeypatch):
    setup = _alerting_setup(tmp_path, f"sqlite:///{tmp_path / 's.db'}", 25, 80, monkeypatch)
    config = setup.config()
    stream = io.StringIO()
    handler = configure_logging(json_logs=True, secrets=config_secrets(config), stream=stream)
    try:
        log = logging.getLogger("finsync.test")
        log.warning(
            "posting with %s", f"X-Finsync-Secret: {WEBHOOK_SECRET}", extra={"target": "erp"}
        )
        log.error("login failed: password=hunter2hunter Authorization: Basic dXNlcjpwYXNz")
        try:
            raise ValueError(f"bad key {WEBHOOK_SECRET}")
        except ValueError:
            log.exception("call failed", extra={"run_id": 7, "kind": "sync"})
    finally:
        logging.getLogger().removeHandler(handler)
    text = stream.getvalue()
    assert WEBHOOK_SECRET not in text
    assert "hunter2hunter" not in text and "dXNlcjpwYXNz" not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines[0]["message"] == "posting with X-Finsync-Secret: ***"
    assert lines[0]["target"] == "erp"
    assert lines[2]["run_id"] == 7 and lines[2]["kind"] == "sync"
    assert "ValueError: bad key ***" in lines[2]["exception"]
    assert RedactingFilter().redact("token=abc123 and more") == "token=*** and more"
