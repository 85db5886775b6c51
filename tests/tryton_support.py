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
import json
import tempfile
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox import tryton as sandbox_tryton
from sandbox.tryton import TrytonServer, TrytonStartError


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
