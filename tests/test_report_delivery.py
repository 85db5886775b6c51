"""Report delivery against a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from core.errors import ConfigError
from finsync.config import ReportSettings, Secret, SmtpSettings
from reports import deliver_report
from reports.workbook import CurrencyTotals, ReportResult

PASSWORD = "s3cret-Passw0rd"


@dataclass
class Handler:
    """Accepts mail, or answers every DATA with ``refuse`` (e.g. a 451 try-again)."""

    refuse: str | None = None
    received: list[Any] = field(default_factory=list)
    data_calls: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.data_calls += 1
        if self.refuse:
            return self.refuse
        self.received.append(envelope)
        return "250 OK"


def _authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[tuple[Handler, int]]:
    handler = Handler()
    port = _free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        authenticator=_authenticator,
        auth_require_tls=False,
    )
    controller.start()
    yield handler, port
    controller.stop()


@pytest.fixture
def result(tmp_path: Path) -> ReportResult:
    path = tmp_path / "finsync-monthly-2026-10.xlsx"
    path.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 40)
    totals = (
        CurrencyTotals(
            currency="USD",
            invoiced=D("1958.13"),
            tax=D("158.13"),
            voided=D("600.00"),
            credited=D("120.00"),
            collected=D("300.00"),
            refunded=D("50.00"),
            recognized=D("750.00"),
            deferred_closing=D("1300.00"),
            open_receivable=D("2238.13"),
            credit_balance=D("250.00"),
        ),
    )
    return ReportResult(
        path=path,
        period="2026-10",
        entity=None,
        entities=("acme-us",),
        totals=totals,
        rows={"invoices": 4},
        exceptions=3,
        generated_at=datetime(2026, 11, 1, 6, tzinfo=UTC),
    )


def _settings(port: int, password: str = PASSWORD) -> ReportSettings:
    smtp = SmtpSettings(
        host="127.0.0.1",
        port=port,
        security="none",
        sender="finsync@acme.example",
        username="finsync",
        password=Secret(password, "test"),
        timeout_seconds=5.0,
    )
    return ReportSettings(recipients=("cfo@acme.example", "ap@acme.example"), smtp=smtp)


def test_report_arrives_with_the_workbook_byte_identical(
    smtp_server: tuple[Handler, int], result: ReportResult
) -> None:
    handler, port = smtp_server
    delivery = deliver_report(result, _settings(port))
    assert delivery.ok and delivery.error is None and delivery.attempts == 1
    [envelope] = handler.received
    assert sorted(envelope.rcpt_tos) == ["ap@acme.example", "cfo@acme.example"]
    msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert msg["Subject"] == "finsync monthly report 2026-10"
    body = msg.get_body(preferencelist=("plain",)).get_content()
    assert "1,958.13" in body and "exceptions needing attention: 3" in body
    lines = {line.split("  ")[0]: line for line in body.splitlines()}
    assert lines["Net collected"].split() == ["Net", "collected", "250.00"]
    [attachment] = list(msg.iter_attachments())
    assert attachment.get_filename() == result.path.name
    assert attachment.get_content_type().endswith("spreadsheetml.sheet")
    assert attachment.get_content() == result.path.read_bytes()


def test_refusing_server_is_retried_and_reported(
    smtp_server: tuple[Handler, int], result: ReportResult
) -> None:
    handler, port = smtp_server
    handler.refuse = "451 4.3.0 Mailbox busy, try again later"
    delivery = deliver_report(result, _settings(port), max_attempts=3, backoff_seconds=0.01)
    assert not delivery.delivered
    assert delivery.attempts == 3 == handler.data_calls
    assert "451" in (delivery.error or "")
    assert result.path.exists()


def test_permanent_refusal_and_bad_login_are_not_retried(
    smtp_server: tuple[Handler, int], result: ReportResult
) -> None:
    handler, port = smtp_server
    wrong = "wrong-" + PASSWORD
    delivery = deliver_report(result, _settings(port, wrong), max_attempts=3, backoff_seconds=0.01)
    assert not delivery.delivered and delivery.attempts == 1
    assert "535" in (delivery.error or "")
    assert wrong not in (delivery.error or "") and wrong not in repr(delivery)
    handler.refuse = "554 5.7.1 Rejected"
    delivery = deliver_report(result, _settings(port), max_attempts=3, backoff_seconds=0.01)
    assert delivery.attempts == 1 and "554" in (delivery.error or "")
    assert handler.received == [] and result.path.exists()


def test_unreachable_server_is_retried_then_reported(result: ReportResult) -> None:
    port = _free_port()  # nothing listens there
    delivery = deliver_report(result, _settings(port), max_attempts=2, backoff_seconds=0.01)
    assert not delivery.delivered and delivery.attempts == 2
    assert "127.0.0.1" in (delivery.error or "") and PASSWORD not in (delivery.error or "")
    assert result.path.exists()


def test_missing_smtp_settings_are_a_config_error(result: ReportResult) -> None:
    with pytest.raises(ConfigError) as err:
        deliver_report(result, ReportSettings(recipients=("a@b.example",)))
    assert err.value.key == "report.smtp"
