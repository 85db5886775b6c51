"""Getting the workbook to finance: e-mail over SMTP (``reports.files`` wrote it atomically).

Mail goes out with smtplib (STARTTLS, TLS or plain), retried with bounded exponential backoff; a
delivery that still fails is reported in the ``DeliveryResult`` (never with a secret in it) and
the file stays where it is.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import TYPE_CHECKING

from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from core.errors import ConfigError
from finsync.config import ReportSettings, SmtpSettings

if TYPE_CHECKING:
    from reports.workbook import ReportResult

XLSX_TYPE = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")


@dataclass(frozen=True)
class DeliveryResult:
    """What happened to one e-mail delivery. ``error`` is set when it failed."""

    delivered: bool
    path: Path
    recipients: tuple[str, ...]
    attempts: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the message was accepted by the SMTP server."""
        return self.delivered


def build_message(result: ReportResult, sender: str, recipients: tuple[str, ...]) -> EmailMessage:
    """The e-mail: the summary as body, the workbook attached byte for byte."""
    msg = EmailMessage()
    scope = f" {result.entity}" if result.entity else ""
    msg["Subject"] = f"finsync monthly report {result.period}{scope}"
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    msg.set_content(result.summary_text() + "\n")
    msg.add_attachment(
        result.path.read_bytes(),
        maintype=XLSX_TYPE[0],
        subtype=XLSX_TYPE[1],
        filename=result.path.name,
    )
    return msg


def _retryable(exc: BaseException) -> bool:
    """Connection trouble and 4xx replies may pass later; 5xx and refused logins will not."""
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return False
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(400 <= code < 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    return isinstance(exc, smtplib.SMTPException | OSError)


def _send(smtp: SmtpSettings, msg: EmailMessage, recipients: tuple[str, ...]) -> None:
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if smtp.security == "tls":
        client = smtplib.SMTP_SSL(
            smtp.host, smtp.port, timeout=smtp.timeout_seconds, context=context
        )
    else:
        client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_seconds)
    with client:
        if smtp.security == "starttls":
            client.starttls(context=context)
        if smtp.username and smtp.password is not None:
            client.login(smtp.username, smtp.password.reveal())
        client.send_message(msg, from_addr=smtp.sender, to_addrs=list(recipients))


def _describe(exc: BaseException, smtp: SmtpSettings) -> str:
    text = f"{type(exc).__name__}: {exc}"
    if smtp.password is not None and smtp.password.reveal():
        text = text.replace(smtp.password.reveal(), "***")
    return f"could not mail the report via {smtp.host}:{smtp.port}: {text}"


def deliver_report(
    result: ReportResult,
    settings: ReportSettings,
    *,
    max_attempts: int = 5,
    backoff_seconds: float = 2.0,
    backoff_max_seconds: float = 60.0,
) -> DeliveryResult:
    """E-mail the workbook to ``settings.recipients``, retrying transient failures.

    Raises ConfigError when SMTP or the recipients are not configured; every delivery failure
    is returned in the result instead, and the workbook file is left in place.
    """
    smtp = settings.smtp
    if smtp is None:
        raise ConfigError("report.smtp", "not configured: add [report.smtp] to send reports")
    recipients = tuple(settings.recipients)
    if not recipients:
        raise ConfigError("report.recipients", "no recipients: list who receives the report")
    msg = build_message(result, smtp.sender, recipients)
    attempts = 0
    retrying = Retrying(
        stop=stop_after_attempt(max_attempts),
        wait=wait_exponential(multiplier=backoff_seconds, max=backoff_max_seconds),
        retry=retry_if_exception(_retryable),
        reraise=False,
    )
    try:
        for attempt in retrying:
            with attempt:
                attempts += 1
                _send(smtp, msg, recipients)
    except RetryError as exc:
        cause = exc.last_attempt.exception()
        assert cause is not None
        return DeliveryResult(False, result.path, recipients, attempts, _describe(cause, smtp))
    except (smtplib.SMTPException, OSError) as exc:
        return DeliveryResult(False, result.path, recipients, attempts, _describe(exc, smtp))
    return DeliveryResult(True, result.path, recipients, attempts)
