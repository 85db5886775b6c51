"""Payments and refunds: cash moves against the customer's receivable, reconciled with the
invoices they pay; a changed payment is refused, a void reversed by its own move."""

from __future__ import annotations

import logging
from typing import Any

from connectors.tryton.books import ZERO, TrytonBooks, day_of, decimal_of
from connectors.tryton.rpc import SYSTEM
from core.documents import Document, WriteResult
from core.errors import AuthError, PermanentError

log = logging.getLogger("connectors.tryton")


class TrytonCashMoves(TrytonBooks):
    """Payments and refunds as cash moves in Tryton."""

    def _cash_move(self, company: int, doc: Document, party: int) -> dict[str, Any]:
        payload = doc.payload
        amount = decimal_of(payload["amount"])
        text = payload["description"]
        lines = [
            self._line(
                company,
                payload["cash_account"],
                max(amount, ZERO),
                max(-amount, ZERO),
                text,
            )
        ]
        applied = ZERO
        for application in payload["applications"]:
            part = decimal_of(application["amount"])
            applied += part
            lines.append(
                self._line(
                    company,
                    payload["receivable_account"],
                    ZERO,
                    part,
                    f"{text} for {application['invoice']}",
                    party,
                )
            )
        rest = amount - applied
        if rest != ZERO or not payload["applications"]:
            lines.append(
                self._line(
                    company,
                    payload["receivable_account"],
                    max(-rest, ZERO),
                    max(rest, ZERO),
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
        when = day_of(day)
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
        booked = sum((decimal_of(r["debit"]) - decimal_of(r["credit"]) for r in rows), ZERO)
        if booked != decimal_of(doc.payload["amount"]):
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
