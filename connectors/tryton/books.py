"""What every kind of Tryton document stands on: the start-up check of the mapping's codes, the
companies' charts, journals and currencies, batching with one-by-one retry, the look-ups by
reference, and the account moves (lines, periods, moves created and posted once)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

import httpx

from connectors.tryton.rpc import SYSTEM, T, TrytonRpc, TrytonSettings
from core.documents import Document, WriteResult
from core.errors import AuthError, ConfigError, MappingError, PermanentError

ZERO = Decimal(0)

POSTED = ("posted", "paid")


def decimal_of(text: Any) -> Decimal:
    """A Decimal from what Tryton sent (a Decimal, or its text)."""
    return Decimal(str(text))


def day_of(text: str) -> date:
    """A date from ``YYYY-MM-DD``."""
    return date.fromisoformat(text)


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


class TrytonBooks:
    """The Tryton session, the mapping's codes and the companies' books that every kind uses."""

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
        when = day_of(day)
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
