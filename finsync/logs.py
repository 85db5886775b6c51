"""Logging for the long-running service: plain or JSON lines, with secrets masked.

``configure_logging`` installs one handler on the root logger. Its ``RedactingFilter`` runs
before any formatter, on every record (ours and third-party libraries'), and masks the value of
every ``Secret`` of the configuration and whatever follows a known credential header or key
name (``Authorization: ...``, ``password=...``). JSON lines carry the context fields a job adds
with ``extra=`` (run id, target, kind, job id) so a log shipper can filter on them.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, TextIO

from core.errors import ConfigError
from finsync.config import Config, Secret, read_secret

MASK = "***"

#: Context fields copied from a record's ``extra`` into its JSON line.
CONTEXT_FIELDS = ("run_id", "target", "kind", "job_id", "scheduled_run_time", "event", "role")

#: Header and key names whose value is a credential wherever it appears in a message.
SECRET_NAMES = (
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-finsync-secret",
    "x-api-key",
    "api_key",
    "apikey",
    "password",
    "passwd",
    "secret",
    "token",
    "client_secret",
    "license_key",
)
_NAMED_VALUE = re.compile(
    r"(?P<name>\b(?:" + "|".join(re.escape(n) for n in SECRET_NAMES) + r")\b[\"']?\s*[:=]\s*)"
    r"(?P<value>(?:(?:Basic|Bearer|OAuth)\s+)?[\"']?[^\s\"',;}]+)",
    re.IGNORECASE,
)


def _walk_secret_refs(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        if len(value) == 1 and ({"env", "file"} & set(value)):
            yield value
            return
        for item in value.values():
            yield from _walk_secret_refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk_secret_refs(item)


def config_secrets(config: Config) -> list[Secret]:
    """Every secret the configuration refers to, resolved, so logs can mask their values.

    Target sections hold unresolved references (their connectors resolve them), so those are
    read here too; a reference that cannot be read is skipped (its connector fails at start).
    """
    found: list[Secret] = []
    if config.report.smtp and config.report.smtp.password:
        found.append(config.report.smtp.password)
    if config.alerts.webhook_secret:
        found.append(config.alerts.webhook_secret)
    for target in config.targets.values():
        for ref in _walk_secret_refs(target.options._data):
            try:
                found.append(read_secret(ref, f"targets.{target.name}"))
            except ConfigError:
                continue
    return found


class RedactingFilter(logging.Filter):
    """Masks secret values and credential headers in a record's message and traceback."""

    def __init__(self, secrets: Iterable[Secret] = ()) -> None:
        super().__init__()
        # Longest first, so a secret that contains another is masked whole.
        values = {s.reveal() for s in secrets if len(s.reveal()) >= 4}
        self._values = sorted(values, key=len, reverse=True)

    def redact(self, text: str) -> str:
        """``text`` with every known secret value and credential header value masked."""
        for value in self._values:
            text = text.replace(value, MASK)
        return _NAMED_VALUE.sub(lambda m: m.group("name") + MASK, text)

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drops it."""
        record.msg = self.redact(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
            # The formatter must use the masked text, not format the exception again.
            record.exc_info = None
        for name in CONTEXT_FIELDS:
            value = record.__dict__.get(name)
            if isinstance(value, str):
                record.__dict__[name] = self.redact(value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, context fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line."""
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                entry[name] = value if isinstance(value, int | float | bool) else str(value)
        if record.exc_text:
            entry["exception"] = record.exc_text
        elif record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class _PlainFormatter(logging.Formatter):
    """``time level logger: message [target=... run_id=...]``."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = " ".join(
            f"{name}={record.__dict__[name]}"
            for name in CONTEXT_FIELDS
            if record.__dict__.get(name) is not None
        )
        if context:
            head, sep, tail = text.partition("\n")
            text = f"{head} [{context}]{sep}{tail}"
        return text


def configure_logging(
    *,
    json_logs: bool,
    secrets: Iterable[Secret] = (),
    level: int = logging.INFO,
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send every log record to ``stream`` (stderr) as plain text or JSON lines, redacted.

    Replaces handlers this function installed before; returns the new handler.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RedactingFilter(secrets))
    if json_logs:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(_PlainFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.set_name("finsync")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "finsync"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # APScheduler logs every job start at INFO; our own job lines say more.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return handler
