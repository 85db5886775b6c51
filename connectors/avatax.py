"""Avalara AvaTax REST v2 connector (httpx).

One request per document:

- ``upsert``: ``POST /api/v2/transactions/createoradjust``. AvaTax identifies a transaction by
  company code, document code and type, so sending the same document again adjusts it in place
  and never makes a second one; a retry after an unknown outcome is therefore safe.
- ``void``: ``POST /api/v2/companies/{company}/transactions/{code}/void`` with ``DocVoided``.
  A document already voided (``TransactionAlreadyCancelled``) or never recorded
  (``EntityNotFoundError``) counts as success: the engine holds no live tax for it either way.
- ``lookup``: ``GET /api/v2/companies/{company}/transactions/{code}``.

Failures are classified in one place (``_classify``): 429 (with Retry-After), 5xx, timeouts and
connection errors are retryable (a timeout once the request was sent is ``OutcomeUnknownError``);
401 is ``AuthError``; other 4xx are ``PermanentError`` carrying AvaTax's error code and message.
tenacity retries inside one call within a bounded number of attempts and a deadline. Requests are
throttled client-side (AvaTax publishes no numeric limit). Secrets never reach messages or logs.
"""

from __future__ import annotations

import json
import logging
import platform
import random
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from importlib import metadata
from typing import Any
from urllib.parse import quote

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_base,
    retry_if_exception_type,
    retry_if_not_exception_type,
    stop_after_attempt,
    stop_after_delay,
)

from connectors.base import Connector
from connectors.http import RetryCount
from core.documents import Document, WriteResult
from core.errors import (
    AuthError,
    ConfigError,
    OutcomeUnknownError,
    PermanentError,
    RateLimitedError,
    RetryableError,
)
from finsync.config import Secret, Section, TargetConfig

log = logging.getLogger(__name__)

SYSTEM = "avatax"
SANDBOX_URL = "https://sandbox-rest.avatax.com"
#: Payload keys the API declares as numbers; the mapping carries them as exact decimal strings.
_NUMERIC_KEYS = frozenset({"amount", "quantity", "taxAmount", "discount", "exchangeRate"})
#: Voiding these answers means the engine already holds no live tax for the document.
_VOID_DONE = {"TransactionAlreadyCancelled": "Cancelled", "EntityNotFoundError": "NotRecorded"}


def _default_client_name() -> str:
    try:
        version = metadata.version("finsync")
    except metadata.PackageNotFoundError:
        version = "0.1.0"
    python = ".".join(platform.python_version_tuple()[:2])
    return f"finsync; {version}; Python; {python}; {socket.gethostname()}"


@dataclass(frozen=True)
class AvaTaxSettings:
    """How to reach AvaTax. Durations are in seconds; the license key is a ``Secret``."""

    account_id: Secret
    license_key: Secret
    base_url: str = SANDBOX_URL
    client_name: str = field(default_factory=_default_client_name)
    timeout_seconds: float = 30.0
    max_requests_per_second: float = 10.0
    retry_attempts: int = 4
    retry_deadline_seconds: float = 60.0
    backoff_base_seconds: float = 0.5
    backoff_max_seconds: float = 10.0

    @classmethod
    def from_section(cls, section: Section) -> AvaTaxSettings:
        """Read ``[targets.<name>]`` options. Raises ConfigError naming the offending key."""
        defaults = cls(account_id=Secret(""), license_key=Secret(""))
        base_url = section.str("base_url", SANDBOX_URL)
        if not base_url.startswith(("https://", "http://")):
            raise ConfigError(section.key("base_url"), f"must be an http(s) URL, got {base_url!r}")
        account_id = section.secret("account_id")
        license_key = section.secret("license_key")
        assert account_id is not None and license_key is not None  # required=True
        timeout = section.float("timeout_seconds", defaults.timeout_seconds, minimum=0.1)
        if timeout > 300:
            raise ConfigError(
                section.key("timeout_seconds"),
                f"is in seconds and must be at most 300, got {timeout}",
            )
        settings = cls(
            account_id=account_id,
            license_key=license_key,
            base_url=base_url.rstrip("/"),
            client_name=section.str("client_name", defaults.client_name),
            timeout_seconds=timeout,
            max_requests_per_second=section.float(
                "max_requests_per_second", defaults.max_requests_per_second, minimum=0.1
            ),
            retry_attempts=section.int(
                "retry_attempts", defaults.retry_attempts, minimum=1, maximum=20
            ),
            retry_deadline_seconds=section.float(
                "retry_deadline_seconds", defaults.retry_deadline_seconds, minimum=1.0
            ),
            backoff_base_seconds=section.float(
                "backoff_base_seconds", defaults.backoff_base_seconds, minimum=0.0
            ),
            backoff_max_seconds=section.float(
                "backoff_max_seconds", defaults.backoff_max_seconds, minimum=0.0
            ),
        )
        section.done()
        return settings


class AvaTaxConnector:
    """Writes SalesInvoice/ReturnInvoice documents to AvaTax and voids them (see module doc)."""

    system = SYSTEM
    max_batch = 50

    def __init__(
        self,
        settings: AvaTaxSettings,
        *,
        client: httpx.Client | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self._own_client = client is None
        self._client = client or httpx.Client(
            base_url=settings.base_url,
            timeout=httpx.Timeout(
                settings.timeout_seconds, connect=min(settings.timeout_seconds, 10.0)
            ),
        )
        self._auth = httpx.BasicAuth(settings.account_id.reveal(), settings.license_key.reveal())
        self._headers = {"X-Avalara-Client": settings.client_name, "Accept": "application/json"}
        self._clock = clock
        self._sleep = sleep
        self.retries = RetryCount()
        self._interval = 1.0 / settings.max_requests_per_second
        self._next_slot = 0.0
        self._throttle_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"AvaTaxConnector(base_url={self.settings.base_url!r})"

    # -- Connector protocol ---------------------------------------------------------------

    def send(self, documents: Sequence[Document]) -> list[WriteResult]:
        """Create-or-adjust or void each document; one result per document, in order.

        A document AvaTax refuses gets a failed result with AvaTax's code and message. Raises
        AuthError when the credentials are refused, and the RetryableError of the first
        document when even it cannot get through (the service is down); a later document's
        retryable failure marks it and the ones after it failed, keeping earlier successes.
        """
        results: list[WriteResult] = []
        for index, doc in enumerate(documents):
            try:
                results.append(self._send_one(doc))
            except AuthError:
                raise
            except PermanentError as exc:
                results.append(WriteResult(doc.external_id, ok=False, error=exc))
            except RetryableError as exc:
                if not results:
                    raise
                results.append(WriteResult(doc.external_id, ok=False, error=exc))
                for rest in documents[index + 1 :]:
                    skipped = RetryableError(
                        SYSTEM, rest.operation, f"not sent: an earlier document failed ({exc})"
                    )
                    results.append(WriteResult(rest.external_id, ok=False, error=skipped))
                break
        return results

    def lookup(self, documents: Sequence[Document]) -> dict[str, str | None]:
        """External id -> AvaTax transaction id when the document is there in the state the
        operation aims for (live for an upsert, Cancelled for a void), else None."""
        found: dict[str, str | None] = {}
        for doc in documents:
            company, code, doc_type = _identity(doc)
            try:
                model = self._get(company, code, doc_type)
            except PermanentError as exc:
                if exc.code == "EntityNotFoundError" and not isinstance(exc, AuthError):
                    found[doc.external_id] = None
                    continue
                raise
            voided = model.get("status") == "Cancelled"
            wanted = voided if doc.operation == "void" else not voided
            found[doc.external_id] = str(model.get("id")) if wanted else None
        return found

    @property
    def retried(self) -> int:
        """Requests retried inside calls so far."""
        return self.retries.value

    def ping(self) -> bool:
        """True when AvaTax answers and accepts the credentials. Raises RetryableError."""
        data = self._call("ping", "GET", "/api/v2/utilities/ping", writes=False)
        return bool(data.get("authenticated"))

    def close(self) -> None:
        """Close the HTTP client if this connector created it."""
        if self._own_client:
            self._client.close()

    # -- operations -----------------------------------------------------------------------

    def _send_one(self, doc: Document) -> WriteResult:
        if doc.operation == "upsert":
            model = self._call(
                "createoradjust",
                "POST",
                "/api/v2/transactions/createoradjust",
                body=doc.payload,
                writes=True,
            )
            return _result(doc, model, created=model.get("version") == 1)
        if doc.operation == "void":
            company, code, doc_type = _identity(doc)
            path = f"/api/v2/companies/{_seg(company)}/transactions/{_seg(code)}/void"
            try:
                model = self._call(
                    "void",
                    "POST",
                    path,
                    params={"documentType": doc_type},
                    body=doc.payload.get("voidTransactionModel", {"code": "DocVoided"}),
                    writes=True,
                )
            except PermanentError as exc:
                if isinstance(exc, AuthError) or exc.code not in _VOID_DONE:
                    raise
                if exc.code == "EntityNotFoundError":
                    return WriteResult(
                        doc.external_id,
                        ok=True,
                        created=False,
                        details={"status": _VOID_DONE[exc.code]},
                    )
                model = self._get(company, code, doc_type)
            return _result(doc, model, created=False)
        raise PermanentError(
            SYSTEM, doc.operation, f"{doc.label}: AvaTax documents are voided, not deleted"
        )

    def _get(self, company: str, code: str, doc_type: str) -> dict[str, Any]:
        path = f"/api/v2/companies/{_seg(company)}/transactions/{_seg(code)}"
        return self._call("lookup", "GET", path, params={"documentType": doc_type}, writes=False)

    # -- HTTP -----------------------------------------------------------------------------

    def _call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        writes: bool,
    ) -> dict[str, Any]:
        # A write whose outcome is unknown is not resent here: the push engine looks it up first.
        condition: retry_base = retry_if_exception_type(RetryableError)
        if writes:
            condition &= retry_if_not_exception_type(OutcomeUnknownError)
        retrying = Retrying(
            stop=stop_after_attempt(self.settings.retry_attempts)
            | stop_after_delay(self.settings.retry_deadline_seconds),
            wait=self._wait,
            retry=condition,
            before_sleep=lambda _state: self.retries.add(),
            sleep=self._sleep,
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                return self._once(operation, method, path, params, body, writes)
        raise AssertionError("unreachable: tenacity either returns or re-raises")

    def _once(
        self,
        operation: str,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        body: Any,
        writes: bool,
    ) -> dict[str, Any]:
        content = _dumps(_to_wire(body)).encode("utf-8") if body is not None else None
        headers = dict(self._headers)
        if content is not None:
            headers["Content-Type"] = "application/json"
        self._throttle()
        try:
            response = self._client.request(
                method, path, params=params, content=content, headers=headers, auth=self._auth
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise RetryableError(
                SYSTEM,
                operation,
                f"cannot reach AvaTax at {self.settings.base_url}: {type(exc).__name__}",
            ) from exc
        except httpx.TransportError as exc:
            if writes:
                raise OutcomeUnknownError(
                    SYSTEM,
                    operation,
                    f"no answer from AvaTax after sending ({type(exc).__name__}); the write "
                    "may have been applied",
                ) from exc
            raise RetryableError(
                SYSTEM, operation, f"no answer from AvaTax ({type(exc).__name__})"
            ) from exc
        return self._classify(operation, response)

    def _classify(self, operation: str, response: httpx.Response) -> dict[str, Any]:
        """The one place where AvaTax's HTTP answers become results or finsync errors."""
        status = response.status_code
        try:
            data = json.loads(response.content, parse_float=Decimal) if response.content else {}
        except ValueError:
            data = None
        if 200 <= status < 300:
            if not isinstance(data, dict):
                raise PermanentError(
                    SYSTEM, operation, f"AvaTax answered HTTP {status} without a JSON object"
                )
            return data
        code, message = _error_of(data, status)
        message = self._scrub(message)
        if status == 429:
            retry_after = _retry_after(response.headers.get("Retry-After"))
            raise RateLimitedError(
                SYSTEM, operation, message, code=code or "429", retry_after=retry_after
            )
        if status >= 500 or status == 408:
            raise RetryableError(SYSTEM, operation, message, code=code or str(status))
        if status == 401:
            raise AuthError(SYSTEM, operation, message, code=code or "401")
        raise PermanentError(SYSTEM, operation, message, code=code or str(status))

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimitedError) and exc.retry_after is not None:
            log.warning("AvaTax asked to slow down; retrying in %.1f s", exc.retry_after)
            return float(exc.retry_after)
        base = self.settings.backoff_base_seconds
        backoff = min(
            self.settings.backoff_max_seconds, base * float(2 ** (state.attempt_number - 1))
        )
        # Jitter keeps several workers that failed together from retrying in lockstep.
        delay = backoff + random.uniform(0, base)
        log.warning(
            "AvaTax attempt %d failed (%s); retrying in %.1f s", state.attempt_number, exc, delay
        )
        return delay

    def _throttle(self) -> None:
        with self._throttle_lock:
            now = self._clock()
            delay = self._next_slot - now
            self._next_slot = max(now, self._next_slot) + self._interval
        if delay > 0:
            self._sleep(delay)

    def _scrub(self, text: str) -> str:
        for secret in (self.settings.license_key, self.settings.account_id):
            value = secret.reveal()
            if value:
                text = text.replace(value, "***")
        return text


def build_avatax(target: TargetConfig) -> Connector:
    """Factory for the connector registry: an AvaTaxConnector from ``[targets.<name>]``."""
    return AvaTaxConnector(AvaTaxSettings.from_section(target.options))


def _identity(doc: Document) -> tuple[str, str, str]:
    payload = doc.payload
    if doc.operation == "void":
        return (
            str(payload["companyCode"]),
            str(payload["transactionCode"]),
            str(payload.get("documentType", doc.record_type)),
        )
    model = payload["createTransactionModel"]
    return str(model["companyCode"]), str(model["code"]), str(model.get("type", doc.record_type))


def _result(doc: Document, model: Mapping[str, Any], *, created: bool) -> WriteResult:
    return WriteResult(
        doc.external_id,
        ok=True,
        internal_id=str(model.get("id")),
        created=created,
        details=transaction_details(model),
    )


def transaction_details(model: Mapping[str, Any]) -> dict[str, Any]:
    """What reconciliation needs from a TransactionModel, amounts as exact decimal strings."""
    return {
        "transactionId": model.get("id"),
        "code": model.get("code"),
        "type": model.get("type"),
        "status": model.get("status"),
        "currencyCode": model.get("currencyCode"),
        "totalAmount": _amount(model.get("totalAmount")),
        "totalTax": _amount(model.get("totalTax")),
        "totalTaxCalculated": _amount(model.get("totalTaxCalculated")),
        "summary": [
            {
                "country": row.get("country"),
                "region": row.get("region"),
                "jurisType": row.get("jurisType"),
                "jurisName": row.get("jurisName"),
                "rate": _amount(row.get("rate")),
                "tax": _amount(row.get("tax")),
                "taxCalculated": _amount(row.get("taxCalculated")),
            }
            for row in model.get("summary") or []
        ],
    }


def _amount(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    return format(Decimal(value), "f") if isinstance(value, int | Decimal) else None


def _error_of(data: Any, status: int) -> tuple[str | None, str]:
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return None, f"HTTP {status} from AvaTax"
    code = error.get("code")
    message = str(error.get("message") or f"HTTP {status}")
    details = error.get("details") or []
    extra = [
        str(d.get("description"))
        for d in details
        if isinstance(d, dict) and d.get("description") and d.get("description") != message
    ]
    if extra:
        message = f"{message} ({'; '.join(extra)})"
    refers = [str(d["refersTo"]) for d in details if isinstance(d, dict) and d.get("refersTo")]
    if refers:
        message = f"{message} [field: {', '.join(refers)}]"
    return (str(code) if code else None), message


def _retry_after(header: str | None) -> float | None:
    if not header:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _seg(value: str) -> str:
    return quote(value, safe="")


def _to_wire(value: Any, key: str | None = None) -> Any:
    """Turn the payload's decimal strings back into Decimals where the API wants numbers."""
    if isinstance(value, Mapping):
        return {k: _to_wire(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_wire(v, key) for v in value]
    if key in _NUMERIC_KEYS and isinstance(value, str):
        try:
            return Decimal(value)
        except InvalidOperation as exc:
            raise PermanentError(SYSTEM, "encode", f"{key} {value!r} is not a number") from exc
    return value


def _dumps(value: Any) -> str:
    """JSON with Decimals written as exact JSON numbers (never through float)."""
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{json.dumps(str(k))}:{_dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_dumps(v) for v in value) + "]"
    if isinstance(value, Decimal):
        return format(value, "f")
    return json.dumps(value)
