"""Tryton's JSON-RPC transport: the settings, the encoding of Decimals and dates (never a float),
the classification of Tryton's errors, and the session (login, renewal, retried reads)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, TypeVar

import httpx

from connectors.http import RetryPolicy, classify_status, classify_transport_error
from core.errors import (
    AuthError,
    ConfigError,
    ConnectorError,
    OutcomeUnknownError,
    PermanentError,
    RetryableError,
)
from finsync.config import Secret, Section

SYSTEM = "tryton"

T = TypeVar("T")

#: Tryton exceptions that are not the record's fault: the same call may succeed later.
_RETRYABLE = frozenset({"ConcurrencyException", "RateLimitException", "TimeoutException"})


@dataclass(frozen=True)
class TrytonSettings:
    """How to reach Tryton: server URL, database, login (the password is a ``Secret``)."""

    url: str
    database: str
    username: str
    password: Secret
    timeout_seconds: float = 120.0
    batch_size: int = 50
    retry_attempts: int = 4
    retry_deadline_seconds: float = 60.0
    backoff_seconds: float = 0.5
    #: What a revenue journal dated in a closed Tryton period does: ``next_open`` posts it in
    #: the company's next open period, ``fail`` fails it with the fix.
    closed_period_policy: str = "next_open"

    @property
    def rpc_url(self) -> str:
        """The database's JSON-RPC endpoint."""
        return f"{self.url}/{self.database}/rpc/"

    @property
    def retry(self) -> RetryPolicy:
        """Retries of reads within one call."""
        return RetryPolicy(
            attempts=self.retry_attempts,
            deadline_seconds=self.retry_deadline_seconds,
            backoff_seconds=self.backoff_seconds,
        )

    @classmethod
    def from_section(cls, section: Section) -> TrytonSettings:
        """Read ``[targets.<name>]`` options. Raises ConfigError naming the offending key."""
        url = section.str("url", required=True)
        if not url.startswith(("http://", "https://")):
            raise ConfigError(section.key("url"), f"must be an http(s) URL, got {url!r}")
        password = section.secret("password")
        assert password is not None  # required
        settings = cls(
            url=url.rstrip("/"),
            database=section.str("database", required=True),
            username=section.str("username", required=True),
            password=password,
            timeout_seconds=section.float("timeout_seconds", 120.0, minimum=1.0),
            batch_size=section.int("batch_size", 50, minimum=1, maximum=500),
            retry_attempts=section.int("retry_attempts", 4, minimum=1, maximum=20),
            retry_deadline_seconds=section.float("retry_deadline_seconds", 60.0, minimum=1.0),
            backoff_seconds=section.float("backoff_seconds", 0.5, minimum=0.0),
            closed_period_policy=section.str(
                "closed_period_policy", "next_open", choices=("next_open", "fail")
            ),
        )
        section.done()
        return settings


def _encode(value: Any) -> Any:
    if isinstance(value, Decimal):
        return {"__class__": "Decimal", "decimal": str(value)}
    if isinstance(value, date):
        return {"__class__": "date", "year": value.year, "month": value.month, "day": value.day}
    raise TypeError(f"cannot send {type(value).__name__} to Tryton")


def dumps(value: Any) -> str:
    """JSON for Tryton: Decimals and dates as Tryton's tagged objects (never floats)."""
    return json.dumps(value, default=_encode, separators=(",", ":"))


def _decode(obj: dict[str, Any]) -> Any:
    tag = obj.get("__class__")
    if tag == "Decimal":
        return Decimal(obj["decimal"])
    if tag == "date":
        return date(obj["year"], obj["month"], obj["day"])
    return obj


def loads(text: str | bytes) -> Any:
    """Parse Tryton's JSON, turning its tagged objects back into Decimal and date."""
    return json.loads(text, object_hook=_decode, parse_float=Decimal)


def classify_rpc_error(method: str, error: Any) -> ConnectorError:
    """The finsync error of a JSON-RPC ``error`` member (see the module doc)."""
    if isinstance(error, list) and len(error) == 2 and isinstance(error[0], str):
        name, args = error
        if isinstance(args, list):  # a Tryton exception: [message, description, domain...]
            message = " ".join(str(a).strip() for a in args[:2] if isinstance(a, str) and a)
            message = message or name
            if name in _RETRYABLE:
                return RetryableError(SYSTEM, method, message, code=name)
            if name == "LoginException":
                return AuthError(SYSTEM, method, message, code=name)
            return PermanentError(SYSTEM, method, message, code=name)
        # A server fault: the exception text and a traceback instead of a user error.
        return RetryableError(SYSTEM, method, f"server fault: {name[:300]}", code="ServerFault")
    return RetryableError(SYSTEM, method, f"unexpected error answer: {str(error)[:300]}")


class TrytonRpc:
    """A JSON-RPC session on one Tryton database (login, renewal, encoding, errors)."""

    def __init__(self, settings: TrytonSettings, client: httpx.Client | None = None) -> None:
        self.settings = settings
        self._own_client = client is None
        self._client = client or httpx.Client(
            timeout=httpx.Timeout(settings.timeout_seconds, connect=10.0)
        )
        self._session: str | None = None
        self._next_id = 0

    def _post(self, method: str, params: list[Any], *, writes: bool) -> Any:
        self._next_id += 1
        headers = {"Content-Type": "application/json"}
        if self._session is not None:
            headers["Authorization"] = f"Session {self._session}"
        body = dumps({"id": self._next_id, "method": method, "params": params})
        try:
            response = self._client.post(self.settings.rpc_url, content=body, headers=headers)
        except httpx.TransportError as exc:
            error = classify_transport_error(SYSTEM, method, exc)
            if not writes and isinstance(error, OutcomeUnknownError):
                raise RetryableError(SYSTEM, method, error.message, code=error.code) from None
            raise error from None
        if response.status_code == 401:
            raise AuthError(SYSTEM, method, "session refused", code="HTTP 401")
        status_error = classify_status(SYSTEM, method, response)
        if status_error is not None:
            raise status_error
        try:
            answer = loads(response.content)
        except ValueError:
            raise RetryableError(
                SYSTEM, method, f"answer is not JSON: {response.text[:200]!r}"
            ) from None
        if "error" in answer and answer["error"] is not None:
            raise classify_rpc_error(method, answer["error"])
        return answer.get("result")

    def login(self) -> None:
        """Open a session (``common.db.login``). Raises AuthError when refused."""
        self._session = None
        try:
            result = self.settings.retry.call(
                lambda: self._post(
                    "common.db.login",
                    [
                        self.settings.username,
                        {"password": self.settings.password.reveal()},
                        "en",
                    ],
                    writes=False,
                )
            )
        except AuthError:
            result = None  # Tryton answers a wrong password with 401
        if not isinstance(result, list) or len(result) < 2:
            raise AuthError(
                SYSTEM,
                "login",
                f"login refused for user {self.settings.username!r} on database "
                f"{self.settings.database!r}: check the target's username and password",
            )
        token = f"{self.settings.username}:{result[0]}:{result[1]}"
        self._session = base64.b64encode(token.encode()).decode()

    def call(
        self, method: str, *params: Any, company: int | None = None, writes: bool = False
    ) -> Any:
        """Call ``method`` with ``params`` and the company's context; renew an expired session.

        Reads are retried within the settings' budget; writes are sent once.
        """
        context: dict[str, Any] = {"language": "en"}
        if company is not None:
            context.update(company=company, companies=[company])
        arguments = [*params, context]

        def once() -> Any:
            if self._session is None:
                self.login()
            try:
                return self._post(method, arguments, writes=writes)
            except AuthError as exc:
                if exc.code != "HTTP 401":
                    raise
                self.login()  # the session expired: one renewal
                return self._post(method, arguments, writes=writes)

        if writes:
            return once()
        return self.settings.retry.call(once)

    def close(self) -> None:
        """Close the HTTP client if this session created it."""
        if self._own_client:
            self._client.close()
