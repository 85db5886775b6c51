"""Configuration: one TOML file (finsync.toml), validated at start-up.

Every problem is a ``ConfigError`` naming the dotted key, so a bad file fails at start with one
line. Secrets are never written in the file: a secret setting names where to read it,
``{ env = "VAR" }`` or ``{ file = "/path" }``, and is held as a ``Secret`` whose repr is masked.
"""

from __future__ import annotations

import builtins
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.errors import ConfigError


class Secret:
    """A secret value that never shows itself in repr, str, logs or exceptions."""

    __slots__ = ("_source", "_value")

    def __init__(self, value: str, source: str = "literal") -> None:
        self._value = value
        self._source = source

    def reveal(self) -> str:
        """The secret itself; call only where it is sent to the system that needs it."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret(from {self._source}, ***)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def read_secret(ref: Any, key: str, environ: Mapping[str, str] | None = None) -> Secret:
    """Resolve a secret reference ``{env = NAME}`` or ``{file = PATH}``. Raises ConfigError."""
    environ = os.environ if environ is None else environ
    if not isinstance(ref, dict) or len(ref) != 1 or not ({"env", "file"} & set(ref)):
        raise ConfigError(
            key, 'secrets are references, write { env = "VAR" } or { file = "/path/to/secret" }'
        )
    if "env" in ref:
        name = str(ref["env"])
        if name not in environ or environ[name] == "":
            raise ConfigError(key, f"environment variable {name} is not set")
        return Secret(environ[name], f"${name}")
    path = Path(str(ref["file"])).expanduser()
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(key, f"cannot read secret file {path}: {exc.strerror}") from None
    if not value:
        raise ConfigError(key, f"secret file {path} is empty")
    return Secret(value, str(path))


# Section has methods named str/int/float/bool, which shadow the builtins in annotations inside the
# class body, so its annotations spell them builtins.str etc.
class Section:
    """Typed, key-naming access to one table of the config; refuses unknown keys on ``done()``."""

    def __init__(
        self,
        data: Any,
        prefix: builtins.str,
        environ: Mapping[builtins.str, builtins.str] | None = None,
    ) -> None:
        if not isinstance(data, dict):
            raise ConfigError(prefix, "must be a table")
        self._data = data
        self._prefix = prefix
        self._seen: set[builtins.str] = set()
        self._environ = environ

    def key(self, name: builtins.str) -> builtins.str:
        """The dotted path of ``name`` in this section."""
        return f"{self._prefix}.{name}" if self._prefix else name

    def has(self, name: builtins.str) -> builtins.bool:
        """True when the setting is present."""
        return name in self._data

    def _raw(self, name: builtins.str, default: Any, required: builtins.bool) -> Any:
        self._seen.add(name)
        if name not in self._data:
            if required:
                raise ConfigError(self.key(name), "missing required setting")
            return default
        return self._data[name]

    def str(
        self,
        name: builtins.str,
        default: builtins.str | None = None,
        *,
        required: builtins.bool = False,
        choices: tuple[builtins.str, ...] | None = None,
    ) -> Any:
        """A string setting (None when absent and no default)."""
        value = self._raw(name, default, required)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise ConfigError(self.key(name), f"must be a non-empty string, got {value!r}")
        if choices and value not in choices:
            raise ConfigError(self.key(name), f"must be one of {', '.join(choices)}; got {value!r}")
        return value

    def int(
        self,
        name: builtins.str,
        default: builtins.int,
        *,
        minimum: builtins.int = 0,
        maximum: builtins.int | None = None,
    ) -> builtins.int:
        """An integer setting within bounds."""
        value = self._raw(name, default, False)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(self.key(name), f"must be an integer, got {value!r}")
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            raise ConfigError(self.key(name), f"must be {bound}, got {value}")
        return value

    def float(
        self, name: builtins.str, default: builtins.float, *, minimum: builtins.float = 0.0
    ) -> builtins.float:
        """A number setting (durations in seconds), not money."""
        value = self._raw(name, default, False)
        if not isinstance(value, int | float) or isinstance(value, bool) or value < minimum:
            raise ConfigError(self.key(name), f"must be a number >= {minimum}, got {value!r}")
        return float(value)

    def bool(self, name: builtins.str, default: builtins.bool) -> builtins.bool:
        """A true/false setting."""
        value = self._raw(name, default, False)
        if not isinstance(value, bool):
            raise ConfigError(self.key(name), f"must be true or false, got {value!r}")
        return value

    def list_of_str(
        self, name: builtins.str, default: list[builtins.str] | None = None
    ) -> list[builtins.str]:
        """A list of strings."""
        value = self._raw(name, default or [], False)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(self.key(name), "must be a list of strings")
        return list(value)

    def secret(self, name: builtins.str, *, required: builtins.bool = True) -> Secret | None:
        """A secret reference, resolved now so a missing variable fails at start."""
        value = self._raw(name, None, required)
        if value is None:
            return None
        return read_secret(value, self.key(name), self._environ)

    def section(self, name: builtins.str, *, required: builtins.bool = False) -> Section:
        """A sub-table (empty when absent)."""
        value = self._raw(name, {}, required)
        return Section(value, self.key(name), self._environ)

    def names(self) -> list[builtins.str]:
        """Keys present in this table."""
        return list(self._data)

    def done(self) -> None:
        """Refuse keys nobody asked for: a typo must not be silently ignored."""
        for name in self._data:
            if name not in self._seen:
                raise ConfigError(self.key(name), "unknown setting (check the spelling)")


@dataclass(frozen=True)
class SyncSettings:
    """How extraction and pushing behave."""

    page_size: int = 1000
    lookback_seconds: int = 300
    max_attempts: int = 8
    backoff_base_seconds: float = 30.0
    backoff_max_seconds: float = 3600.0
    lease_seconds: int = 600
    kinds: tuple[str, ...] = (
        "customer",
        "invoice",
        "credit_note",
        "payment",
        "refund",
        "revenue",
    )


@dataclass(frozen=True)
class SmtpSettings:
    """Where report mail and alerts go."""

    host: str
    port: int
    security: str  # "starttls", "tls" or "none"
    sender: str
    username: str | None = None
    password: Secret | None = None
    timeout_seconds: float = 30.0


@dataclass(frozen=True)
class ReportSettings:
    """Where monthly workbooks are written and who receives them."""

    out_dir: Path = Path("reports-out")
    recipients: tuple[str, ...] = ()
    smtp: SmtpSettings | None = None


@dataclass(frozen=True)
class ServiceSettings:
    """How ``finsync serve`` and ``finsync worker`` run: schedules, leader election, health."""

    sync_interval_minutes: float = 15.0
    retry_sweep_minutes: float = 5.0
    report_enabled: bool = True
    report_day: int = 1  # day of the month the workbook of the month just ended is built
    report_hour: int = 6  # in Config.timezone
    report_minute: int = 0
    misfire_grace_seconds: int = 3 * 24 * 3600  # a job missed by less than this still runs once
    leader_lock_key: int = 0x46534E43  # PostgreSQL advisory lock key of the scheduler leader
    leader_poll_seconds: float = 5.0
    worker_idle_seconds: float = 5.0
    stop_timeout_seconds: float = 30.0
    health_host: str = "127.0.0.1"
    health_port: int = 8080
    json_logs: bool = False


@dataclass(frozen=True)
class AlertSettings:
    """Who hears about dead records, failed runs and undelivered workbooks."""

    recipients: tuple[str, ...] = ()  # e-mailed through [report.smtp]
    webhook_url: str | None = None
    webhook_secret: Secret | None = None
    webhook_secret_header: str = "X-Finsync-Secret"  # noqa: S105 - a header name
    timeout_seconds: float = 10.0


API_ROLES = ("viewer", "accountant", "admin")


@dataclass(frozen=True)
class JwtSettings:
    """The company's identity provider: JWTs it signs are accepted as console tokens."""

    issuer: str
    audience: str
    jwks_url: str
    role_claim: str = "finsync_role"
    name_claim: str = "sub"
    algorithms: tuple[str, ...] = ("RS256",)
    leeway_seconds: int = 30


@dataclass(frozen=True)
class ApiSettings:
    """The console (HTTP API and web pages): session cookie and accepted identity provider.

    ``cookie_secure`` may be turned off only to serve plain http on 127.0.0.1 (tests, a laptop).
    Without ``session_secret`` each process signs sessions with a random key of its own, so
    sessions end at restart and cannot be shared between processes.
    """

    cookie_secure: bool = True
    session_secret: Secret | None = None
    session_hours: int = 8
    jwt: JwtSettings | None = None


@dataclass(frozen=True)
class TargetConfig:
    """One target system's section. Its connector validates ``options`` at start."""

    name: str
    system: str
    enabled: bool
    options: Section


@dataclass(frozen=True)
class Config:
    """The validated configuration of one finsync installation."""

    billing_url: str
    state_url: str
    mapping_file: Path
    timezone: ZoneInfo
    sync: SyncSettings
    report: ReportSettings
    targets: Mapping[str, TargetConfig] = field(default_factory=dict)
    path: Path | None = None
    api: ApiSettings = field(default_factory=ApiSettings)
    service: ServiceSettings = field(default_factory=ServiceSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)


_SYSTEMS = ("netsuite", "avatax", "scripted", "tryton")


def _smtp(section: Section) -> SmtpSettings | None:
    if not section.names():
        return None
    smtp = SmtpSettings(
        host=section.str("host", required=True),
        port=section.int("port", 587, minimum=1, maximum=65535),
        security=section.str("security", "starttls", choices=("starttls", "tls", "none")),
        sender=section.str("sender", required=True),
        username=section.str("username"),
        password=section.secret("password", required=False),
        timeout_seconds=section.float("timeout_seconds", 30.0, minimum=1.0),
    )
    section.done()
    return smtp


def _service(section: Section) -> ServiceSettings:
    d = ServiceSettings()
    report_time = section.str("report_time", f"{d.report_hour:02d}:{d.report_minute:02d}")
    hour, _, minute = report_time.partition(":")
    if not (hour.isdigit() and minute.isdigit() and int(hour) < 24 and int(minute) < 60):
        raise ConfigError(section.key("report_time"), f"must be HH:MM, got {report_time!r}")
    service = ServiceSettings(
        # Fractional minutes are allowed so a busy site (or a test) can sync every few seconds.
        sync_interval_minutes=section.float(
            "sync_interval_minutes", d.sync_interval_minutes, minimum=0.01
        ),
        retry_sweep_minutes=section.float(
            "retry_sweep_minutes", d.retry_sweep_minutes, minimum=0.01
        ),
        report_enabled=section.bool("report_enabled", d.report_enabled),
        # Day 28 at most: every month has it, so no month is skipped.
        report_day=section.int("report_day", d.report_day, minimum=1, maximum=28),
        report_hour=int(hour),
        report_minute=int(minute),
        misfire_grace_seconds=section.int(
            "misfire_grace_seconds", d.misfire_grace_seconds, minimum=1
        ),
        leader_lock_key=section.int(
            "leader_lock_key", d.leader_lock_key, minimum=-(2**63), maximum=2**63 - 1
        ),
        leader_poll_seconds=section.float(
            "leader_poll_seconds", d.leader_poll_seconds, minimum=0.1
        ),
        worker_idle_seconds=section.float(
            "worker_idle_seconds", d.worker_idle_seconds, minimum=0.1
        ),
        stop_timeout_seconds=section.float("stop_timeout_seconds", d.stop_timeout_seconds),
        health_host=section.str("health_host", d.health_host),
        health_port=section.int("health_port", d.health_port, maximum=65535),
        json_logs=section.bool("json_logs", d.json_logs),
    )
    section.done()
    return service


def _alerts(section: Section, report: ReportSettings) -> AlertSettings:
    d = AlertSettings()
    recipients = tuple(section.list_of_str("recipients"))
    if recipients and report.smtp is None:
        raise ConfigError(section.key("recipients"), "e-mail alerts need [report.smtp]")
    for address in recipients:
        if "@" not in address:
            raise ConfigError(section.key("recipients"), f"not an e-mail address: {address!r}")
    url = section.str("webhook_url")
    if url is not None and not url.startswith(("http://", "https://")):
        raise ConfigError(section.key("webhook_url"), f"must be an http(s) URL, got {url!r}")
    secret = section.secret("webhook_secret", required=False)
    if secret is not None and url is None:
        raise ConfigError(section.key("webhook_secret"), "set alerts.webhook_url too")
    alerts = AlertSettings(
        recipients=recipients,
        webhook_url=url,
        webhook_secret=secret,
        webhook_secret_header=section.str("webhook_secret_header", d.webhook_secret_header),
        timeout_seconds=section.float("timeout_seconds", d.timeout_seconds, minimum=0.5),
    )
    section.done()
    return alerts


_JWT_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384")


def _jwt(section: Section) -> JwtSettings | None:
    if not section.names():
        return None
    jwks_url = section.str("jwks_url", required=True)
    if not jwks_url.startswith(("https://", "http://")):
        raise ConfigError(section.key("jwks_url"), f"must be an http(s) URL, got {jwks_url!r}")
    algorithms = tuple(section.list_of_str("algorithms", ["RS256"]))
    for algorithm in algorithms:
        if algorithm not in _JWT_ALGORITHMS:
            # Symmetric (HS*) and "none" would let anyone who knows the JWKS forge tokens.
            raise ConfigError(
                section.key("algorithms"),
                f"unsupported algorithm {algorithm!r}; one of {', '.join(_JWT_ALGORITHMS)}",
            )
    if not algorithms:
        raise ConfigError(section.key("algorithms"), "must name at least one algorithm")
    jwt = JwtSettings(
        issuer=section.str("issuer", required=True),
        audience=section.str("audience", required=True),
        jwks_url=jwks_url,
        role_claim=section.str("role_claim", "finsync_role"),
        name_claim=section.str("name_claim", "sub"),
        algorithms=algorithms,
        leeway_seconds=section.int("leeway_seconds", 30, maximum=600),
    )
    section.done()
    return jwt


def _api(section: Section) -> ApiSettings:
    secret = section.secret("session_secret", required=False)
    if secret is not None and len(secret.reveal()) < 32:
        raise ConfigError(section.key("session_secret"), "must be at least 32 characters long")
    api = ApiSettings(
        cookie_secure=section.bool("cookie_secure", True),
        session_secret=secret,
        session_hours=section.int("session_hours", 8, minimum=1, maximum=24 * 30),
        jwt=_jwt(section.section("jwt")),
    )
    section.done()
    return api


def _beside(url: str, base: Path) -> str:
    """A relative SQLite path is taken from the config file's folder, like the mapping file."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return url
    path, sep, query = url.removeprefix(prefix).partition("?")
    if not path or path == ":memory:" or path.startswith("file:") or Path(path).is_absolute():
        return url
    return f"{prefix}{base / path}{sep}{query}"


def parse_config(
    data: Mapping[str, Any],
    *,
    base_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
    path: Path | None = None,
) -> Config:
    """Validate parsed TOML into a ``Config``. Raises ConfigError naming the first bad key."""
    base = base_dir or Path.cwd()
    root = Section(dict(data), "", environ)

    billing = root.section("billing", required=True)
    billing_url = _beside(billing.str("url", required=True), base)
    billing.done()

    state = root.section("state", required=True)
    state_url = _beside(state.str("url", required=True), base)
    state.done()

    mapping = root.section("mapping", required=True)
    mapping_file = Path(mapping.str("file", required=True))
    if not mapping_file.is_absolute():
        mapping_file = base / mapping_file
    mapping.done()

    company = root.section("company")
    tz_name = company.str("timezone", "UTC")
    try:
        timezone = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(company.key("timezone"), f"unknown time zone {tz_name!r}") from None
    company.done()

    sync_section = root.section("sync")
    defaults = SyncSettings()
    kinds = tuple(sync_section.list_of_str("kinds", list(defaults.kinds)))
    for kind in kinds:
        if kind not in ("customer", "invoice", "credit_note", "payment", "refund", "revenue"):
            raise ConfigError(sync_section.key("kinds"), f"unknown kind {kind!r}")
    sync = SyncSettings(
        page_size=sync_section.int("page_size", defaults.page_size, minimum=1),
        lookback_seconds=sync_section.int("lookback_seconds", defaults.lookback_seconds),
        max_attempts=sync_section.int("max_attempts", defaults.max_attempts, minimum=1),
        backoff_base_seconds=sync_section.float(
            "backoff_base_seconds", defaults.backoff_base_seconds
        ),
        backoff_max_seconds=sync_section.float("backoff_max_seconds", defaults.backoff_max_seconds),
        lease_seconds=sync_section.int("lease_seconds", defaults.lease_seconds, minimum=1),
        kinds=kinds,
    )
    sync_section.done()

    report_section = root.section("report")
    out_dir = Path(report_section.str("out_dir", "reports-out"))
    report = ReportSettings(
        out_dir=out_dir if out_dir.is_absolute() else base / out_dir,
        recipients=tuple(report_section.list_of_str("recipients")),
        smtp=_smtp(report_section.section("smtp")),
    )
    report_section.done()

    targets: dict[str, TargetConfig] = {}
    targets_section = root.section("targets")
    for name in targets_section.names():
        section = targets_section.section(name)
        system = section.str("system", name if name in _SYSTEMS else None, choices=_SYSTEMS)
        if system is None:
            raise ConfigError(section.key("system"), f"missing; one of {', '.join(_SYSTEMS)}")
        targets[name] = TargetConfig(
            name=name, system=system, enabled=section.bool("enabled", True), options=section
        )
    targets_section.done()
    service = _service(root.section("service"))
    alerts = _alerts(root.section("alerts"), report)
    api = _api(root.section("api"))
    root.done()
    return Config(
        billing_url=billing_url,
        state_url=state_url,
        mapping_file=mapping_file,
        timezone=timezone,
        sync=sync,
        report=report,
        targets=targets,
        path=path,
        service=service,
        alerts=alerts,
        api=api,
    )


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate the config file at ``path``. Raises ConfigError naming the key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("(file)", f"config file not found: {path}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("(file)", f"{path} is not valid TOML: {exc}") from None
    return parse_config(data, base_dir=path.resolve().parent, environ=environ, path=path)
