"""A real Tryton server per test: the template database is built once, then copied.

The template (modules activated, five companies with the Universal Chart of Accounts, fiscal
years 2025-2027 with monthly periods and invoice sequences) takes about 20 seconds to build. It
is cached in the system's temporary folder under a key of the builder's source and trytond's
version, built under a file lock so parallel test workers share one build. Each test then gets
its own copy and its own ``trytond`` on a free loopback port (about a second).

Never skipped: when Tryton cannot be built or started the test fails with one clear line.
"""

from __future__ import annotations

import base64
import calendar
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox import tryton as sandbox_tryton
from sandbox.tryton import ADMIN_PASSWORD, TrytonServer, TrytonStartError
from tests.engine_support import REPO

_ZERO = Decimal(0)
#: Every kind a Tryton target syncs.


KINDS = '["customer", "invoice", "credit_note", "payment", "refund", "revenue"]'


def template_database() -> Path:
    """The initialised Tryton database file, built on first use (shared by test workers)."""
    return sandbox_tryton.ensure_template(Path(tempfile.gettempdir()))


@pytest.fixture(scope="session")
def tryton_template() -> Path:
    """The template database file (built once per session, or reused from the cache)."""
    try:
        return template_database()
    except TrytonStartError as exc:
        pytest.fail(f"Tryton template database could not be built: {exc}", pytrace=False)


@pytest.fixture
def tryton_server(tryton_template: Path, tmp_path: Path) -> Iterator[TrytonServer]:
    """A fresh Tryton (copy of the template) served on 127.0.0.1 for this test."""
    server = TrytonServer(tryton_template, tmp_path / "tryton")
    try:
        server.start()
    except TrytonStartError as exc:
        pytest.fail(f"Tryton did not start: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


class TrytonBooks:
    """Reads Tryton's own figures over JSON-RPC, independently of finsync's connector."""

    def __init__(self, server: TrytonServer) -> None:
        uid, token = server.login()[:2]
        session = base64.b64encode(f"{sandbox_tryton.ADMIN_LOGIN}:{uid}:{token}".encode())
        self._client = httpx.Client(
            headers={
                "Authorization": f"Session {session.decode()}",
                "Content-Type": "application/json",
            },
            timeout=120,
        )
        self._url = server.rpc_url

    def call(self, method: str, *params: Any, company: int | None = None) -> Any:
        """One JSON-RPC call; fails the test with Tryton's error."""
        context = {"company": company, "companies": [company]} if company else {}
        body = json.dumps(
            {"id": 1, "method": method, "params": [*params, context]}, default=_encode
        )
        answer = json.loads(self._client.post(self._url, content=body).content, object_hook=_decode)
        if answer.get("error"):
            raise AssertionError(f"Tryton {method}: {answer['error']}")
        return answer["result"]

    def search_read(self, model: str, domain: list[Any], fields: list[str], **kw: Any) -> Any:
        """``model.<model>.search_read`` of every matching record."""
        return self.call(f"model.{model}.search_read", domain, 0, None, None, fields, **kw)

    def receivable_by_party(self, company: int) -> dict[str, Decimal]:
        """Tryton's ``receivable`` of each party (by party code) in ``company``."""
        rows = self.search_read("party.party", [], ["code", "receivable"], company=company)
        return {r["code"]: r["receivable"] for r in rows if r["receivable"]}

    def account_totals(
        self, company: int, first: date, last: date
    ) -> dict[str, tuple[Decimal, Decimal]]:
        """Tryton's (debit, credit) of each account code for moves dated first..last."""
        ids = self.call(
            "model.account.account.search",
            [("company", "=", company), ("code", "!=", None), ("type", "!=", None)],
            0,
            None,
            None,
            company=company,
        )
        context = {
            "company": company,
            "companies": [company],
            "from_date": first,
            "to_date": last,
        }
        body = json.dumps(
            {
                "id": 1,
                "method": "model.account.account.read",
                "params": [ids, ["code", "debit", "credit"], context],
            },
            default=_encode,
        )
        answer = json.loads(self._client.post(self._url, content=body).content, object_hook=_decode)
        if answer.get("error"):
            raise AssertionError(f"Tryton account totals: {answer['error']}")
        return {
            r["code"]: (r["debit"], r["credit"])
            for r in answer["result"]
            if r["debit"] or r["credit"]
        }

    def moves(self) -> list[dict[str, Any]]:
        """Every move with its lines' debits and credits."""
        moves = self.search_read(
            "account.move", [], ["company", "date", "state", "description", "lines"]
        )
        lines = {
            r["id"]: r
            for r in self.search_read("account.move.line", [], ["debit", "credit", "move"])
        }
        for move in moves:
            move["debit"] = sum((lines[i]["debit"] for i in move["lines"]), Decimal(0))
            move["credit"] = sum((lines[i]["credit"] for i in move["lines"]), Decimal(0))
        return list(moves)

    def invoices(self) -> list[dict[str, Any]]:
        """Every invoice: reference, state, total, company."""
        return list(
            self.search_read(
                "account.invoice", [], ["reference", "state", "total_amount", "company"]
            )
        )

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()


def _encode(value: Any) -> Any:
    if isinstance(value, Decimal):
        return {"__class__": "Decimal", "decimal": str(value)}
    if isinstance(value, date):
        return {"__class__": "date", "year": value.year, "month": value.month, "day": value.day}
    raise TypeError(type(value).__name__)


def _decode(obj: dict[str, Any]) -> Any:
    if obj.get("__class__") == "Decimal":
        return Decimal(obj["decimal"])
    if obj.get("__class__") == "date":
        return date(obj["year"], obj["month"], obj["day"])
    return obj


def write_setup(
    tmp_path: Path,
    db_url: str,
    server: TrytonServer,
    *,
    mapping_text: str | None = None,
    sync_extra: str = "",
    target_extra: str = "",
) -> Path:
    """finsync.toml and mapping.toml for a 'tryton' target on ``server``; returns the config.

    ``sync_extra`` and ``target_extra`` are more lines of ``[sync]`` and ``[targets.tryton]``.
    """
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(mapping_text or (REPO / "mapping.example.toml").read_text())
    (tmp_path / "tryton.password").write_text(ADMIN_PASSWORD)
    config = tmp_path / "finsync.toml"
    config.write_text(f"""
[billing]
url = "{db_url}"

[state]
url = "{db_url}"

[mapping]
file = "mapping.toml"

[sync]
kinds = {KINDS}
backoff_base_seconds = 1
{sync_extra}

[targets.tryton]
system = "tryton"
url = "{server.url}"
database = "finsync"
username = "admin"
password = {{ file = "{tmp_path / "tryton.password"}" }}
{target_extra}
""")
    return config


@dataclass
class Figures:
    """What the books must show, per Tryton company id (as a string)."""

    receivable: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    revenue: dict[tuple[str, str, date], Decimal] = field(default_factory=dict)  # credit - debit
    deferred: dict[tuple[str, str, date], Decimal] = field(default_factory=dict)
    tax: dict[str, Decimal] = field(default_factory=dict)
    cash_in: dict[str, Decimal] = field(default_factory=dict)
    cash_out: dict[str, Decimal] = field(default_factory=dict)

    def add(self, table: dict, key: object, amount: Decimal) -> None:  # type: ignore[type-arg]
        table[key] = table.get(key, _ZERO) + amount

    def nonzero(self) -> Figures:
        def clean(table: dict) -> dict:  # type: ignore[type-arg]
            return {k: v for k, v in table.items() if v != _ZERO}

        return Figures(*(clean(t) for t in self.__dict__.values()))


def months_between(first: date, last: date) -> list[date]:
    months, day = [], first
    while day <= last:
        months.append(day)
        day = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return months


def tryton_figures(books: TrytonBooks, mapping: dict, months: list[date]) -> Figures:  # type: ignore[type-arg]
    """The same figures from Tryton's own party receivables and account totals."""
    out = Figures()
    tryton = mapping["tryton"]
    revenue_codes = {c for c in tryton["accounts"].values() if c.startswith("4.")}
    deferred_codes = {c for c in tryton["accounts"].values() if c.startswith("2.2.2")}
    tax_codes = set(tryton["taxes"].values())
    cash_codes = set(tryton["payment_methods"].values()) | {tryton["refund_account"]}
    for company in sorted(set(tryton["companies"].values())):
        for code, amount in books.receivable_by_party(int(company)).items():
            out.add(out.receivable, (company, code), amount)
        for month in months:
            last = month.replace(day=calendar.monthrange(month.year, month.month)[1])
            for code, (debit, credit) in books.account_totals(int(company), month, last).items():
                if code in revenue_codes:
                    out.add(out.revenue, (company, code, month), credit - debit)
                if code in deferred_codes:
                    out.add(out.deferred, (company, code, month), credit - debit)
                if code in tax_codes:
                    out.add(out.tax, company, credit - debit)
                if code in cash_codes:
                    out.add(out.cash_in, company, debit)
                    out.add(out.cash_out, company, credit)
    return out.nonzero()
