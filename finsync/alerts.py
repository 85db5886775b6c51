"""Alerts: tell people once per incident, not once per record.

An incident is a (kind, incident) pair in the ``alerts`` table, e.g. ``("dead_records", "erp")``
or ``("delivery_failed", "2026-10")``. ``Alerts.open`` records the incident if none is open and
notifies (e-mail through ``[report.smtp]`` and/or a JSON webhook) until one notification went
out; later calls for the same open incident only refresh its detail. ``Alerts.resolve`` closes
it when the condition clears, so the next occurrence is a new incident and is announced again.

When an incident that was announced ends, a "resolved" message goes out on the same channels.

Kinds:
  failed_records   a target has records that failed permanently (incident: the target); the
                   message groups them by error
  dead_records     a target has records that ran out of retries (incident: the target)
  run_failed       a scheduled job failed (incident: the job, e.g. ``sync:erp``)
  delivery_failed  the monthly workbook could not be e-mailed (incident: the period)
"""

from __future__ import annotations

import json
import logging
import smtplib
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from finsync.config import AlertSettings, SmtpSettings
from finsync.db import utcnow
from sync.state import alerts as alerts_table
from sync.status import FailureGroup

log = logging.getLogger(__name__)

KINDS = ("failed_records", "dead_records", "run_failed", "delivery_failed")
#: Record statuses that open an incident of their kind.
_RECORD_ALERTS = {"failed": "failed_records", "dead": "dead_records"}
#: How many error groups one alert message lists before it counts the rest.
_GROUPS_IN_MESSAGE = 10
#: Advisory lock that serialises opening incidents across processes on PostgreSQL.
_ALERTS_LOCK_KEY = 0x46534E41


@dataclass(frozen=True)
class Incident:
    """One open incident as stored."""

    id: int
    kind: str
    incident: str
    opened_at: datetime
    detail: str | None
    notified_at: datetime | None


class Alerts:
    """Opens, notifies and resolves incidents in the ``alerts`` table of the state store."""

    def __init__(
        self,
        settings: AlertSettings,
        smtp: SmtpSettings | None,
        state: Engine,
        *,
        clock: Callable[[], datetime] = utcnow,
        http: httpx.Client | None = None,
    ) -> None:
        self.settings = settings
        self.smtp = smtp
        self.state = state
        self.clock = clock
        self._http = http
        self._lock = threading.Lock()

    @property
    def has_channel(self) -> bool:
        """True when alerts go somewhere (e-mail or webhook)."""
        return bool(self.settings.recipients and self.smtp) or bool(self.settings.webhook_url)

    # -- incidents ---------------------------------------------------------------------------

    def _serialise(self, conn: Connection) -> None:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ALERTS_LOCK_KEY})

    def _open_row(self, conn: Connection, kind: str, incident: str) -> Incident | None:
        row = (
            conn.execute(
                sa.select(alerts_table)
                .where(
                    alerts_table.c.kind == kind,
                    alerts_table.c.incident == incident,
                    alerts_table.c.resolved_at.is_(None),
                )
                .order_by(alerts_table.c.id)
                .limit(1)
            )
            .mappings()
            .first()
        )
        if row is None:
            return None
        return Incident(
            row["id"], kind, incident, row["opened_at"], row["detail"], row["notified_at"]
        )

    def open(self, kind: str, incident: str, detail: str) -> bool:
        """Record the incident (if not open already) and notify unless someone was told.

        Returns True when a notification went out now. Notification failures are logged and
        retried on the next call for the same incident.
        """
        if kind not in KINDS:
            raise ValueError(f"unknown alert kind {kind!r}")
        with self._lock:
            with self.state.begin() as conn:
                self._serialise(conn)
                current = self._open_row(conn, kind, incident)
                if current is None:
                    new_id = conn.execute(
                        alerts_table.insert().values(
                            kind=kind, incident=incident, opened_at=self.clock(), detail=detail
                        )
                    ).inserted_primary_key[0]  # type: ignore[index]
                    current = Incident(int(new_id), kind, incident, self.clock(), detail, None)
                    log.warning(
                        "alert opened: %s %s: %s",
                        kind,
                        incident,
                        detail,
                        extra={"kind": kind, "event": "alert_opened"},
                    )
                elif current.detail != detail:
                    conn.execute(
                        alerts_table.update()
                        .where(alerts_table.c.id == current.id)
                        .values(detail=detail)
                    )
            if current.notified_at is not None or not self.has_channel:
                return False
            if not self._notify(current, detail):
                return False
            with self.state.begin() as conn:
                conn.execute(
                    alerts_table.update()
                    .where(alerts_table.c.id == current.id, alerts_table.c.notified_at.is_(None))
                    .values(notified_at=self.clock())
                )
            return True

    def resolve(self, kind: str, incident: str) -> bool:
        """Close the open incident, if any, and tell whoever was told it opened that it
        ended; returns True when one was open."""
        with self._lock:
            with self.state.begin() as conn:
                self._serialise(conn)
                current = self._open_row(conn, kind, incident)
                if current is None:
                    return False
                conn.execute(
                    alerts_table.update()
                    .where(alerts_table.c.id == current.id)
                    .values(resolved_at=self.clock())
                )
            log.info(
                "alert resolved: %s %s",
                kind,
                incident,
                extra={"kind": kind, "event": "alert_resolved"},
            )
            if current.notified_at is not None and self.has_channel:
                self._notify(current, "", resolved=True)
        return True

    def open_incidents(self) -> list[Incident]:
        """Every incident not resolved yet, oldest first."""
        with self.state.connect() as conn:
            rows = conn.execute(
                sa.select(alerts_table)
                .where(alerts_table.c.resolved_at.is_(None))
                .order_by(alerts_table.c.id)
            ).mappings()
            return [
                Incident(
                    r["id"], r["kind"], r["incident"], r["opened_at"], r["detail"], r["notified_at"]
                )
                for r in rows
            ]

    def check_record_alerts(self, targets: list[str]) -> None:
        """Per target: open a ``failed_records`` incident while records failed permanently and
        a ``dead_records`` one while records ran out of retries (each message groups the
        records by error); resolve the incidents whose records are all dealt with."""
        from sync.status import attention

        found = attention(self.state, targets)
        for target in targets:
            for status, kind in _RECORD_ALERTS.items():
                groups = [
                    g
                    for g in found.groups
                    if g.status == status and any(t == target for _, t, _ in g.records)
                ]
                if groups:
                    self.open(kind, target, _records_message(target, status, groups))
                else:
                    self.resolve(kind, target)

    # -- notification ------------------------------------------------------------------------

    def _notify(self, incident: Incident, detail: str, *, resolved: bool = False) -> bool:
        """Send on every channel; True when at least one reached someone."""
        sent = []
        if self.settings.recipients and self.smtp:
            sent.append(self._email(incident, detail, resolved))
        if self.settings.webhook_url:
            sent.append(self._webhook(incident, detail, resolved))
        return any(sent)

    def _email(self, incident: Incident, detail: str, resolved: bool) -> bool:
        smtp = self.smtp
        assert smtp is not None
        msg = EmailMessage()
        what = f"{incident.kind.replace('_', ' ')}: {incident.incident}"
        msg["Subject"] = f"[finsync] resolved: {what}" if resolved else f"[finsync] {what}"
        msg["From"] = smtp.sender
        msg["To"] = ", ".join(self.settings.recipients)
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(domain=smtp.sender.rpartition("@")[2] or None)
        if resolved:
            msg.set_content(
                f"Resolved: incident {incident.kind} / {incident.incident}, opened "
                f"{incident.opened_at:%Y-%m-%d %H:%M} UTC, has ended on "
                f"{socket.gethostname()}.\nIt said: {incident.detail or ''}\n"
            )
        else:
            msg.set_content(
                f"{detail}\n\nIncident {incident.kind} / {incident.incident}, opened "
                f"{incident.opened_at:%Y-%m-%d %H:%M} UTC on {socket.gethostname()}.\n"
                "You are told once per incident; the next one after it clears is announced "
                "again.\n"
            )
        try:
            client: smtplib.SMTP
            if smtp.security == "tls":
                client = smtplib.SMTP_SSL(
                    smtp.host,
                    smtp.port,
                    timeout=smtp.timeout_seconds,
                    context=ssl.create_default_context(),
                )
            else:
                client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_seconds)
            with client:
                if smtp.security == "starttls":
                    client.starttls(context=ssl.create_default_context())
                if smtp.username and smtp.password is not None:
                    client.login(smtp.username, smtp.password.reveal())
                client.send_message(msg, to_addrs=list(self.settings.recipients))
        except (smtplib.SMTPException, OSError) as exc:
            log.error(
                "alert e-mail via %s:%s failed: %s: %s",
                smtp.host,
                smtp.port,
                type(exc).__name__,
                exc,
                extra={"kind": incident.kind, "event": "alert_email_failed"},
            )
            return False
        return True

    def _webhook(self, incident: Incident, detail: str, resolved: bool) -> bool:
        url = self.settings.webhook_url
        assert url is not None
        body = {
            "event": "alert.resolved" if resolved else "alert.opened",
            "kind": incident.kind,
            "incident": incident.incident,
            "detail": incident.detail if resolved else detail,
            "opened_at": incident.opened_at.isoformat(),
            "host": socket.gethostname(),
        }
        headers = {"Content-Type": "application/json"}
        if self.settings.webhook_secret is not None:
            headers[self.settings.webhook_secret_header] = self.settings.webhook_secret.reveal()
        client = self._http or httpx.Client(timeout=self.settings.timeout_seconds)
        try:
            response = client.post(url, content=json.dumps(body), headers=headers)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            # httpx messages carry the URL, never our headers.
            log.error(
                "alert webhook failed: %s: %s",
                type(exc).__name__,
                exc,
                extra={"kind": incident.kind, "event": "alert_webhook_failed"},
            )
            return False
        finally:
            if self._http is None:
                client.close()
        return True


def _records_message(target: str, status: str, groups: list[FailureGroup]) -> str:
    """One alert's text: how many records of ``target`` are ``status``, grouped by error."""
    records = [(i, label) for g in groups for i, t, label in g.records if t == target]
    what = "failed permanently" if status == "failed" else "ran out of retries"
    lines = [f"{len(records)} record(s) for {target} {what}:"]
    for group in groups[:_GROUPS_IN_MESSAGE]:
        labels = [label for _, t, label in group.records if t == target]
        named = ", ".join(labels[:5]) + (f" and {len(labels) - 5} more" if len(labels) > 5 else "")
        lines.append(f"- {len(labels)} x {group.error} ({named})")
    if len(groups) > _GROUPS_IN_MESSAGE:
        lines.append(f"- and {len(groups) - _GROUPS_IN_MESSAGE} more error(s)")
    lines.append(
        "See `finsync status` or the console's failures page, fix the cause, then re-sync them."
    )
    return "\n".join(lines)
