"""The NetSuite SOAP connector: documents in, one ``WriteResult`` each out (upsertList), look-ups
by external id (getList) and the account's accounting periods (search)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx
from lxml import etree

from connectors.base import Connector
from connectors.limits import Limiter, ThreadLimiter, build_limiter
from connectors.netsuite_common import (
    applied_documents,
    documents_written,
    missing_applied,
    send_in_waves,
)
from connectors.netsuite_soap.faults import NOT_FOUND_CODES, status_error
from connectors.netsuite_soap.messages import RECORD_TYPES, RecordWriter, soap_fields
from connectors.netsuite_soap.replies import calendar_date, child, children, flag, text
from connectors.netsuite_soap.settings import (
    MAX_GET,
    MAX_SEARCH_PAGE,
    NS_ACCOUNTING,
    NS_COMMON,
    NS_CORE,
    NS_MESSAGES,
    SYSTEM,
    NetSuiteSoapSettings,
)
from connectors.netsuite_soap.transport import SoapTransport, default_nonce
from core.documents import Document, WriteResult
from core.errors import PermanentError
from core.periods import AccountingPeriod, period_order
from finsync.config import TargetConfig


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
        nonce: Callable[[], str] = default_nonce,
        limiter: Limiter | None = None,
        sleep: Callable[[float], None] | None = None,
        owns_limiter: bool = False,
    ) -> None:
        self.settings = settings
        self.max_batch = settings.batch_size
        self._http = client or httpx.Client(timeout=settings.timeout_seconds)
        self._owns_http = client is None
        # A limiter made here, or handed over with owns_limiter, is closed with the connector.
        self._owns_limiter = limiter is None or owns_limiter
        self._limiter = limiter or ThreadLimiter(
            f"netsuite:{settings.account}", settings.concurrency
        )
        self.transport = SoapTransport(
            settings, self._http, self._limiter, clock=clock, nonce=nonce, sleep=sleep
        )
        self.records = RecordWriter(self.transport.zeep.get_type)

    def __repr__(self) -> str:
        return f"NetSuiteSoapConnector(account={self.settings.account!r})"

    @property
    def retried(self) -> int:
        """Requests retried inside calls so far."""
        return self.transport.retries.value

    def _call(
        self, operation: str, body: Mapping[str, Any], headers: Mapping[str, Any] | None = None
    ) -> etree._Element:
        """A read (getList, search) built by zeep from keyword values."""
        return self.transport.call(
            operation, lambda: self.transport.envelope(operation, headers=headers, **body)
        )

    def to_record(
        self, document: Document, doc_ids: Mapping[str, str] | None = None
    ) -> etree._Element:
        """The upsertList ``record`` element of ``document`` (apply lines need ``doc_ids``:
        external -> internal id).

        Raises PermanentError naming the document when it cannot be built (a record type the
        SOAP connector does not write, a value the schema has no place for, text XML cannot
        carry: code ``SERIALIZATION``).
        """
        record_type = RECORD_TYPES.get(document.record_type)
        try:
            if record_type is None:
                raise TypeError(f"record type {document.record_type!r} is not supported")
            values = soap_fields(document, doc_ids)
        except (TypeError, KeyError, ValueError) as exc:
            raise _unbuildable(document, exc) from None
        try:
            return self.records.record(record_type, values)
        except TypeError as exc:
            raise _unbuildable(document, exc) from None
        except ValueError as exc:  # lxml refuses the text (NUL bytes, control characters)
            message = (
                f"{document.label}: cannot be written as a SOAP message ({exc}); "
                "correct the record's text in billing"
            )
            raise PermanentError(SYSTEM, "upsertList", message, code="SERIALIZATION") from None

    # -- Connector protocol -------------------------------------------------------------------

    def send(self, documents: Sequence[Document]) -> list[WriteResult]:
        """Upsert ``documents`` (at most ``max_batch``); one WriteResult per document, in order.

        A document goes out only after the documents of the same batch it depends on (one
        upsertList per wave, see ``dependency_waves``); one whose dependency failed is not sent.
        A record that cannot be written (text XML cannot carry, a field the schema lacks) fails
        alone. Raises RetryableError / PermanentError (AuthError) when a whole call fails.
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
        records: list[etree._Element] = []
        positions: list[int] = []
        for i in wave:
            document = documents[i]
            if document.operation == "delete":
                error = PermanentError(
                    SYSTEM, "upsertList", "delete is not supported by this connector"
                )
                results[i] = WriteResult(document.external_id, False, error=error)
                continue
            missing = missing_applied("upsertList", document, doc_ids)
            if missing is not None:
                results[i] = missing
                continue
            try:
                records.append(self.to_record(document, doc_ids))
            except PermanentError as exc:
                results[i] = WriteResult(document.external_id, False, error=exc)
                continue
            positions.append(i)
        if records:
            self._upsert_list(documents, records, positions, results)

    def _upsert_list(
        self,
        documents: Sequence[Document],
        records: list[etree._Element],
        positions: list[int],
        results: dict[int, WriteResult],
    ) -> None:
        root = self.transport.call(
            "upsertList", lambda: self.transport.envelope_of("upsertList", records), write=True
        )
        responses = root.findall(
            f".//{{{NS_MESSAGES}}}writeResponseList/{{{NS_MESSAGES}}}writeResponse"
        )
        list_el = root.find(f".//{{{NS_MESSAGES}}}writeResponseList")
        list_error = status_error("upsertList", child(list_el, "status"))
        if len(responses) != len(records):
            if list_error is not None and not responses:
                raise list_error
            raise PermanentError(
                SYSTEM, "upsertList", f"{len(responses)} results for {len(records)} records"
            )
        for i, response in zip(positions, responses, strict=True):
            results[i] = self._write_result(documents[i], response)

    @staticmethod
    def _write_result(document: Document, response: etree._Element) -> WriteResult:
        error = status_error("upsertList", child(response, "status"))
        ref = child(response, "baseRef")
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
        record_ref = self.transport.zeep.get_type(f"{{{NS_CORE}}}RecordRef")
        for start in range(0, len(refs), MAX_GET):
            chunk = refs[start : start + MAX_GET]
            base_refs = [record_ref(type=t, externalId=e) for t, e in chunk]
            root = self._call("getList", {"baseRef": base_refs})
            responses = root.findall(
                f".//{{{NS_MESSAGES}}}readResponseList/{{{NS_MESSAGES}}}readResponse"
            )
            if len(responses) != len(chunk):
                list_el = root.find(f".//{{{NS_MESSAGES}}}readResponseList")
                raise status_error("getList", child(list_el, "status")) or PermanentError(
                    SYSTEM, "getList", f"{len(responses)} results for {len(chunk)} references"
                )
            for key, response in zip(chunk, responses, strict=True):
                error = status_error("getList", child(response, "status"))
                if error is not None:
                    if error.code in NOT_FOUND_CODES:
                        found[key] = None
                        continue
                    raise error
                record = child(response, "record")
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
        zeep = self.transport.zeep
        search = zeep.get_type(f"{{{NS_ACCOUNTING}}}AccountingPeriodSearch")
        basic = zeep.get_type(f"{{{NS_COMMON}}}AccountingPeriodSearchBasic")
        preferences = zeep.get_type(f"{{{NS_MESSAGES}}}SearchPreferences")
        root = self._call(
            "search",
            {"searchRecord": search(basic=basic())},
            {"searchPreferences": preferences(bodyFieldsOnly=True, pageSize=MAX_SEARCH_PAGE)},
        )
        result = root.find(f".//{{{NS_CORE}}}searchResult")
        if result is None:
            raise PermanentError(SYSTEM, "search", "reply has no searchResult")
        error = status_error("search", child(result, "status"))
        if error is not None:
            raise error
        pages = child(result, "totalPages")
        if pages is not None and int(pages.text or "1") > 1:
            raise PermanentError(
                SYSTEM, "search", f"more than {MAX_SEARCH_PAGE} accounting periods in one search"
            )
        periods = []
        for record in children(child(result, "recordList"), "record"):
            if flag(record, "isQuarter") or flag(record, "isYear"):
                continue
            periods.append(
                AccountingPeriod(
                    internal_id=record.get("internalId") or "",
                    name=text(record, "periodName"),
                    start=calendar_date(text(record, "startDate")),
                    end=calendar_date(text(record, "endDate")),
                    closed=any(flag(record, f) for f in ("closed", "arLocked", "allLocked")),
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


def _unbuildable(document: Document, problem: Exception) -> PermanentError:
    message = f"{document.label}: cannot build the record: {problem}"
    return PermanentError(SYSTEM, "upsertList", message)


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
