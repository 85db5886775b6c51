"""Customer invoices and credit notes: found by reference, else created and posted in one batch
per company; a void is a reversing document, a deferral a move; half-done ones are completed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.tryton.books import POSTED, ZERO, TrytonBooks, day_of, decimal_of
from connectors.tryton.rpc import SYSTEM
from core.documents import Document, WriteResult
from core.errors import PermanentError


def _document_date(payload: Mapping[str, Any], sign: int) -> str:
    """The date of an invoice job: its own, or for a void's reversal the day of the void."""
    return str(
        payload["invoice_date"] if sign > 0 else payload.get("void_date") or payload["invoice_date"]
    )


def _voided_in_a_later_month(payload: Mapping[str, Any]) -> bool:
    """True when a void document's void falls in a later month than the document's date."""
    void_date = payload.get("void_date")
    return bool(void_date) and str(void_date)[:7] > str(payload["invoice_date"])[:7]


class TrytonInvoices(TrytonBooks):
    """Customer invoices and credit notes in Tryton."""

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
                "quantity": float(decimal_of(line["quantity"]) * sign),
                "unit_price": decimal_of(line["unit_price"]),
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
                "base": decimal_of(tax["base"]) * sign,
                "amount": decimal_of(tax["amount"]) * sign,
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
            "invoice_date": day_of(_document_date(payload, sign)),
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
                if found is None or found["state"] not in POSTED:
                    jobs.append((i, doc, doc.external_id, 1))
                jobs.append((i, doc, f"{doc.external_id}:void", -1))
                continue
            if doc.operation == "void":
                if found is None or found["state"] == "cancelled":
                    results[i] = WriteResult(
                        doc.external_id, ok=True, created=False, details={"void": "not recorded"}
                    )
                    continue
                if found["state"] not in POSTED:
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
                and found["state"] in POSTED
                and decimal_of(found["total_amount"]) != decimal_of(doc.payload["total"])
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
            if states.get(invoice, "draft") not in POSTED and jobs[n][0] not in results
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
            amount = decimal_of(pair["amount"]) * sign
            debit, credit = (
                (pair["revenue_account"], pair["deferred_account"])
                if amount > 0
                else (pair["deferred_account"], pair["revenue_account"])
            )
            text = f"deferral of {doc.payload['number']}"
            lines.append(self._line(company, debit, abs(amount), ZERO, text))
            lines.append(self._line(company, credit, ZERO, abs(amount), text))
        return self._move_values(
            company,
            doc.payload["deferral_journal"],
            _document_date(doc.payload, sign),
            description,
            lines,
        )
