"""Revenue journals: the Tryton move of a journal document, and moves of the difference when the
journal changes, so its moves always add up to the latest payload."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from connectors.tryton.books import ZERO, TrytonBooks, day_of, decimal_of
from connectors.tryton.rpc import SYSTEM
from core.documents import Document, WriteResult
from core.errors import PermanentError


class TrytonJournals(TrytonBooks):
    """Revenue journals as account moves in Tryton."""

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
                net[code] = (
                    net.get(code, ZERO) + decimal_of(row["debit"]) - decimal_of(row["credit"])
                )
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
                desired.get(line["account"], ZERO)
                + decimal_of(line["debit"])
                - decimal_of(line["credit"])
            )
        delta = {
            code: desired.get(code, ZERO) - current.get(code, ZERO)
            for code in sorted(set(desired) | set(current))
        }
        description = f"{doc.external_id}@{doc.payload_hash[:12]}"
        if all(v == ZERO for v in delta.values()):
            return WriteResult(doc.external_id, ok=True, created=False)
        period, day, moved = self._journal_period(company, day_of(move["date"]))
        lines = [
            self._line(company, code, max(v, ZERO), max(-v, ZERO), move["description"] + moved)
            for code, v in delta.items()
            if v != ZERO
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
