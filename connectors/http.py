"""Shared HTTP helpers for connectors: classify httpx failures and retry them with tenacity.

Classification happens here once, for every HTTP connector:

- transport errors before the request left (connect errors and timeouts, pool timeouts)
  -> ``RetryableError``; after it left (read/write timeouts, a dropped connection)
  -> ``OutcomeUnknownError``, because the system may have applied it;
- HTTP 401/403 -> ``AuthError``; 429 -> ``RateLimitedError`` (Retry-After honoured);
  5xx -> ``RetryableError``; other 4xx -> ``PermanentError``.

Protocol-specific codes (SOAP faults, NetSuite error codes in a 400) are classified by the
connector itself before falling back on ``classify_status``.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TypeVar

import httpx
import tenacity

from core.errors import (
    AuthError,
    ConnectorError,
    OutcomeUnknownError,
    PermanentError,
    RateLimitedError,
    RetryableError,
)

T = TypeVar("T")

#: Longest piece of a response body quoted in an error message.
MAX_BODY_IN_MESSAGE = 500


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if now is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def classify_transport_error(
    system: str, operation: str, exc: httpx.TransportError
) -> ConnectorError:
    """A retryable error for an httpx transport failure; OutcomeUnknownError once it was sent."""
    sent = isinstance(
        exc,
        httpx.ReadTimeout
        | httpx.WriteTimeout
        | httpx.RemoteProtocolError
        | httpx.ReadError
        | httpx.WriteError,
    )
    kind = type(exc).__name__
    if sent:
        return OutcomeUnknownError(
            system, operation, f"no answer after sending ({kind})", code=kind
        )
    return RetryableError(system, operation, f"request not delivered ({kind})", code=kind)


def classify_status(
    system: str,
    operation: str,
    response: httpx.Response,
    message: str | None = None,
    code: str | None = None,
) -> ConnectorError | None:
    """The error for an unsuccessful HTTP status (None for 2xx/3xx).

    ``message`` and ``code`` replace the body excerpt when the caller parsed the vendor's error.
    """
    status = response.status_code
    if status < 400:
        return None
    text = message or (response.text[:MAX_BODY_IN_MESSAGE].strip() or response.reason_phrase)
    code = code or f"HTTP {status}"
    if status in (401, 403):
        return AuthError(system, operation, text, code=code)
    if status == 429:
        return RateLimitedError(
            system,
            operation,
            text,
            code=code,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
    if status >= 500:
        return RetryableError(system, operation, text, code=code)
    return PermanentError(system, operation, text, code=code)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries inside one call: attempts, overall deadline, backoff with full jitter."""

    attempts: int = 5
    deadline_seconds: float = 120.0
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 30.0

    def wait(self, attempt: int, error: BaseException | None) -> float:
        """Seconds before the next attempt: Retry-After when the system said so, else jitter."""
        cap = min(self.max_backoff_seconds, self.backoff_seconds * 2 ** (attempt - 1))
        delay = random.uniform(0, cap)
        if isinstance(error, RateLimitedError) and error.retry_after is not None:
            delay = max(delay, min(error.retry_after, self.deadline_seconds))
        return delay

    def call(
        self,
        func: Callable[[], T],
        *,
        sleep: Callable[[float], None] | None = None,
        retries: RetryCount | None = None,
        resend_unknown: bool = True,
    ) -> T:
        """Run ``func``, retrying ``RetryableError``; re-raise the last error when out of budget.

        Each retry is counted in ``retries``. With ``resend_unknown=False`` (writes) an
        ``OutcomeUnknownError`` is not retried here: it goes back to the push engine, which
        looks the document up before it sends it again.
        """
        condition: tenacity.retry_base = tenacity.retry_if_exception_type(RetryableError)
        if not resend_unknown:
            condition &= tenacity.retry_if_not_exception_type(OutcomeUnknownError)
        retrying = tenacity.Retrying(
            retry=condition,
            stop=(
                tenacity.stop_after_attempt(self.attempts)
                | tenacity.stop_after_delay(self.deadline_seconds)
            ),
            wait=lambda state: self.wait(
                state.attempt_number,
                state.outcome.exception() if state.outcome is not None else None,
            ),
            before_sleep=(lambda _state: retries.add()) if retries is not None else None,
            sleep=sleep or tenacity.nap.sleep,
            reraise=True,
        )
        return retrying(func)


class RetryCount:
    """How many requests a connector retried inside its calls (thread-safe)."""

    def __init__(self) -> None:
        self._value = 0
        self._lock = threading.Lock()

    def add(self) -> None:
        """Count one retry."""
        with self._lock:
            self._value += 1

    @property
    def value(self) -> int:
        """Retries so far."""
        return self._value
