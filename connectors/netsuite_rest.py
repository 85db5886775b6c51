"""NetSuite REST record API connector: upsert by ``PUT .../{type}/eid:{externalId}``.

Translates the same neutral payload as the SOAP connector (``mappings.netsuite``) into REST JSON:
references become ``{"id": ...}`` (mapping-table ids) or ``{"externalId": ...}`` (our own
records), sublists become ``{"items": [...]}``, amounts become JSON numbers written exactly from
the decimal strings (never through float), dates stay ``YYYY-MM-DD``. Apply lines need the
internal id of what they apply to (an invoice; a refund's payment or credit memo), which a GET
by external id provides.

One request per document, run on a thread pool of ``concurrency`` threads, each request holding
a slot of the concurrency limiter; a batch goes out in dependency waves
(``netsuite_common.dependency_waves``), so no document is sent before one it depends on.
``accounting_periods()`` reads the ``accountingPeriod`` collection, then each period.
Auth is OAuth 2.0 client credentials with a JWT assertion (token cached until shortly before
it expires) or TBA (OAuth 1.0a, HMAC-SHA256, realm = account).
Errors: 401/403 -> AuthError; 429 and ``SSS_REQUEST_LIMIT_EXCEEDED`` -> RateLimitedError (retried,
Retry-After honoured); 5xx and transport errors -> retried; ``o:errorDetails`` -> PermanentError
with NetSuite's own message.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import httpx
import jwt

from connectors.http import RetryCount, RetryPolicy, classify_status, classify_transport_error
from connectors.limits import Limiter, ThreadLimiter
from connectors.netsuite_common import (
    applied_documents,
    documents_written,
    missing_applied,
    send_in_waves,
    transport_settings,
)
from core.documents import Document, WriteResult
from core.errors import (
    AuthError,
    ConfigError,
    ConnectorError,
    PermanentError,
    RateLimitedError,
    RetryableError,
)
from core.periods import AccountingPeriod, period_order
from finsync.config import Secret, Section

SYSTEM = "netsuite"
RECORD_PATH = "/services/rest/record/v1"
TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"  # noqa: S105 (a URL path)
#: Neutral sublist key -> REST sublist name.
SUBLISTS: Mapping[str, str] = {
    "itemList": "item",
    "applyList": "apply",
    "addressbookList": "addressBook",
    "lineList": "line",
}
#: Neutral field names REST spells differently.
RENAMED: Mapping[str, str] = {"addressbookAddress": "addressBookAddress"}
#: Neutral decimal-string fields that REST types as numbers.
NUMBER_FIELDS = frozenset(
    {"amount", "quantity", "rate", "tax1Amt", "taxRate1", "payment", "debit", "credit"}
)
#: Error codes that mean "too many requests in flight": retry later.
LIMIT_CODES = frozenset({"SSS_REQUEST_LIMIT_EXCEEDED", "CONCURRENCY_LIMIT_EXCEEDED"})
#: Records per page of a collection (NetSuite's maximum).
PAGE_LIMIT = 1000
#: Refresh an OAuth 2.0 token this many seconds before it expires.
TOKEN_MARGIN_SECONDS = 60.0


def default_base_url(account: str) -> str:
    """``https://<account, lower case, '_' -> '-'>.suitetalk.api.netsuite.com``."""
    return f"https://{account.lower().replace('_', '-')}.suitetalk.api.netsuite.com"


@dataclass(frozen=True)
class NetSuiteRestSettings:
    """REST connector settings. ``auth`` is ``oauth2`` (client_id, certificate_id, private_key,
    algorithm) or ``tba`` (consumer_key/secret, token_id/secret)."""

    account: str
    auth: str = "oauth2"
    base_url: str = ""
    client_id: str | None = None
    certificate_id: str | None = None
    private_key: Secret | None = None
    algorithm: str = "PS256"
    consumer_key: Secret | None = None
    consumer_secret: Secret | None = None
    token_id: Secret | None = None
    token_secret: Secret | None = None
    concurrency: int = 5
    timeout_seconds: float = 120.0
    retry_attempts: int = 5
    retry_deadline_seconds: float = 300.0
    backoff_seconds: float = 1.0
    max_batch: int = 100

    def __post_init__(self) -> None:
        if not self.base_url:
            object.__setattr__(self, "base_url", default_base_url(self.account))
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))
        if self.auth == "oauth2":
            missing = [
                n
                for n in ("client_id", "certificate_id", "private_key")
                if getattr(self, n) is None
            ]
        elif self.auth == "tba":
            missing = [
                n
                for n in ("consumer_key", "consumer_secret", "token_id", "token_secret")
                if getattr(self, n) is None
            ]
        else:
            raise ConfigError("auth", f"must be oauth2 or tba, got {self.auth!r}")
        if missing:
            raise ConfigError(missing[0], f"required when auth = {self.auth!r}")

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy inside one request."""
        return RetryPolicy(
            attempts=self.retry_attempts,
            deadline_seconds=self.retry_deadline_seconds,
            backoff_seconds=self.backoff_seconds,
        )

    @classmethod
    def from_section(cls, section: Section) -> NetSuiteRestSettings:
        """Read and validate a config section; ConfigError names the bad key."""
        account = section.str("account", required=True)
        auth = section.str("auth", "oauth2", choices=("oauth2", "tba"))
        oauth2 = auth == "oauth2"
        settings = cls(
            account=account,
            auth=auth,
            base_url=section.str("base_url", default_base_url(account)),
            client_id=section.str("client_id", required=oauth2),
            certificate_id=section.str("certificate_id", required=oauth2),
            private_key=section.secret("private_key", required=oauth2),
            algorithm=section.str("algorithm", "PS256", choices=("PS256", "ES256")),
            consumer_key=section.secret("consumer_key", required=not oauth2),
            consumer_secret=section.secret("consumer_secret", required=not oauth2),
            token_id=section.secret("token_id", required=not oauth2),
            token_secret=section.secret("token_secret", required=not oauth2),
            **transport_settings(section),
            max_batch=section.int("batch_size", 100, minimum=1, maximum=1000),
        )
        section.done()
        return settings


def _pct(value: str) -> str:
    return quote(value, safe="~-._")


def oauth1_header(
    method: str,
    url: str,
    *,
    account: str,
    consumer_key: str,
    consumer_secret: str,
    token: str,
    token_secret: str,
    nonce: str,
    timestamp: int,
) -> str:
    """OAuth 1.0a ``Authorization`` header, HMAC-SHA256, realm = account (NetSuite TBA)."""
    parts = urlsplit(url)
    params = {
        "oauth_consumer_key": consumer_key,
        "oauth_token": token,
        "oauth_signature_method": "HMAC-SHA256",
        "oauth_timestamp": str(timestamp),
        "oauth_nonce": nonce,
        "oauth_version": "1.0",
    }
    pairs = [*params.items(), *parse_qsl(parts.query, keep_blank_values=True)]
    normalized = "&".join(f"{k}={v}" for k, v in sorted((_pct(k), _pct(v)) for k, v in pairs))
    base_url = f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path}"
    base = "&".join((method.upper(), _pct(base_url), _pct(normalized)))
    key = f"{_pct(consumer_secret)}&{_pct(token_secret)}"
    signature = base64.b64encode(hmac.new(key.encode(), base.encode(), hashlib.sha256).digest())
    fields = {"realm": account, **params, "oauth_signature": signature.decode()}
    return "OAuth " + ", ".join(f'{k}="{_pct(v)}"' for k, v in fields.items())


def dumps_exact(value: Any) -> str:
    """JSON with Decimals written as exact numbers (the json module would go through float)."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return (
            "{" + ",".join(f"{json.dumps(str(k))}:{dumps_exact(v)}" for k, v in value.items()) + "}"
        )
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps_exact(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _error_details(response: httpx.Response) -> tuple[str | None, str | None]:
    """(code, message) from a NetSuite REST error body (``o:errorDetails``)."""
    try:
        body = response.json()
    except ValueError:
        return None, None
    if not isinstance(body, dict):
        return None, None
    details = body.get("o:errorDetails") or []
    codes = [d.get("o:errorCode") for d in details if isinstance(d, dict) and d.get("o:errorCode")]
    messages = [str(d.get("detail", "")).strip() for d in details if isinstance(d, dict)]
    message = "; ".join(m for m in messages if m) or body.get("title")
    return (codes[0] if codes else None), message


def classify_response(operation: str, response: httpx.Response) -> ConnectorError | None:
    """The error for a NetSuite REST response, or None when it succeeded."""
    if response.status_code < 400:
        return None
    code, message = _error_details(response)
    if code in LIMIT_CODES:
        return RateLimitedError(SYSTEM, operation, message or "request limit exceeded", code=code)
    return classify_status(SYSTEM, operation, response, message, code)


class NetSuiteRestConnector:
    """Writes documents with the NetSuite REST record API; finds them by external id.

    ``client`` is the httpx client (made if None), ``clock`` gives epoch seconds (OAuth
    timestamps and token expiry), ``limiter`` bounds requests in flight.
    """

    system = SYSTEM

    def __init__(
        self,
        settings: NetSuiteRestSettings,
        *,
        client: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
        limiter: Limiter | None = None,
        nonce: Callable[[], str] = lambda: secrets.token_hex(16),
        sleep: Callable[[float], None] | None = None,
        owns_limiter: bool = False,
    ) -> None:
        self.settings = settings
        self.max_batch = settings.max_batch
        self._http = client or httpx.Client(
            timeout=settings.timeout_seconds,
            limits=httpx.Limits(max_connections=settings.concurrency),
        )
        self._owns_http = client is None
        self._clock = clock
        self._nonce = nonce
        self._sleep = sleep
        self.retries = RetryCount()
        # A limiter made here, or handed over with owns_limiter, is closed with the connector.
        self._owns_limiter = limiter is None or owns_limiter
        self._limiter = limiter or ThreadLimiter(
            f"netsuite:{settings.account}", settings.concurrency
        )
        self._token: tuple[str, float] | None = None
        self._token_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"NetSuiteRestConnector(account={self.settings.account!r})"

    # -- auth ---------------------------------------------------------------------------------

    def _bearer(self) -> str:
        with self._token_lock:
            now = self._clock()
            if self._token is not None and now < self._token[1] - TOKEN_MARGIN_SECONDS:
                return self._token[0]
            self._token = self._fetch_token(now)
            return self._token[0]

    def _fetch_token(self, now: float) -> tuple[str, float]:
        s = self.settings
        assert s.private_key is not None and s.client_id and s.certificate_id
        token_url = s.base_url + TOKEN_PATH
        assertion = jwt.encode(
            {
                "iss": s.client_id,
                "scope": "rest_webservices",
                "aud": token_url,
                "iat": int(now),
                "exp": int(now) + 3600,
            },
            s.private_key.reveal(),
            algorithm=s.algorithm,
            headers={"kid": s.certificate_id, "typ": "JWT"},
        )
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        }

        def once() -> httpx.Response:
            with self._limiter.slot():
                try:
                    response = self._http.post(token_url, data=form)
                except httpx.TransportError as exc:
                    raise classify_transport_error(SYSTEM, "token", exc) from exc
            error = classify_response("token", response)
            if error is not None:
                if response.status_code == 400 and not isinstance(error, RetryableError):
                    raise AuthError(SYSTEM, "token", error.message, code=error.code) from None
                raise error
            return response

        body = s.retry.call(once, sleep=self._sleep, retries=self.retries).json()
        return str(body["access_token"]), now + float(body.get("expires_in", 3600))

    def _auth_header(self, method: str, url: str) -> str:
        s = self.settings
        if s.auth == "oauth2":
            return f"Bearer {self._bearer()}"
        assert s.consumer_key and s.consumer_secret and s.token_id and s.token_secret
        return oauth1_header(
            method,
            url,
            account=s.account,
            consumer_key=s.consumer_key.reveal(),
            consumer_secret=s.consumer_secret.reveal(),
            token=s.token_id.reveal(),
            token_secret=s.token_secret.reveal(),
            nonce=self._nonce(),
            timestamp=int(self._clock()),
        )

    # -- requests -----------------------------------------------------------------------------

    def _url(self, record_type: str, external_id: str) -> str:
        return (
            f"{self.settings.base_url}{RECORD_PATH}/{record_type}/eid:{quote(external_id, safe='')}"
        )

    def _request(
        self, method: str, url: str, operation: str, content: str | None = None
    ) -> httpx.Response:
        def once() -> httpx.Response:
            headers = {
                "Authorization": self._auth_header(method, url),
                "Accept": "application/json",
            }
            if content is not None:
                headers["Content-Type"] = "application/json"
            with self._limiter.slot():
                try:
                    response = self._http.request(method, url, content=content, headers=headers)
                except httpx.TransportError as exc:
                    raise classify_transport_error(SYSTEM, operation, exc) from exc
            if response.status_code == 401:
                self._token = None  # an expired or revoked token: fetch a new one next time
            if method == "GET" and response.status_code == 404:
                return response
            error = classify_response(operation, response)
            if error is not None:
                raise error
            return response

        return self.settings.retry.call(
            once, sleep=self._sleep, retries=self.retries, resend_unknown=method == "GET"
        )

    @property
    def retried(self) -> int:
        """Requests retried inside calls so far."""
        return self.retries.value

    def _find(self, record_type: str, external_id: str) -> str | None:
        response = self._request("GET", self._url(record_type, external_id), "get")
        if response.status_code == 404:
            return None
        body = response.json()
        return str(body["id"]) if body.get("id") is not None else None

    # -- translation --------------------------------------------------------------------------

    def _value(self, key: str, value: Any, doc_ids: Mapping[str, str]) -> Any:
        if key == "doc" and isinstance(value, dict) and "externalId" in value:
            return {"id": doc_ids[value["externalId"]]}
        if isinstance(value, dict):
            if set(value) == {"internalId"}:
                return {"id": value["internalId"]}
            return {RENAMED.get(k, k): self._value(k, v, doc_ids) for k, v in value.items()}
        if key in SUBLISTS and isinstance(value, list):
            return {"items": [self._value("", line, doc_ids) for line in value]}
        if key in NUMBER_FIELDS and isinstance(value, str):
            return Decimal(value)
        return value

    def to_rest(
        self, document: Document, doc_ids: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """The REST body of ``document`` (apply lines need ``doc_ids``: external -> internal id)."""
        body: dict[str, Any] = {"externalId": document.external_id}
        for key, value in document.payload.items():
            body[SUBLISTS.get(key, key)] = self._value(key, value, doc_ids or {})
        return body

    # -- Connector protocol -------------------------------------------------------------------

    def _send_one(self, document: Document, doc_ids: Mapping[str, str]) -> WriteResult:
        missing = missing_applied("upsert", document, doc_ids)
        if missing is not None:
            return missing
        if document.operation == "delete":
            return WriteResult(
                document.external_id,
                False,
                error=PermanentError(SYSTEM, "upsert", "delete is not supported by this connector"),
            )
        url = self._url(document.record_type, document.external_id)
        try:
            response = self._request(
                "PUT", url, "upsert", dumps_exact(self.to_rest(document, doc_ids))
            )
        except AuthError:
            raise
        except ConnectorError as exc:
            error = type(exc)(
                exc.system, exc.operation, f"{document.label}: {exc.message}", code=exc.code
            )
            return WriteResult(document.external_id, False, error=error)
        location = response.headers.get("Location", "")
        internal_id = location.rstrip("/").rsplit("/", 1)[-1] if location else None
        if internal_id is None or internal_id.startswith("eid:"):
            internal_id = self._find(document.record_type, document.external_id)
        return WriteResult(document.external_id, True, internal_id=internal_id)

    def _send_wave_item(
        self, documents: Sequence[Document], doc_ids: Mapping[str, str], index: int
    ) -> WriteResult:
        return self._send_one(documents[index], doc_ids)

    def _map(self, func: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        if len(items) <= 1:
            return [func(i) for i in items]
        with ThreadPoolExecutor(max_workers=min(self.settings.concurrency, len(items))) as pool:
            return list(pool.map(func, items))

    def send(self, documents: Sequence[Document]) -> list[WriteResult]:
        """Upsert each document (void documents carry their voided payload); one result each.

        Documents go out in waves (``dependency_waves``): never before a document of the same
        batch they depend on; one whose dependency failed is not sent. Raises AuthError when
        credentials are refused; other failures are per document.
        """
        return send_in_waves(
            documents,
            self.max_batch,
            lambda wave, results: self._send_wave(documents, wave, results),
        )

    def _send_wave(
        self, documents: Sequence[Document], wave: list[int], results: dict[int, WriteResult]
    ) -> None:
        doc_ids = documents_written(documents, results)
        wanted = applied_documents([documents[i] for i in wave])
        found = self._map(
            lambda ext: (ext, self._find(wanted[ext], ext)),
            sorted(set(wanted) - set(doc_ids)),
        )
        doc_ids.update({ext: iid for ext, iid in found if iid is not None})
        sent = self._map(functools.partial(self._send_wave_item, documents, doc_ids), wave)
        results.update(zip(wave, sent, strict=True))

    def accounting_periods(self) -> list[AccountingPeriod]:
        """The account's posting periods, by start date: the ``accountingPeriod`` collection,
        then each period by id (the collection lists ids only).

        Quarter and year summary periods are left out: nothing posts to them. Raises
        RetryableError / PermanentError (AuthError).
        """
        ids: list[str] = []
        offset = 0
        while True:
            url = (
                f"{self.settings.base_url}{RECORD_PATH}/accountingPeriod"
                f"?limit={PAGE_LIMIT}&offset={offset}"
            )
            page = self._request("GET", url, "list accountingPeriod").json()
            items = page.get("items") or []
            ids += [str(item["id"]) for item in items]
            if not page.get("hasMore") or not items:
                break
            offset += len(items)

        def read(internal_id: str) -> dict[str, Any]:
            url = f"{self.settings.base_url}{RECORD_PATH}/accountingPeriod/{internal_id}"
            response = self._request("GET", url, "get accountingPeriod")
            if response.status_code == 404:
                raise PermanentError(
                    SYSTEM, "get accountingPeriod", f"period {internal_id} vanished while read"
                )
            body: dict[str, Any] = response.json()
            return body

        periods = []
        for body in self._map(read, ids):
            if body.get("isQuarter") or body.get("isYear"):
                continue
            periods.append(
                AccountingPeriod(
                    internal_id=str(body["id"]),
                    name=str(body.get("periodName", "")),
                    start=date.fromisoformat(str(body["startDate"])[:10]),
                    end=date.fromisoformat(str(body["endDate"])[:10]),
                    closed=any(bool(body.get(f)) for f in ("closed", "arLocked", "allLocked")),
                )
            )
        return sorted(periods, key=period_order)

    def lookup(self, documents: Sequence[Document]) -> dict[str, str | None]:
        """external id -> internal id, or None when NetSuite has no such record."""
        found = self._map(
            lambda d: (d.external_id, self._find(d.record_type, d.external_id)), documents
        )
        return dict(found)

    def close(self) -> None:
        """Close what this connector opened."""
        if self._owns_http:
            self._http.close()
        if self._owns_limiter:
            self._limiter.close()
