"""The Tryton connector: the ``Connector`` protocol (send by kind and company, look-ups, close)
over the document handling of ``parties``, ``invoices``, ``cash`` and ``journals``."""

from __future__ import annotations

from collections.abc import Sequence

from connectors.base import Connector
from connectors.tryton.books import POSTED
from connectors.tryton.cash import TrytonCashMoves
from connectors.tryton.invoices import TrytonInvoices
from connectors.tryton.journals import TrytonJournals
from connectors.tryton.parties import TrytonParties
from connectors.tryton.rpc import SYSTEM, TrytonSettings
from core.documents import Document, WriteResult
from core.errors import AuthError, PermanentError, RetryableError
from finsync.config import TargetConfig


class TrytonConnector(TrytonParties, TrytonInvoices, TrytonCashMoves, TrytonJournals):
    """Writes parties, invoices, credit notes, cash moves and revenue moves to Tryton."""

    system = SYSTEM

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
            if invoice is None or invoice["state"] not in POSTED:
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
