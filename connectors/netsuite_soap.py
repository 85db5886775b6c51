"""NetSuite SuiteTalk SOAP (endpoint 2023_2) connector: upsertList / getList / search with TBA.

zeep reads the WSDL once per process (``soap_client``) and serialises requests; httpx sends them
so that timeouts, retries and the concurrency limit are handled exactly like every other
connector (``connectors.http``). Replies are read with lxml: only status, ids and faults matter.

- Auth: a fresh ``tokenPassport`` header per request (HMAC-SHA256 over
  ``account&consumerKey&token&nonce&timestamp`` keyed ``consumerSecret&tokenSecret``).
- Idempotency: ``upsertList`` matches on externalId and record type, so re-sending a batch whose
  outcome is unknown updates instead of duplicating; retries inside a call are therefore safe.
- Apply sublists reference documents by internal id only (``doc`` is ``xsd:long``), so before an
  upsert the connector looks up the invoices that payments and credit memos apply to, and the
  payments and credit memos that customer refunds pay back.
- Order: a batch goes out in dependency waves (``netsuite_common.dependency_waves``), one
  upsertList each, so an invoice in the same batch is written (and its id known) before the
  payment applied to it.
- Countries: ISO codes become the 2023_2 ``Country`` enumeration through the table generated
  from the XSD (``core/netsuite_countries.py``), never from display names.
- ``accounting_periods()`` searches with ``AccountingPeriodSearch``.
- Voids: the 2023_2 endpoint has no void operation; a ``void`` document carries the voided
  (zeroed) payload and is written with the same upsert.
- Faults are classified in one table (``classify_fault``); one bad record fails only its own
  ``WriteResult``. Secrets never appear in messages or logs: zeep's transport logger (which
  prints envelopes, passport included, at DEBUG) is silenced and unused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol, cast
from urllib.parse import urlsplit

import httpx
import requests
import zeep
import zeep.exceptions
from lxml import etree

from connectors.base import Connector
from connectors.http import RetryCount, RetryPolicy, classify_status, classify_transport_error
from connectors.limits import Limiter, ThreadLimiter, build_limiter
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
from core.netsuite_countries import NETSUITE_COUNTRIES
from core.periods import AccountingPeriod, period_order
from finsync.config import Secret, Section, TargetConfig

SYSTEM = "netsuite"
#: The SOAP endpoint version this connector speaks.
VERSION = "2023_2"
#: NetSuite's own WSDL for the version (a local path or file: URL works too).
DEFAULT_WSDL = "https://webservices.netsuite.com/wsdl/v2023_2_0/netsuite.wsdl"
#: NetSuite's synchronous caps: upsertList 100 records, getList 1000 references.
MAX_UPSERT = 100
MAX_GET = 1000
#: Largest search page NetSuite returns.
MAX_SEARCH_PAGE = 1000

NS_SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
NS_MESSAGES = f"urn:messages_{VERSION}.platform.webservices.netsuite.com"
NS_CORE = f"urn:core_{VERSION}.platform.webservices.netsuite.com"
NS_COMMON = f"urn:common_{VERSION}.platform.webservices.netsuite.com"
NS_ACCOUNTING = f"urn:accounting_{VERSION}.lists.webservices.netsuite.com"
BINDING = f"{{urn:platform_{VERSION}.webservices.netsuite.com}}NetSuiteBinding"

#: Record type (RecordRef ``type``) -> XSD type of the record.
RECORD_TYPES: Mapping[str, str] = {
    "customer": f"{{urn:relationships_{VERSION}.lists.webservices.netsuite.com}}Customer",
    "invoice": f"{{urn:sales_{VERSION}.transactions.webservices.netsuite.com}}Invoice",
    "creditMemo": f"{{urn:customers_{VERSION}.transactions.webservices.netsuite.com}}CreditMemo",
    "customerPayment": (
        f"{{urn:customers_{VERSION}.transactions.webservices.netsuite.com}}CustomerPayment"
    ),
    "customerRefund": (
        f"{{urn:customers_{VERSION}.transactions.webservices.netsuite.com}}CustomerRefund"
    ),
    "journalEntry": f"{{urn:general_{VERSION}.transactions.webservices.netsuite.com}}JournalEntry",
}
#: Neutral sublist key -> element of one line inside the SOAP list.
SUBLISTS: Mapping[str, str] = {
    "itemList": "item",
    "applyList": "apply",
    "addressbookList": "addressbook",
    "lineList": "line",
}
#: Neutral date fields; SOAP types them xsd:dateTime.
DATE_FIELDS = frozenset(
    {"tranDate", "dueDate", "revRecStartDate", "revRecEndDate", "startDate", "endDate", "applyDate"}
)

#: Fault and status codes that mean "try again later" (concurrency limits, outages).
RETRYABLE_CODES = frozenset(
    {
        "WS_REQUEST_BLOCKED",
        "WS_CONCUR_SESSION_DISALLWD",
        "EXCEEDED_CONCURRENT_REQUEST_LIMIT",
        "EXCEEDED_REQUEST_LIMIT",
        "UNEXPECTED_ERROR",
        "SSS_REQUEST_LIMIT_EXCEEDED",
        "RCRD_HAS_BEEN_CHANGED",
        "WS_EXCEEDED_CONCUR_USERS_ALLOWED",
    }
)
#: Fault elements (detail children) that mean "try again later".
RETRYABLE_FAULTS = frozenset(
    {
        "exceededConcurrentRequestLimitFault",
        "exceededRequestLimitFault",
        "unexpectedErrorFault",
    }
)
#: Fault elements that mean the credentials or signature were refused.
AUTH_FAULTS = frozenset({"invalidCredentialsFault", "invalidAccountFault", "invalidSessionFault"})
#: Status codes of records that do not exist (getList).
NOT_FOUND_CODES = frozenset({"RCRD_DSNT_EXIST", "INVALID_KEY_OR_REF"})

log = logging.getLogger(__name__)
# zeep logs whole envelopes (tokenPassport included) at DEBUG; we never send through zeep, and
# make sure nobody turning on DEBUG gets them either.
logging.getLogger("zeep.transports").disabled = True


def default_endpoint(account: str) -> str:
    """The account-specific SOAP URL: ``1234567_SB1`` -> ``https://1234567-sb1.suitetalk...``."""
    host = account.lower().replace("_", "-")
    return f"https://{host}.suitetalk.api.netsuite.com/services/NetSuitePort_{VERSION}"


@dataclass(frozen=True)
class NetSuiteSoapSettings:
    """Everything the SOAP connector needs; secrets are ``Secret`` and never printed."""

    account: str
    consumer_key: Secret
    consumer_secret: Secret
    token_id: Secret
    token_secret: Secret
    wsdl: str = DEFAULT_WSDL
    endpoint: str = ""
    batch_size: int = MAX_UPSERT
    concurrency: int = 5
    timeout_seconds: float = 120.0
    retry_attempts: int = 5
    retry_deadline_seconds: float = 300.0
    backoff_seconds: float = 1.0

    def __post_init__(self) -> None:
        if not self.endpoint:
            object.__setattr__(self, "endpoint", default_endpoint(self.account))
        if not 1 <= self.batch_size <= MAX_UPSERT:
            raise ConfigError("batch_size", f"must be between 1 and {MAX_UPSERT}")

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy inside one call."""
        return RetryPolicy(
            attempts=self.retry_attempts,
            deadline_seconds=self.retry_deadline_seconds,
            backoff_seconds=self.backoff_seconds,
        )

    @classmethod
    def from_section(cls, section: Section) -> NetSuiteSoapSettings:
        """Read and validate a config section; ConfigError names the bad key."""
        account = section.str("account", required=True)
        if account != account.upper():
            # NetSuite's realm is case-sensitive in the signature: 1234567_SB1, not 1234567_sb1.
            raise ConfigError(
                section.key("account"), f"write the account id in upper case ({account.upper()!r})"
            )
        settings = cls(
            account=account,
            consumer_key=_secret(section, "consumer_key"),
            consumer_secret=_secret(section, "consumer_secret"),
            token_id=_secret(section, "token_id"),
            token_secret=_secret(section, "token_secret"),
            wsdl=section.str("wsdl", DEFAULT_WSDL),
            endpoint=section.str("endpoint", default_endpoint(account)),
            batch_size=section.int("batch_size", MAX_UPSERT, minimum=1, maximum=MAX_UPSERT),
            **transport_settings(section),
        )
        section.done()
        return settings


def _secret(section: Section, name: str) -> Secret:
    value = section.secret(name)
    assert value is not None  # required=True raises instead
    return value


_clients: dict[str, zeep.Client] = {}
_clients_lock = threading.Lock()


# zeep ships py.typed but leaves its functions unannotated: calls into it are marked
# ``type: ignore[no-untyped-call]`` one by one, or go through the typed ``_ZeepClient`` below.


class _ZeepClient(Protocol):
    """The part of ``zeep.Client`` the connector uses, with the types zeep leaves out."""

    def create_service(self, binding_name: str, address: str) -> Any: ...

    def create_message(
        self, service: Any, operation_name: str, *args: Any, **kwargs: Any
    ) -> etree._Element: ...

    def get_type(self, name: str) -> Any: ...


class _SameOriginTransport(zeep.Transport):
    """Loads WSDL/XSD documents only from the WSDL's own origin (scheme, host, port)."""

    def __init__(self, origin: str, timeout: float) -> None:
        super().__init__(timeout=timeout, operation_timeout=timeout)  # type: ignore[no-untyped-call]
        self._origin = origin

    def load(self, url: str) -> bytes:
        """The document at ``url``; refuses any other origin (no fetching from elsewhere)."""
        if _origin(url) != self._origin:
            raise ConfigError("wsdl", f"the WSDL imports {url}, outside {self._origin}")
        return cast("bytes", super().load(url))  # type: ignore[no-untyped-call]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def soap_client(wsdl: str, timeout: float = 60.0) -> zeep.Client:
    """The zeep client of ``wsdl``, built once per process (loading the WSDL takes ~0.5 s).

    Parsing is locked down: no DTDs, no entities, no huge trees. A local WSDL may not reference
    anything remote (``forbid_external``); a WSDL served over HTTP(S) imports its XSDs from its
    own server, which zeep's ``forbid_external`` would refuse, so there the transport allows
    exactly that origin and nothing else.
    """
    with _clients_lock:
        client = _clients.get(wsdl)
        if client is None:
            remote = urlsplit(wsdl).scheme in ("http", "https")
            settings = zeep.Settings(
                strict=True,
                xml_huge_tree=False,
                forbid_dtd=True,
                forbid_entities=True,
                forbid_external=not remote,
            )
            transport = (
                _SameOriginTransport(_origin(wsdl), timeout)
                if remote
                else zeep.Transport(timeout=timeout, operation_timeout=timeout)  # type: ignore[no-untyped-call]
            )
            try:
                client = zeep.Client(wsdl, settings=settings, transport=transport)  # type: ignore[no-untyped-call]
            except (requests.RequestException, OSError) as exc:
                raise RetryableError(
                    "netsuite", "load WSDL", f"cannot fetch {wsdl}: {type(exc).__name__}"
                ) from exc
            except (etree.XMLSyntaxError, zeep.exceptions.Error) as exc:
                raise PermanentError(
                    "netsuite", "load WSDL", f"{wsdl} is not a usable WSDL: {exc}"
                ) from exc
            _clients[wsdl] = client
        return client


def tba_signature(
    account: str,
    consumer_key: str,
    token: str,
    nonce: str,
    timestamp: int,
    consumer_secret: str,
    token_secret: str,
) -> str:
    """The tokenPassport signature: base64(HMAC-SHA256(cs&ts, account&ck&token&nonce&ts))."""
    base = "&".join((account, consumer_key, token, nonce, str(timestamp)))
    key = f"{consumer_secret}&{token_secret}"
    digest = hmac.new(key.encode(), base.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def _default_nonce() -> str:
    return secrets.token_hex(16)


def _local(element: etree._Element) -> str:
    return cast("str", etree.QName(element).localname)


def _child(element: etree._Element | None, name: str) -> etree._Element | None:
    if element is None:
        return None
    for child in element:
        if isinstance(child.tag, str) and _local(child) == name:
            return child
    return None


def _children(element: etree._Element | None, name: str) -> list[etree._Element]:
    if element is None:
        return []
    return [c for c in element if isinstance(c.tag, str) and _local(c) == name]


def classify_fault(
    operation: str,
    fault_name: str | None,
    code: str | None,
    message: str,
    http_status: int | None = None,
) -> ConnectorError:
    """The error for a SOAP fault (``fault_name`` is the detail element, ``code`` its code).

    The code decides when there is one (an ``unexpectedErrorFault`` may carry USER_ERROR, which
    will fail again); the fault element decides otherwise; a bare 5xx fault is retryable.
    """
    code_text = code or fault_name or "SOAP_FAULT"
    if (code and code.startswith("INVALID_LOGIN")) or code == "INVALID_SIGNATURE":
        return AuthError(SYSTEM, operation, message, code=code_text)
    if fault_name in AUTH_FAULTS:
        return AuthError(SYSTEM, operation, message, code=code_text)
    limited = fault_name in ("exceededConcurrentRequestLimitFault", "exceededRequestLimitFault")
    if code in RETRYABLE_CODES or (code is None and fault_name in RETRYABLE_FAULTS):
        cls = RateLimitedError if limited else RetryableError
        return cls(SYSTEM, operation, message, code=code_text)
    if code is None and limited:
        return RateLimitedError(SYSTEM, operation, message, code=code_text)
    if code is None and fault_name is None and (http_status or 500) >= 500:
        return RetryableError(SYSTEM, operation, message, code=code_text)
    return PermanentError(SYSTEM, operation, message, code=code_text)


def _status_error(operation: str, status: etree._Element | None) -> ConnectorError | None:
    """None when a ``status`` says isSuccess, else the classified error of its first detail."""
    if status is not None and status.get("isSuccess") == "true":
        return None
    details = _children(status, "statusDetail")
    errors = [d for d in details if d.get("type", "ERROR") == "ERROR"] or details
    code_el = _child(errors[0], "code") if errors else None
    code = (code_el.text or "") if code_el is not None else None
    messages = (_child(d, "message") for d in errors)
    message = (
        "; ".join((m.text or "").strip() for m in messages if m is not None)
        or "NetSuite reported a failure without details"
    )
    if code in RETRYABLE_CODES:
        return RetryableError(SYSTEM, operation, message, code=code)
    if code and code.startswith("INVALID_LOGIN"):
        return AuthError(SYSTEM, operation, message, code=code)
    return PermanentError(SYSTEM, operation, message, code=code or "ERROR")


def _country(code: str) -> str:
    """ISO 3166 alpha-2 -> NetSuite's Country enumeration (``US`` -> ``_unitedStates``).

    The table is generated from the 2023_2 XSD (tools/gen_netsuite_countries.py). The mapping
    refuses a country NetSuite does not list, so a KeyError here is a bug, raised as ValueError.
    """
    value = NETSUITE_COUNTRIES.get(code.upper())
    if value is None:
        raise ValueError(f"{code!r} is not a country of NetSuite's Country enumeration")
    return value


def _text(element: etree._Element, name: str) -> str:
    child = _child(element, name)
    return (child.text or "").strip() if child is not None else ""


def _flag(element: etree._Element, name: str) -> bool:
    return _text(element, name) in ("true", "1")


def _calendar_date(value: str) -> date:
    # A dateTime of a date field ("2024-03-01T00:00:00.000-08:00") names the calendar date in
    # the account's time zone: take the date as written, never convert it to UTC.
    return date.fromisoformat(value[:10])


def _soap_date(value: str) -> str:
    # NetSuite dates are calendar dates; a dateTime without offset is read in the account's
    # own time zone, so the date is never shifted by a UTC conversion.
    return f"{date.fromisoformat(value).isoformat()}T00:00:00"


class NetSuiteSoapConnector:
    """Writes documents to NetSuite with upsertList and finds them with getList (SOAP, TBA).

    ``client`` is the httpx client (one is made if None); ``clock`` gives the passport
    timestamp in seconds; ``nonce`` returns a fresh nonce; ``limiter`` bounds requests in
    flight (a ``ThreadLimiter`` of ``settings.concurrency`` if None; pass a shared one from
    ``connectors.limits.build_limiter`` to bound all processes together).
    """

    system = SYSTEM

    def __init__(
        self,
        settings: NetSuiteSoapSettings,
        *,
        client: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
        nonce: Callable[[], str] = _default_nonce,
        limiter: Limiter | None = None,
        sleep: Callable[[float], None] | None = None,
        owns_limiter: bool = False,
    ) -> None:
        self.settings = settings
        self.max_batch = settings.batch_size
        self._http = client or httpx.Client(timeout=settings.timeout_seconds)
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
        self._zeep = cast("_ZeepClient", soap_client(settings.wsdl))
        self._service = self._zeep.create_service(BINDING, settings.endpoint)

    def __repr__(self) -> str:
        return f"NetSuiteSoapConnector(account={self.settings.account!r})"

    # -- requests -----------------------------------------------------------------------------

    def token_passport(self) -> Any:
        """A fresh tokenPassport header (new nonce and timestamp each call)."""
        s = self.settings
        nonce = self._nonce()
        timestamp = int(self._clock())
        signature = tba_signature(
            s.account,
            s.consumer_key.reveal(),
            s.token_id.reveal(),
            nonce,
            timestamp,
            s.consumer_secret.reveal(),
            s.token_secret.reveal(),
        )
        passport_type = self._zeep.get_type(f"{{{NS_CORE}}}TokenPassport")
        signature_type = self._zeep.get_type(f"{{{NS_CORE}}}TokenPassportSignature")
        return passport_type(
            account=s.account,
            consumerKey=s.consumer_key.reveal(),
            token=s.token_id.reveal(),
            nonce=nonce,
            timestamp=timestamp,
            signature=signature_type(signature, algorithm="HMAC-SHA256"),
        )

    def envelope(
        self, operation: str, *, headers: Mapping[str, Any] | None = None, **body: Any
    ) -> bytes:
        """The serialised SOAP request for ``operation`` with a fresh passport (and ``headers``,
        e.g. ``searchPreferences``)."""
        soapheaders = {**(headers or {}), "tokenPassport": self.token_passport()}
        message = self._zeep.create_message(
            self._service, operation, **body, _soapheaders=soapheaders
        )
        return cast("bytes", etree.tostring(message, xml_declaration=True, encoding="utf-8"))

    def _post_once(
        self,
        operation: str,
        body: Mapping[str, Any],
        headers: Mapping[str, Any] | None = None,
    ) -> etree._Element:
        # A new passport per attempt: NetSuite refuses a nonce it has seen.
        content = self.envelope(operation, headers=headers, **body)
        headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": operation}
        with self._limiter.slot():
            try:
                response = self._http.post(self.settings.endpoint, content=content, headers=headers)
            except httpx.TransportError as exc:
                raise classify_transport_error(SYSTEM, operation, exc) from exc
        root = self._parse(operation, response)
        fault = _child(_child(root, "Body"), "Fault") if root is not None else None
        if fault is not None:
            raise self._fault_error(operation, fault, response.status_code)
        error = classify_status(SYSTEM, operation, response)
        if error is not None:
            raise error
        if root is None:
            raise PermanentError(SYSTEM, operation, "reply is not XML")
        return root

    def _parse(self, operation: str, response: httpx.Response) -> etree._Element | None:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
        try:
            return etree.fromstring(response.content, parser)
        except etree.XMLSyntaxError:
            if response.status_code < 400:
                raise RetryableError(SYSTEM, operation, "reply is not well-formed XML") from None
            return None

    def _fault_error(self, operation: str, fault: etree._Element, status: int) -> ConnectorError:
        faultstring_el = _child(fault, "faultstring")
        faultstring = (faultstring_el.text or "") if faultstring_el is not None else ""
        detail = _child(fault, "detail")
        fault_el = (
            next((c for c in detail if isinstance(c.tag, str)), None)
            if detail is not None
            else None
        )
        name = _local(fault_el) if fault_el is not None else None
        if name == "hostname":
            fault_el, name = None, None
        code_el = _child(fault_el, "code")
        message_el = _child(fault_el, "message")
        message = message_el.text if message_el is not None and message_el.text else faultstring
        return classify_fault(
            operation,
            name,
            code_el.text if code_el is not None else None,
            message.strip() or "SOAP fault",
            status,
        )

    def _call(
        self,
        operation: str,
        body: Mapping[str, Any],
        headers: Mapping[str, Any] | None = None,
        *,
        write: bool = False,
    ) -> etree._Element:
        return self.settings.retry.call(
            lambda: self._post_once(operation, body, headers),
            sleep=self._sleep,
            retries=self.retries,
            resend_unknown=not write,
        )

    @property
    def retried(self) -> int:
        """Requests retried inside calls so far."""
        return self.retries.value

    # -- translation --------------------------------------------------------------------------

    def _value(self, key: str, value: Any, doc_ids: Mapping[str, str]) -> Any:
        if key in DATE_FIELDS and isinstance(value, str):
            return _soap_date(value)
        if key == "doc" and isinstance(value, dict):
            if "internalId" in value:
                return int(value["internalId"])
            return int(doc_ids[value["externalId"]])
        if key == "country" and isinstance(value, str):
            return _country(value)
        if isinstance(value, dict):
            return {k: self._value(k, v, doc_ids) for k, v in value.items()}
        if key in SUBLISTS and isinstance(value, list):
            lines = [self._value("", line, doc_ids) for line in value]
            wrapper: dict[str, Any] = {SUBLISTS[key]: lines}
            if key != "applyList":
                wrapper["replaceAll"] = True
            return wrapper
        return value

    def to_soap(self, document: Document, doc_ids: Mapping[str, str] | None = None) -> Any:
        """The zeep record object of ``document`` (apply lines need ``doc_ids``: ext -> int)."""
        record_type = RECORD_TYPES.get(document.record_type)
        if record_type is None:
            raise PermanentError(
                SYSTEM, "upsertList", f"record type {document.record_type!r} is not supported"
            )
        fields = {k: self._value(k, v, doc_ids or {}) for k, v in document.payload.items()}
        return self._zeep.get_type(record_type)(externalId=document.external_id, **fields)

    # -- Connector protocol -------------------------------------------------------------------

    def send(self, documents: Sequence[Document]) -> list[WriteResult]:
        """Upsert ``documents`` (at most ``max_batch``); one WriteResult per document, in order.

        A document goes out only after the documents of the same batch it depends on (one
        upsertList per wave, see ``dependency_waves``); one whose dependency failed is not sent.
        Raises RetryableError / PermanentError (AuthError) when a whole call fails.
        """
        return send_in_waves(
            documents,
            self.max_batch,
            lambda wave, results: self._send_wave(documents, wave, results),
        )

    def _send_wave(
        self, documents: Sequence[Document], wave: Sequence[int], results: dict[int, WriteResult]
    ) -> None:
        known = documents_written(documents, results)
        doc_ids = {
            **self._resolve_applied([documents[i] for i in wave], known),
            **known,
        }
        records: list[Any] = []
        positions: list[int] = []
        for i in wave:
            document = documents[i]
            if document.operation == "delete":
                results[i] = WriteResult(
                    document.external_id,
                    False,
                    error=PermanentError(
                        SYSTEM, "upsertList", "delete is not supported by this connector"
                    ),
                )
                continue
            missing = missing_applied("upsertList", document, doc_ids)
            if missing is not None:
                results[i] = missing
                continue
            try:
                records.append(self.to_soap(document, doc_ids))
            except (PermanentError, TypeError, ValueError) as exc:
                results[i] = WriteResult(
                    document.external_id,
                    False,
                    error=PermanentError(
                        SYSTEM, "upsertList", f"{document.label}: cannot build the record: {exc}"
                    ),
                )
                continue
            positions.append(i)
        if records:
            self._upsert_list(documents, records, positions, results)

    def _upsert_list(
        self,
        documents: Sequence[Document],
        records: list[Any],
        positions: list[int],
        results: dict[int, WriteResult],
    ) -> None:
        """One upsertList of ``records``; a batch that cannot be serialised is split in halves
        until the records that cannot be are found: they fail alone, the rest is sent."""
        try:
            root = self._call("upsertList", {"record": records}, write=True)
        except (TypeError, ValueError) as exc:  # zeep/lxml refused to build the message
            if len(records) == 1:
                (i,) = positions
                results[i] = WriteResult(
                    documents[i].external_id,
                    False,
                    error=PermanentError(
                        SYSTEM,
                        "upsertList",
                        f"{documents[i].label}: cannot be written as a SOAP message ({exc}); "
                        "correct the record's text in billing",
                        code="SERIALIZATION",
                    ),
                )
                return
            half = len(records) // 2
            self._upsert_list(documents, records[:half], positions[:half], results)
            self._upsert_list(documents, records[half:], positions[half:], results)
            return
        responses = root.findall(
            f".//{{{NS_MESSAGES}}}writeResponseList/{{{NS_MESSAGES}}}writeResponse"
        )
        list_el = root.find(f".//{{{NS_MESSAGES}}}writeResponseList")
        list_error = _status_error("upsertList", _child(list_el, "status"))
        if len(responses) != len(records):
            if list_error is not None and not responses:
                raise list_error
            raise PermanentError(
                SYSTEM, "upsertList", f"{len(responses)} results for {len(records)} records"
            )
        for i, response in zip(positions, responses, strict=True):
            results[i] = self._write_result(documents[i], response)

    def _write_result(self, document: Document, response: etree._Element) -> WriteResult:
        error = _status_error("upsertList", _child(response, "status"))
        ref = _child(response, "baseRef")
        internal_id = ref.get("internalId") if ref is not None else None
        if error is not None:
            error = type(error)(
                error.system, error.operation, f"{document.label}: {error.message}", code=error.code
            )
            return WriteResult(document.external_id, False, internal_id=internal_id, error=error)
        return WriteResult(
            document.external_id,
            True,
            internal_id=internal_id,
            details={"type": ref.get("type") if ref is not None else None},
        )

    def _get_list(self, refs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str | None]:
        """(record type, external id) -> internal id or None, via getList."""
        found: dict[tuple[str, str], str | None] = {}
        for start in range(0, len(refs), MAX_GET):
            chunk = refs[start : start + MAX_GET]
            base_refs = [
                self._zeep.get_type(f"{{{NS_CORE}}}RecordRef")(type=t, externalId=e)
                for t, e in chunk
            ]
            root = self._call("getList", {"baseRef": base_refs})
            responses = root.findall(
                f".//{{{NS_MESSAGES}}}readResponseList/{{{NS_MESSAGES}}}readResponse"
            )
            if len(responses) != len(chunk):
                list_el = root.find(f".//{{{NS_MESSAGES}}}readResponseList")
                raise _status_error("getList", _child(list_el, "status")) or PermanentError(
                    SYSTEM, "getList", f"{len(responses)} results for {len(chunk)} references"
                )
            for key, response in zip(chunk, responses, strict=True):
                error = _status_error("getList", _child(response, "status"))
                if error is not None:
                    if error.code in NOT_FOUND_CODES:
                        found[key] = None
                        continue
                    raise error
                record = _child(response, "record")
                found[key] = record.get("internalId") if record is not None else None
        return found

    def _resolve_applied(
        self, documents: Sequence[Document], known: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """External id -> internal id of what ``documents`` apply to, via getList (what
        ``known`` already holds is not looked up)."""
        wanted = {
            ext: record_type
            for ext, record_type in applied_documents(documents).items()
            if ext not in (known or {})
        }
        if not wanted:
            return {}
        found = self._get_list([(wanted[ext], ext) for ext in sorted(wanted)])
        return {ext: iid for (_, ext), iid in found.items() if iid is not None}

    def accounting_periods(self) -> list[AccountingPeriod]:
        """The account's posting periods, by start date, via ``search`` (AccountingPeriodSearch).

        Quarter and year summary periods are left out: nothing posts to them. Raises
        RetryableError / PermanentError (AuthError) like any call; PermanentError when the
        account has more periods than one search page holds (1000).
        """
        search = self._zeep.get_type(f"{{{NS_ACCOUNTING}}}AccountingPeriodSearch")
        basic = self._zeep.get_type(f"{{{NS_COMMON}}}AccountingPeriodSearchBasic")
        preferences = self._zeep.get_type(f"{{{NS_MESSAGES}}}SearchPreferences")
        root = self._call(
            "search",
            {"searchRecord": search(basic=basic())},
            {"searchPreferences": preferences(bodyFieldsOnly=True, pageSize=MAX_SEARCH_PAGE)},
        )
        result = root.find(f".//{{{NS_CORE}}}searchResult")
        if result is None:
            raise PermanentError(SYSTEM, "search", "reply has no searchResult")
        error = _status_error("search", _child(result, "status"))
        if error is not None:
            raise error
        pages = _child(result, "totalPages")
        if pages is not None and int(pages.text or "1") > 1:
            raise PermanentError(
                SYSTEM, "search", f"more than {MAX_SEARCH_PAGE} accounting periods in one search"
            )
        periods = []
        for record in _children(_child(result, "recordList"), "record"):
            if _flag(record, "isQuarter") or _flag(record, "isYear"):
                continue
            periods.append(
                AccountingPeriod(
                    internal_id=record.get("internalId") or "",
                    name=_text(record, "periodName"),
                    start=_calendar_date(_text(record, "startDate")),
                    end=_calendar_date(_text(record, "endDate")),
                    closed=any(_flag(record, f) for f in ("closed", "arLocked", "allLocked")),
                )
            )
        return sorted(periods, key=period_order)

    def lookup(self, documents: Sequence[Document]) -> dict[str, str | None]:
        """external id -> internal id (None when NetSuite has no such record), via getList."""
        found = self._get_list([(d.record_type, d.external_id) for d in documents])
        return {ext: iid for (_, ext), iid in found.items()}

    def close(self) -> None:
        """Close the HTTP client if this connector made it."""
        if self._owns_http:
            self._http.close()
        if self._owns_limiter:
            self._limiter.close()


def build_netsuite(target: TargetConfig, *, state_url: str | None = None) -> Connector:
    """The NetSuite connector of a target section: ``transport = "soap"`` (default) or ``"rest"``.

    With ``state_url`` (the ledger's database) the account's concurrency limit is shared by
    every process using that database (PostgreSQL advisory locks, or file locks for SQLite).
    Raises ConfigError naming the bad key.
    """
    from connectors.netsuite_rest import NetSuiteRestConnector, NetSuiteRestSettings

    section = target.options
    transport = section.str("transport", "soap", choices=("soap", "rest"))
    if transport == "rest":
        rest = NetSuiteRestSettings.from_section(section)
        limiter = build_limiter(f"netsuite:{rest.account}", rest.concurrency, state_url)
        return NetSuiteRestConnector(rest, limiter=limiter, owns_limiter=True)
    soap = NetSuiteSoapSettings.from_section(section)
    limiter = build_limiter(f"netsuite:{soap.account}", soap.concurrency, state_url)
    return NetSuiteSoapConnector(soap, limiter=limiter, owns_limiter=True)
