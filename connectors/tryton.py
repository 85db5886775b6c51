"""Tryton ERP connector (JSON-RPC over HTTP, httpx).

Tryton is a real ERP with its own books and rules: finsync creates parties, posts customer
invoices and credit notes, records payments and refunds as cash moves against the customer's
receivable, and posts revenue journals as account moves (payload shapes: ``mappings.tryton``).

- Session: ``common.db.login`` gives ``[user id, token]``; every call sends
  ``Authorization: Session base64(login:uid:token)`` and a context naming the document's company.
  An expired session (HTTP 401) is renewed with one new login and the call repeated.
- Encoding: Decimals travel as ``{"__class__": "Decimal", "decimal": "..."}`` and dates as
  ``{"__class__": "date", ...}``, both ways; money never becomes a float.
- Errors, classified in ``classify_rpc_error``: Tryton's user errors (validation, domain, closed
  period ...) come as HTTP 200 with ``{"error": [name, [message, description, ...]]}`` and are
  ``PermanentError`` carrying Tryton's own message; a refused login is ``AuthError``; transport
  failures, 5xx, concurrency and rate-limit answers, and server faults (a traceback instead of a
  user error) are retryable. Reads are retried within a budget; writes are not (a write whose
  answer is lost is ``OutcomeUnknownError``, and the engine looks it up before anything is sent
  again).
- Idempotency: every document carries finsync's external id where Tryton keeps a reference (the
  invoice's ``reference``, the move's ``description``, a party identifier), and it is SEARCHED
  BEFORE ANY CREATE. A document found half-done (a draft invoice, a missing deferral after a
  crash) is completed, never created twice. Posted documents are never rewritten: voids are
  reversing documents with their own reference (``<external id>:void``); a revenue journal that
  changes gets a move of the difference (description ``<external id>@<payload hash>``), so the
  journal's moves always add up to the latest payload.
- Batches: new documents of one company are created with one ``create`` and posted with one
  ``post`` (posting is most of Tryton's cost); when Tryton refuses a batch, its documents are
  retried one by one so only the bad record fails.
- The mapping is checked at start (``check_mapping``): every company, journal and account code
  of the mapping file's ``[tryton]`` section must exist in Tryton, or finsync stops with one line.
  The sync hands the mapping over as a ``TrytonMapping`` (``mappings.tryton.ConnectorTables``),
  which also translates revenue journals into Tryton moves: that is mapping code, so the
  connector imports none of it.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Protocol, TypeVar

import httpx

from connectors.base import Connector
from connectors.http import RetryPolicy, classify_status, classify_transport_error
from core.documents import Document, WriteResult
from core.errors import (
    AuthError,
    ConfigError,
    ConnectorError,
    MappingError,
    OutcomeUnknownError,
    PermanentError,
    RetryableError,
)
from finsync.config import Secret, Section, TargetConfig

log = logging.getLogger(__name__)

SYSTEM = "tryton"
T = TypeVar("T")
_ZERO = Decimal(0)
#: Tryton exceptions that are not the record's fault: the same call may succeed later.
_RETRYABLE = frozenset({"ConcurrencyException", "RateLimitException", "TimeoutException"})
_POSTED = ("posted", "paid")


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


# -- wire encoding ---------------------------------------------------------------------------


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


# -- the connector ---------------------------------------------------------------------------


def _d(text: Any) -> Decimal:
    return Decimal(str(text))


def _day(text: str) -> date:
    return date.fromisoformat(text)


def _document_date(payload: Mapping[str, Any], sign: int) -> str:
    """The date of an invoice job: its own, or for a void's reversal the day of the void."""
    return str(
        payload["invoice_date"] if sign > 0 else payload.get("void_date") or payload["invoice_date"]
    )


def _voided_in_a_later_month(payload: Mapping[str, Any]) -> bool:
    """True when a void document's void falls in a later month than the document's date."""
    void_date = payload.get("void_date")
    return bool(void_date) and str(void_date)[:7] > str(payload["invoice_date"])[:7]


@dataclass
class _Chart:
    """One company's accounts (code -> id) and currency."""

    accounts: dict[str, int]
    currency: str


class TrytonCodes(Protocol):
    """The mapping file's ``[tryton]`` section, as the start-up check reads it."""

    @property
    def companies(self) -> Mapping[str, str]:
        """Billing entity -> Tryton company id."""
        ...

    @property
    def accounts(self) -> Mapping[str, str]:
        """GL account id -> Tryton account code."""
        ...

    @property
    def taxes(self) -> Mapping[str, str]:
        """Billing tax code -> Tryton account code."""
        ...

    @property
    def payment_methods(self) -> Mapping[str, str]:
        """Billing payment method -> Tryton account code."""
        ...

    @property
    def receivable_account(self) -> str:
        """The receivable account code."""
        ...

    @property
    def refund_account(self) -> str:
        """The account code refunds are paid from."""
        ...

    @property
    def invoice_journal(self) -> str:
        """The journal code of invoices and credit notes."""
        ...

    @property
    def cash_journal(self) -> str:
        """The journal code of payments and refunds."""
        ...

    @property
    def general_journal(self) -> str:
        """The journal code of revenue moves."""
        ...


class TrytonMapping(Protocol):
    """What the connector needs of the mapping file: where it came from, its ``[tryton]``
    codes (checked at start) and the Tryton move of a revenue journal document."""

    @property
    def source(self) -> str:
        """The mapping file, for messages."""
        ...

    @property
    def tryton(self) -> TrytonCodes | None:
        """The ``[tryton]`` section, or None when the file has none."""
        ...

    def journal_move(self, document: Document) -> dict[str, Any]:
        """The Tryton move of a revenue journal. Raises MappingError."""
        ...


class TrytonConnector:
    """Writes parties, invoices, credit notes, cash moves and revenue moves to Tryton."""

    system = SYSTEM

    def __init__(self, settings: TrytonSettings, *, client: httpx.Client | None = None) -> None:
        self.settings = settings
        self.max_batch = settings.batch_size
        self.rpc = TrytonRpc(settings, client)
        self._tables: TrytonMapping | None = None
        self._charts: dict[int, _Chart] = {}
        self._journals: dict[str, int] | None = None
        self._currencies: dict[str, int] | None = None
        self._parties: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"TrytonConnector(url={self.settings.url!r}, database={self.settings.database!r})"

    # -- start-up check -------------------------------------------------------------------

    def check_mapping(self, tables: TrytonMapping) -> None:
        """Check the mapping file's [tryton] section against Tryton's companies, journals and
        charts. Raises ConfigError naming the first unknown code and what exists."""
        tryton = tables.tryton
        if tryton is None:
            raise ConfigError("tryton", f"{tables.source} has no [tryton] section")
        self._tables = tables
        preferences = self.rpc.call("model.res.user.get_preferences", True)
        if len(set(tryton.companies.values())) > 1 and preferences.get("company_filter") != "all":
            raise ConfigError(
                "tryton.companies",
                f"Tryton user {self.settings.username!r} sees one company at a time (company "
                "filter "
                f"{preferences.get('company_filter')!r}); finsync books into several: set the "
                "user's Company Filter to All in Tryton (Preferences)",
            )
        journals = self.journals()
        for key in ("invoice_journal", "cash_journal", "general_journal"):
            code = getattr(tryton, key)
            if code not in journals:
                raise ConfigError(
                    f"tryton.{key}",
                    f"journal {code!r} does not exist in Tryton; journals: "
                    f"{', '.join(sorted(journals))}",
                )
        companies = {
            r["id"]: r["rec_name"]
            for r in self.rpc.call(
                "model.company.company.search_read", [], 0, None, None, ["rec_name"]
            )
        }
        codes: dict[str, str] = {
            "tryton.receivable_account": tryton.receivable_account,
            "tryton.refund_account": tryton.refund_account,
        }
        codes.update({f"tryton.accounts.{k}": v for k, v in tryton.accounts.items()})
        codes.update({f"tryton.taxes.{k}": v for k, v in tryton.taxes.items()})
        codes.update({f"tryton.payment_methods.{k}": v for k, v in tryton.payment_methods.items()})
        for entity, company_text in tryton.companies.items():
            key = f"tryton.companies.{entity}"
            if not company_text.isdigit() or int(company_text) not in companies:
                raise ConfigError(
                    key,
                    f"company {company_text!r} does not exist in Tryton; companies: "
                    + ", ".join(f"{i} ({n})" for i, n in sorted(companies.items())),
                )
            chart = self.chart(int(company_text))
            for code_key, code in codes.items():
                if code not in chart.accounts:
                    raise ConfigError(
                        code_key,
                        f"account {code!r} does not exist in the chart of Tryton company "
                        f"{company_text} ({companies[int(company_text)]}), which billing entity "
                        f"{entity} books into: use an account code of that chart",
                    )

    def journals(self) -> dict[str, int]:
        """Journal code -> id."""
        if self._journals is None:
            rows = self.rpc.call("model.account.journal.search_read", [], 0, None, None, ["code"])
            self._journals = {r["code"]: r["id"] for r in rows if r["code"]}
        return self._journals

    def currencies(self) -> dict[str, int]:
        """Currency code -> id."""
        if self._currencies is None:
            rows = self.rpc.call("model.currency.currency.search_read", [], 0, None, None, ["code"])
            self._currencies = {r["code"]: r["id"] for r in rows}
        return self._currencies

    def chart(self, company: int) -> _Chart:
        """The accounts (code -> id) and currency of ``company``."""
        if company not in self._charts:
            rows = self.rpc.call(
                "model.account.account.search_read",
                [("company", "=", company), ("code", "!=", None)],
                0,
                None,
                None,
                ["code"],
                company=company,
            )
            (info,) = self.rpc.call(
                "model.company.company.read", [company], ["currency.code"], company=company
            )
            self._charts[company] = _Chart(
                {r["code"]: r["id"] for r in rows}, info["currency."]["code"]
            )
        return self._charts[company]

    def _account(self, company: int, code: str) -> int:
        try:
            return self.chart(company).accounts[code]
        except KeyError:
            raise PermanentError(
                SYSTEM,
                "resolve",
                f"account {code!r} does not exist in the chart of Tryton company {company}",
                code="UnknownAccount",
            ) from None

    # -- Connector protocol ---------------------------------------------------------------

    def send(self, documents: Sequence[Document]) -> list[WriteResult]:
        """Write each document (see the module doc); one result per document, in order.

        Raises AuthError, and the RetryableError of the first group when nothing could be
        written; a later group's retryable failure marks it and the rest failed.
        """
        results: dict[int, WriteResult] = {}
        for group in self._groups(documents):
            try:
                results.update(self._send_group([(i, documents[i]) for i in group]))
            except AuthError:
                raise
            except RetryableError as exc:
                if not results:
                    raise
                for i in (i for i in range(len(documents)) if i not in results):
                    results[i] = WriteResult(documents[i].external_id, ok=False, error=exc)
                break
        return [results[i] for i in range(len(documents))]

    @staticmethod
    def _groups(documents: Sequence[Document]) -> list[list[int]]:
        """Positions by (step, company): parties, then invoices, then cash moves, journals."""
        order = {"party.party": 0, "account.invoice": 1, "account.move": 2, "journalEntry": 3}
        groups: dict[tuple[int, str], list[int]] = {}
        for i, doc in enumerate(documents):
            step = order.get(doc.record_type, 4)
            company = str(doc.payload.get("company", "")) if step < 3 else doc.source_id
            groups.setdefault((step, company), []).append(i)
        return [groups[k] for k in sorted(groups)]

    def _send_group(self, items: list[tuple[int, Document]]) -> dict[int, WriteResult]:
        record_type = items[0][1].record_type
        if record_type == "party.party":
            return self._send_parties(items)
        if record_type == "account.invoice":
            return self._send_invoices(items)
        if record_type == "account.move":
            return self._send_cash_moves(items)
        if record_type == "journalEntry":
            return {i: self._isolated(doc, self._send_journal) for i, doc in items}
        error = PermanentError(SYSTEM, "send", f"no Tryton record type {record_type!r}")
        return {i: WriteResult(doc.external_id, ok=False, error=error) for i, doc in items}

    @staticmethod
    def _isolated(doc: Document, send: Callable[[Document], WriteResult]) -> WriteResult:
        try:
            return send(doc)
        except PermanentError as exc:
            if isinstance(exc, AuthError):
                raise
            return WriteResult(doc.external_id, ok=False, error=exc)
        except MappingError as exc:
            error = PermanentError(SYSTEM, "map", str(exc), code="Mapping")
            return WriteResult(doc.external_id, ok=False, error=error)

    def _batched(
        self,
        values: list[T],
        batch: Callable[[list[T]], None],
        one: Callable[[T], None],
    ) -> dict[int, PermanentError]:
        """Run ``batch`` on all ``values``; when Tryton refuses it, run ``one`` on each so only
        the bad ones fail. Returns the failures by position."""
        if not values:
            return {}
        try:
            batch(values)
            return {}
        except PermanentError as exc:
            if isinstance(exc, AuthError) or len(values) == 1:
                if isinstance(exc, AuthError):
                    raise
                return {0: exc}
        failures: dict[int, PermanentError] = {}
        for n, value in enumerate(values):
            try:
                one(value)
            except PermanentError as exc:
                if isinstance(exc, AuthError):
                    raise
                failures[n] = exc
        return failures

    # -- parties --------------------------------------------------------------------------

    def _find_parties(self, external_ids: Iterable[str]) -> dict[str, int]:
        external_ids = list(external_ids)
        wanted = sorted(set(external_ids) - set(self._parties))
        if wanted:
            rows = self.rpc.call(
                "model.party.identifier.search_read",
                [("code", "in", wanted)],
                0,
                None,
                None,
                ["code", "party"],
            )
            for row in rows:
                self._parties[row["code"]] = row["party"]
        return {e: self._parties[e] for e in external_ids if e in self._parties}

    def _party_values(self, doc: Document) -> dict[str, Any]:
        payload = doc.payload
        values: dict[str, Any] = {"name": payload["name"], "code": payload["code"]}
        if payload.get("email"):
            values["contact_mechanisms"] = [
                ("create", [{"type": "email", "value": payload["email"]}])
            ]
        address = {k: v for k, v in payload.get("address", {}).items() if k in ("street", "city")}
        if payload.get("address", {}).get("postal_code"):
            address["postal_code"] = payload["address"]["postal_code"]
        values["addresses"] = [("create", [address])]
        values["identifiers"] = [("create", [{"code": doc.external_id}])]
        return values

    def _send_parties(self, items: list[tuple[int, Document]]) -> dict[int, WriteResult]:
        found = self._find_parties(doc.external_id for _, doc in items)
        results: dict[int, WriteResult] = {}
        new = [(i, doc) for i, doc in items if doc.external_id not in found]
        for i, doc in items:
            if doc.external_id in found:
                party = found[doc.external_id]
                self.rpc.call(
                    "model.party.party.write", [party], {"name": doc.payload["name"]}, writes=True
                )
                results[i] = WriteResult(doc.external_id, ok=True, internal_id=str(party))

        def create(batch: list[tuple[int, Document]]) -> None:
            ids = self.rpc.call(
                "model.party.party.create", [self._party_values(d) for _, d in batch], writes=True
            )
            for (i, doc), party in zip(batch, ids, strict=True):
                self._parties[doc.external_id] = party
                results[i] = WriteResult(
                    doc.external_id, ok=True, internal_id=str(party), created=True
                )

        failures = self._batched(new, create, lambda item: create([item]))
        for n, failure in failures.items():
            i, doc = new[n]
            results[i] = WriteResult(doc.external_id, ok=False, error=failure)
        return results

    # -- invoices and credit notes --------------------------------------------------------

    def _find_invoices(self, company: int, references: Iterable[str]) -> dict[str, dict[str, Any]]:
        refs = sorted(set(references))
        if not refs:
            return {}
        rows = self.rpc.call(
            "model.account.invoice.search_read",
            [("company", "=", company), ("reference", "in", refs)],
            0,
            None,
            None,
            ["reference", "state", "total_amount", "number"],
            company=company,
        )
        return {r["reference"]: r for r in rows}

    def _find_moves(self, company: int, descriptions: Iterable[str]) -> dict[str, dict[str, Any]]:
        wanted = sorted(set(descriptions))
        if not wanted:
            return {}
        rows = self.rpc.call(
            "model.account.move.search_read",
            [("company", "=", company), ("description", "in", wanted)],
            0,
            None,
            None,
            ["description", "state"],
            company=company,
        )
        return {r["description"]: r for r in rows}

    def _invoice_values(
        self, company: int, payload: Mapping[str, Any], reference: str, sign: int, party: int
    ) -> dict[str, Any]:
        credited = self._credited_lines(company, payload, reference, sign)
        lines = []
        for line in payload["lines"]:
            values: dict[str, Any] = {
                "type": "line",
                "sequence": line["sequence"],
                "description": line["description"],
                # Tryton's quantity is a Float field (not money); the price stays Decimal.
                "quantity": float(_d(line["quantity"]) * sign),
                "unit_price": _d(line["unit_price"]),
                "account": self._account(company, line["account"]),
            }
            origin = credited.get(line["account"]) or next(iter(credited.values()), None)
            if origin is not None:
                values["origin"] = f"account.invoice.line,{origin}"
            lines.append(values)
        taxes = [
            {
                "description": tax["description"],
                "manual": True,
                "base": _d(tax["base"]) * sign,
                "amount": _d(tax["amount"]) * sign,
                "account": self._account(company, tax["account"]),
            }
            for tax in payload["taxes"]
        ]
        description = payload["description"] if sign > 0 else f"VOID of {payload['description']}"
        return {
            "type": "out",
            "company": company,
            "party": party,
            "invoice_address": self._address(party, company),
            "currency": self.currencies()[payload["currency"]],
            "journal": self.journals()[payload["journal"]],
            "account": self._account(company, payload["account"]),
            # A void is a reversing document dated when billing voided the original.
            "invoice_date": _day(_document_date(payload, sign)),
            "reference": reference,
            "description": description[:200],
            "lines": [("create", lines)],
            "taxes": [("create", taxes)] if taxes else [],
        }

    def _credited_lines(
        self, company: int, payload: Mapping[str, Any], reference: str, sign: int
    ) -> dict[str, int]:
        """Account code -> line id of the invoice this document credits (if it credits one)."""
        credits = payload.get("credits") if sign > 0 else reference.removesuffix(":void")
        if not credits:
            return {}
        rows = self.rpc.call(
            "model.account.invoice.line.search_read",
            [("invoice.reference", "=", credits), ("invoice.company", "=", company)],
            0,
            None,
            [("sequence", "ASC"), ("id", "ASC")],
            ["account.code"],
            company=company,
        )
        out: dict[str, int] = {}
        for row in rows:
            out.setdefault(row["account."]["code"], row["id"])
        return out

    def _address(self, party: int, company: int) -> int:
        ids = self.rpc.call(
            "model.party.address.search", [("party", "=", party)], 0, 1, None, company=company
        )
        if not ids:
            raise PermanentError(SYSTEM, "create", f"party {party} has no address in Tryton")
        return int(ids[0])

    def _send_invoices(self, items: list[tuple[int, Document]]) -> dict[int, WriteResult]:
        company = int(items[0][1].payload["company"])
        parties = self._find_parties(d.payload["party"] for _, d in items)
        results: dict[int, WriteResult] = {}
        # Each document becomes one job: (position, doc, reference, sign); a void of a posted
        # document is a reversing document with its own reference.
        originals = self._find_invoices(company, (d.external_id for _, d in items))
        reversals = self._find_invoices(
            company, (f"{d.external_id}:void" for _, d in items if d.operation == "void")
        )
        jobs: list[tuple[int, Document, str, int]] = []
        for i, doc in items:
            found = originals.get(doc.external_id)
            if doc.operation == "void" and _voided_in_a_later_month(doc.payload):
                # The month it was issued in keeps it (docs/accounting.md, Voids): book it
                # there, if it is not yet, and reverse it in the void's month.
                if found is not None and found["state"] == "cancelled":
                    results[i] = WriteResult(
                        doc.external_id, ok=True, created=False, details={"void": "cancelled"}
                    )
                    continue
                if found is None and doc.payload["party"] not in parties:
                    results[i] = WriteResult(
                        doc.external_id, ok=False, error=self._missing_party(doc)
                    )
                    continue
                if found is None or found["state"] not in _POSTED:
                    jobs.append((i, doc, doc.external_id, 1))
                jobs.append((i, doc, f"{doc.external_id}:void", -1))
                continue
            if doc.operation == "void":
                if found is None or found["state"] == "cancelled":
                    results[i] = WriteResult(
                        doc.external_id, ok=True, created=False, details={"void": "not recorded"}
                    )
                    continue
                if found["state"] not in _POSTED:
                    self.rpc.call(
                        "model.account.invoice.cancel", [found["id"]], company=company, writes=True
                    )
                    results[i] = WriteResult(
                        doc.external_id, ok=True, internal_id=str(found["id"]), created=False
                    )
                    continue
                jobs.append((i, doc, f"{doc.external_id}:void", -1))
                continue
            if (
                found is not None
                and found["state"] in _POSTED
                and _d(found["total_amount"]) != _d(doc.payload["total"])
            ):
                results[i] = WriteResult(
                    doc.external_id,
                    ok=False,
                    error=PermanentError(
                        SYSTEM,
                        "upsert",
                        f"{doc.label} is posted in Tryton as number {found['number']} with "
                        f"total {found['total_amount']}, billing now says "
                        f"{doc.payload['total']}: Tryton never changes a posted invoice; "
                        "correct it in billing with a credit note",
                        code="PostedInvoice",
                    ),
                )
                continue
            if found is not None and found["state"] == "cancelled":
                results[i] = WriteResult(
                    doc.external_id,
                    ok=False,
                    error=PermanentError(
                        SYSTEM,
                        "upsert",
                        f"{doc.label} is cancelled in Tryton; it cannot be posted again",
                        code="Cancelled",
                    ),
                )
                continue
            if doc.payload["party"] not in parties:
                results[i] = WriteResult(doc.external_id, ok=False, error=self._missing_party(doc))
                continue
            jobs.append((i, doc, doc.external_id, 1))
        existing = {**originals, **reversals}
        # Dates must not go backwards within a sequence: post in date order.
        jobs.sort(key=lambda job: (_document_date(job[1].payload, job[3]), job[0]))
        to_create: list[tuple[int, dict[str, Any]]] = []
        invoice_ids: dict[int, int] = {}
        for n, (i, doc, reference, sign) in enumerate(jobs):
            found = existing.get(reference)
            if found is not None:
                invoice_ids[n] = found["id"]
                continue
            if i in results:  # a void's original failed: its reversal waits
                continue
            try:
                values = self._invoice_values(
                    company, doc.payload, reference, sign, parties[doc.payload["party"]]
                )
            except PermanentError as exc:
                results[i] = WriteResult(doc.external_id, ok=False, error=exc)
                continue
            to_create.append((n, values))

        def create(batch: list[tuple[int, dict[str, Any]]]) -> None:
            ids = self.rpc.call(
                "model.account.invoice.create",
                [v for _, v in batch],
                company=company,
                writes=True,
            )
            for (n, _), invoice in zip(batch, ids, strict=True):
                invoice_ids[n] = invoice

        # A document's first failure is its error (a void's reversal never posts without
        # its original).
        for m, failure in self._batched(to_create, create, lambda item: create([item])).items():
            i, doc, _, _ = jobs[to_create[m][0]]
            results.setdefault(i, WriteResult(doc.external_id, ok=False, error=failure))
        states = {r["id"]: r["state"] for r in existing.values()}
        to_post = [
            (n, invoice)
            for n, invoice in sorted(invoice_ids.items())
            if states.get(invoice, "draft") not in _POSTED and jobs[n][0] not in results
        ]

        def post(batch: list[tuple[int, int]]) -> None:
            self.rpc.call(
                "model.account.invoice.post",
                [invoice for _, invoice in batch],
                company=company,
                writes=True,
            )

        refused: set[int] = set()

        def post_one(item: tuple[int, int]) -> None:
            i, doc, _, _ = jobs[item[0]]
            if i in refused:
                raise PermanentError(SYSTEM, "post", f"{doc.label}: its original was refused")
            try:
                post([item])
            except PermanentError:
                refused.add(i)
                raise

        for m, failure in self._batched(to_post, post, post_one).items():
            i, doc, _, _ = jobs[to_post[m][0]]
            results.setdefault(i, WriteResult(doc.external_id, ok=False, error=failure))
        # Deferrals of ratable lines, once their invoice is posted.
        done = [
            (n, job) for n, job in enumerate(jobs) if job[0] not in results and n in invoice_ids
        ]
        moves = [
            (n, f"{reference}:deferral", doc, sign)
            for n, (_, doc, reference, sign) in done
            if doc.payload.get("deferrals")
        ]
        for m, failure in self._ensure_moves(
            company,
            [
                (description, self._deferral_move(company, doc, description, sign))
                for _, description, doc, sign in moves
            ],
        ).items():
            i, doc, _, _ = jobs[moves[m][0]]
            results.setdefault(i, WriteResult(doc.external_id, ok=False, error=failure))
        for n, (i, doc, reference, _) in enumerate(jobs):
            if i not in results:
                results[i] = WriteResult(
                    doc.external_id,
                    ok=True,
                    internal_id=str(invoice_ids[n]),
                    created=reference not in existing,
                )
        return results

    @staticmethod
    def _missing_party(doc: Document) -> PermanentError:
        return PermanentError(
            SYSTEM,
            "upsert",
            f"{doc.label}: party {doc.payload['party']} is not in Tryton; sync the customer first",
            code="MissingParty",
        )

    def _deferral_move(
        self, company: int, doc: Document, description: str, sign: int
    ) -> dict[str, Any]:
        lines = []
        for pair in doc.payload["deferrals"]:
            amount = _d(pair["amount"]) * sign
            debit, credit = (
                (pair["revenue_account"], pair["deferred_account"])
                if amount > 0
                else (pair["deferred_account"], pair["revenue_account"])
            )
            text = f"deferral of {doc.payload['number']}"
            lines.append(self._line(company, debit, abs(amount), _ZERO, text))
            lines.append(self._line(company, credit, _ZERO, abs(amount), text))
        return self._move_values(
            company,
            doc.payload["deferral_journal"],
            _document_date(doc.payload, sign),
            description,
            lines,
        )

    def _line(
        self,
        company: int,
        account: str,
        debit: Decimal,
        credit: Decimal,
        description: str,
        party: int | None = None,
    ) -> dict[str, Any]:
        values: dict[str, Any] = {
            "account": self._account(company, account),
            "debit": debit,
            "credit": credit,
            "description": description[:200],
        }
        if party is not None:
            values["party"] = party
        return values

    def _move_values(
        self,
        company: int,
        journal: str,
        day: str,
        description: str,
        lines: list[dict[str, Any]],
    ) -> dict[str, Any]:
        when = _day(day)
        period = self._period(company, when)
        return {
            "company": company,
            "journal": self.journals()[journal],
            "date": when,
            "period": period,
            "description": description,
            "lines": [("create", lines)],
        }

    def _period(self, company: int, day: date) -> int:
        ids = self.rpc.call(
            "model.account.period.search",
            [
                ("company", "=", company),
                ("start_date", "<=", day),
                ("end_date", ">=", day),
                ("type", "=", "standard"),
            ],
            0,
            1,
            None,
            company=company,
        )
        if not ids:
            raise PermanentError(
                SYSTEM,
                "create",
                f"no accounting period of Tryton company {company} holds {day}: create the "
                "fiscal year and its periods in Tryton",
                code="NoPeriod",
            )
        return int(ids[0])

    def _ensure_moves(
        self, company: int, moves: list[tuple[str, dict[str, Any] | None]]
    ) -> dict[int, PermanentError]:
        """Create and post the moves whose description is not in Tryton yet (drafts found are
        posted). Returns failures by position."""
        found = self._find_moves(company, (d for d, _ in moves))
        ids: dict[int, int] = {}
        to_create: list[tuple[int, dict[str, Any]]] = []
        for n, (description, values) in enumerate(moves):
            if description in found:
                ids[n] = found[description]["id"]
            elif values is not None:
                to_create.append((n, values))

        def create(batch: list[tuple[int, dict[str, Any]]]) -> None:
            created = self.rpc.call(
                "model.account.move.create", [v for _, v in batch], company=company, writes=True
            )
            for (n, _), move in zip(batch, created, strict=True):
                ids[n] = move

        failures = {
            to_create[m][0]: failure
            for m, failure in self._batched(to_create, create, lambda item: create([item])).items()
        }
        posted = {r["id"] for r in found.values() if r["state"] == "posted"}
        to_post = [(n, move) for n, move in sorted(ids.items()) if move not in posted]

        def post(batch: list[tuple[int, int]]) -> None:
            self.rpc.call(
                "model.account.move.post", [m for _, m in batch], company=company, writes=True
            )

        for m, failure in self._batched(to_post, post, lambda item: post([item])).items():
            failures[to_post[m][0]] = failure
        return failures

    # -- payments and refunds -------------------------------------------------------------

    def _cash_move(self, company: int, doc: Document, party: int) -> dict[str, Any]:
        payload = doc.payload
        amount = _d(payload["amount"])
        text = payload["description"]
        lines = [
            self._line(
                company,
                payload["cash_account"],
                max(amount, _ZERO),
                max(-amount, _ZERO),
                text,
            )
        ]
        applied = _ZERO
        for application in payload["applications"]:
            part = _d(application["amount"])
            applied += part
            lines.append(
                self._line(
                    company,
                    payload["receivable_account"],
                    _ZERO,
                    part,
                    f"{text} for {application['invoice']}",
                    party,
                )
            )
        rest = amount - applied
        if rest != _ZERO or not payload["applications"]:
            lines.append(
                self._line(
                    company,
                    payload["receivable_account"],
                    max(-rest, _ZERO),
                    max(rest, _ZERO),
                    f"{text} (unapplied)" if payload["applications"] else text,
                    party,
                )
            )
        return self._move_values(
            company, payload["journal"], payload["date"], doc.external_id, lines
        )

    def _reversal(self, company: int, move: int, description: str, day: str) -> dict[str, Any]:
        (original,) = self.rpc.call(
            "model.account.move.read", [move], ["journal", "lines"], company=company
        )
        rows = self.rpc.call(
            "model.account.move.line.read",
            original["lines"],
            ["account", "debit", "credit", "party", "description"],
            company=company,
        )
        lines = []
        for row in rows:
            values = {
                "account": row["account"],
                "debit": row["credit"],
                "credit": row["debit"],
                "description": f"VOID {row['description'] or ''}".strip()[:200],
            }
            if row["party"] is not None:
                values["party"] = row["party"]
            lines.append(values)
        when = _day(day)
        return {
            "company": company,
            "journal": original["journal"],
            "date": when,
            "period": self._period(company, when),
            "description": description,
            "lines": [("create", lines)],
        }

    def _send_cash_moves(self, items: list[tuple[int, Document]]) -> dict[int, WriteResult]:
        company = int(items[0][1].payload["company"])
        parties = self._find_parties(d.payload["party"] for _, d in items)
        originals = self._find_moves(company, (d.external_id for _, d in items))
        results: dict[int, WriteResult] = {}
        moves: list[tuple[int, Document, str]] = []
        values: list[tuple[str, dict[str, Any] | None]] = []
        for i, doc in items:
            found = originals.get(doc.external_id)
            try:
                if doc.operation == "void":
                    if found is None:
                        results[i] = WriteResult(
                            doc.external_id, ok=True, details={"void": "not recorded"}
                        )
                        continue
                    description = f"{doc.external_id}:void"
                    if found["state"] != "posted":
                        self.rpc.call(
                            "model.account.move.delete", [found["id"]], company=company, writes=True
                        )
                        results[i] = WriteResult(doc.external_id, ok=True, created=False)
                        continue
                    existing_void = self._find_moves(company, [description])
                    move = (
                        None
                        if existing_void
                        else self._reversal(company, found["id"], description, doc.payload["date"])
                    )
                    moves.append((i, doc, description))
                    values.append((description, move))
                    continue
                if found is not None:
                    self._check_unchanged(company, doc, found["id"])
                    moves.append((i, doc, doc.external_id))
                    values.append((doc.external_id, None))
                    continue
                if doc.payload["party"] not in parties:
                    raise PermanentError(
                        SYSTEM,
                        "upsert",
                        f"{doc.label}: party {doc.payload['party']} is not in Tryton; sync the "
                        "customer first",
                        code="MissingParty",
                    )
                move_values = self._cash_move(company, doc, parties[doc.payload["party"]])
            except PermanentError as exc:
                results[i] = WriteResult(doc.external_id, ok=False, error=exc)
                continue
            moves.append((i, doc, doc.external_id))
            values.append((doc.external_id, move_values))
        failures = self._ensure_moves(company, values)
        for m, failure in failures.items():
            i, doc, _ = moves[m]
            results[i] = WriteResult(doc.external_id, ok=False, error=failure)
        found_after = self._find_moves(company, (d for _, _, d in moves))
        for i, doc, description in moves:
            if i in results:
                continue
            move = found_after.get(description)
            if move is None:
                error = PermanentError(SYSTEM, "upsert", f"{doc.label}: move not found after post")
                results[i] = WriteResult(doc.external_id, ok=False, error=error)
                continue
            if doc.operation == "upsert" and doc.payload["applications"]:
                self._apply_to_invoices(company, doc, move["id"])
            results[i] = WriteResult(
                doc.external_id,
                ok=True,
                internal_id=str(move["id"]),
                created=description not in originals,
            )
        return results

    def _check_unchanged(self, company: int, doc: Document, move: int) -> None:
        """Raise PermanentError when the cash a posted move books differs from the payload's:
        Tryton never changes a posted move."""
        rows = self.rpc.call(
            "model.account.move.line.search_read",
            [("move", "=", move), ("account.code", "=", doc.payload["cash_account"])],
            0,
            None,
            None,
            ["debit", "credit"],
            company=company,
        )
        booked = sum((_d(r["debit"]) - _d(r["credit"]) for r in rows), _ZERO)
        if booked != _d(doc.payload["amount"]):
            raise PermanentError(
                SYSTEM,
                "upsert",
                f"{doc.label} is posted in Tryton with {booked}, billing now says "
                f"{doc.payload['amount']}: Tryton never changes a posted move; void it in "
                "billing and record the corrected one",
                code="PostedMove",
            )

    def _apply_to_invoices(self, company: int, doc: Document, move: int) -> None:
        """Add the payment's receivable lines to the invoices they pay (Tryton's payment lines)."""
        rows = self.rpc.call(
            "model.account.move.line.search_read",
            [("move", "=", move), ("party", "!=", None)],
            0,
            None,
            None,
            ["description", "credit", "invoice_payment"],
            company=company,
        )
        invoices = self._find_invoices(company, (a["invoice"] for a in doc.payload["applications"]))
        for application in doc.payload["applications"]:
            invoice = invoices.get(application["invoice"])
            suffix = f" for {application['invoice']}"
            line = next(
                (r for r in rows if (r["description"] or "").endswith(suffix)),
                None,
            )
            if invoice is None or line is None or line["invoice_payment"] is not None:
                continue
            try:
                self.rpc.call(
                    "model.account.invoice.write",
                    [invoice["id"]],
                    {"payment_lines": [("add", [line["id"]])]},
                    company=company,
                    writes=True,
                )
            except PermanentError as exc:
                if isinstance(exc, AuthError):
                    raise
                log.info("%s: not linked to %s in Tryton: %s", doc.label, invoice["number"], exc)

    # -- revenue journals -----------------------------------------------------------------

    def _journal_lines(self, company: int, prefix: str) -> tuple[dict[str, Decimal], list[int]]:
        """Net (debit - credit) per account code of the moves of one journal, and their ids."""
        moves = self.rpc.call(
            "model.account.move.search_read",
            [("company", "=", company), ("description", "like", f"{prefix}@%")],
            0,
            None,
            None,
            ["state", "description"],
            company=company,
        )
        ids = [m["id"] for m in moves]
        net: dict[str, Decimal] = {}
        if ids:
            rows = self.rpc.call(
                "model.account.move.line.search_read",
                [("move", "in", ids)],
                0,
                None,
                None,
                ["account.code", "debit", "credit"],
                company=company,
            )
            for row in rows:
                code = row["account."]["code"]
                net[code] = net.get(code, _ZERO) + _d(row["debit"]) - _d(row["credit"])
        return net, [m["id"] for m in moves if m["state"] != "posted"]

    def _send_journal(self, doc: Document) -> WriteResult:
        if self._tables is None:
            raise PermanentError(SYSTEM, "upsert", "the mapping was not checked at start")
        move = self._tables.journal_move(doc)
        company = int(move["company"])
        _, drafts = self._journal_lines(company, doc.external_id)
        if drafts:  # a crash between create and post: post what is there first
            self.rpc.call("model.account.move.post", drafts, company=company, writes=True)
        current, _ = self._journal_lines(company, doc.external_id)
        desired: dict[str, Decimal] = {}
        for line in move["lines"]:
            desired[line["account"]] = (
                desired.get(line["account"], _ZERO) + _d(line["debit"]) - _d(line["credit"])
            )
        delta = {
            code: desired.get(code, _ZERO) - current.get(code, _ZERO)
            for code in sorted(set(desired) | set(current))
        }
        description = f"{doc.external_id}@{doc.payload_hash[:12]}"
        if all(v == _ZERO for v in delta.values()):
            return WriteResult(doc.external_id, ok=True, created=False)
        period, day, moved = self._journal_period(company, _day(move["date"]))
        lines = [
            self._line(company, code, max(v, _ZERO), max(-v, _ZERO), move["description"] + moved)
            for code, v in delta.items()
            if v != _ZERO
        ]
        values = self._move_values(company, move["journal"], day.isoformat(), description, lines)
        failures = self._ensure_moves(company, [(description, {**values, "period": period})])
        if failures:
            raise failures[0]
        found = self._find_moves(company, [description])
        internal = str(found[description]["id"]) if description in found else None
        return WriteResult(doc.external_id, ok=True, internal_id=internal, created=True)

    def _journal_period(self, company: int, day: date) -> tuple[int, date, str]:
        """(period id, move date, note) of a revenue journal dated ``day`` in ``company``.

        An open period holding ``day`` takes it as it is. A closed one follows the target's
        ``closed_period_policy``: ``next_open`` moves it to the first day of the company's next
        open period (the note says so); ``fail`` raises PermanentError with the fix.
        """
        periods = self.rpc.call(
            "model.account.period.search_read",
            [("company", "=", company), ("type", "=", "standard")],
            0,
            None,
            [("start_date", "ASC")],
            ["name", "start_date", "end_date", "state"],
            company=company,
        )
        holding = next((p for p in periods if p["start_date"] <= day <= p["end_date"]), None)
        if holding is None:
            return self._period(company, day), day, ""  # raises NoPeriod
        if holding["state"] == "open":
            return int(holding["id"]), day, ""
        name = holding["name"]
        if self.settings.closed_period_policy == "fail":
            raise PermanentError(
                SYSTEM,
                "create",
                f'period "{name}" of Tryton company {company} is {holding["state"]} and the '
                'closed-period policy is "fail": reopen the period in Tryton, or set '
                'closed_period_policy = "next_open" in the target\'s section of the config to '
                "post into the next open period",
                code="ClosedPeriod",
            )
        following = next(
            (p for p in periods if p["start_date"] > holding["end_date"] and p["state"] == "open"),
            None,
        )
        if following is None:
            raise PermanentError(
                SYSTEM,
                "create",
                f'period "{name}" of Tryton company {company} is {holding["state"]} and no '
                "open period follows it: create or reopen the next period in Tryton",
                code="ClosedPeriod",
            )
        note = f" (period {name} is closed; posted in {following['name']})"
        return int(following["id"]), following["start_date"], note

    # -- look-ups -------------------------------------------------------------------------

    def lookup(self, documents: Sequence[Document]) -> dict[str, str | None]:
        """External id -> Tryton id when the document is there complete (posted, with its
        deferral), else None: a half-done document is completed by sending it again."""
        found: dict[str, str | None] = {}
        for doc in documents:
            found[doc.external_id] = self._lookup_one(doc)
        return found

    def _lookup_one(self, doc: Document) -> str | None:
        if doc.record_type == "party.party":
            party = self._find_parties([doc.external_id]).get(doc.external_id)
            return None if party is None else str(party)
        if doc.record_type == "journalEntry":
            if self._tables is None:
                return None
            company = int(self._tables.journal_move(doc)["company"])
            description = f"{doc.external_id}@{doc.payload_hash[:12]}"
            move = self._find_moves(company, [description]).get(description)
            return str(move["id"]) if move and move["state"] == "posted" else None
        company = int(doc.payload["company"])
        reference = f"{doc.external_id}:void" if doc.operation == "void" else doc.external_id
        if doc.record_type == "account.invoice":
            invoice = self._find_invoices(company, [reference]).get(reference)
            if invoice is None or invoice["state"] not in _POSTED:
                return None
            if doc.payload.get("deferrals"):
                deferral = f"{reference}:deferral"
                move = self._find_moves(company, [deferral]).get(deferral)
                if move is None or move["state"] != "posted":
                    return None
            return str(invoice["id"])
        move = self._find_moves(company, [reference]).get(reference)
        return str(move["id"]) if move and move["state"] == "posted" else None

    def close(self) -> None:
        """Close the HTTP session."""
        self.rpc.close()


def build_tryton(target: TargetConfig) -> Connector:
    """Factory for the connector registry: a TrytonConnector from ``[targets.<name>]``."""
    return TrytonConnector(TrytonSettings.from_section(target.options))
