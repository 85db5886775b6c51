"""Recognized revenue -> NetSuite journal entries (pure: no I/O, no clock, no float).

Invoices of ratable products credit their product family's deferred revenue account (the
NetSuite item carries that account); each month, the revenue billing recognized moves from
deferred revenue to revenue with one journal entry per (period, billing entity, currency):

- one line pair per (revenue account, deferred revenue account, department, class): the
  deferred line first (debit), then the revenue line (credit); a pair whose net amount is
  negative (reversals after credit notes or voids outweigh the month) swaps debit and credit;
- amounts are exact sums of billing's schedule entries, already rounded to the currency, so
  every entry balances to the cent and the periods add up to what was billed;
- ``tranDate`` is the last day of the period; when that period is closed in NetSuite, the
  closed-period policy either moves the entry to the first open period after it
  (``postingPeriod`` plus a memo naming the original period) or refuses it (``MappingError``);
- a journal already posted into a period that is now closed is never rewritten: a change is
  posted as an adjustment entry (the difference, line pair by line pair) in the current open
  period, with its own external id.

Point-in-time products post to revenue on the invoice itself, so their entries are left out.
Lines of zero net amount are left out, except that a journal which already exists keeps the line
pairs it had (at zero) rather than dropping below two lines.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Literal

from billing.records import RevenueEntry
from core.documents import Document
from core.errors import MappingError, Problem
from core.money import amount_text, is_known_currency, is_rounded
from core.periods import AccountingPeriod, period_order
from mappings.tables import MappingTables

#: The target name of every document this module builds.
TARGET = "netsuite"
#: The ledger kind of journal documents.
KIND = "revenue"
#: What happens to a journal whose period is closed in the ERP.
Policy = Literal["next_open", "fail"]
POLICIES: tuple[Policy, ...] = ("next_open", "fail")

_ZERO = Decimal(0)


@dataclass(frozen=True, order=True)
class JournalKey:
    """One journal entry: a period (first day of the month), a billing entity, a currency."""

    period: date
    entity: str
    currency: str

    @property
    def source_id(self) -> str:
        """The ledger's source id, e.g. ``2026-10:acme-us:USD``."""
        return f"{self.period:%Y-%m}:{self.entity}:{self.currency}"

    @property
    def external_id(self) -> str:
        """The NetSuite externalId, e.g. ``finsync:je:2026-10:acme-us:USD``."""
        return f"finsync:je:{self.source_id}"

    @property
    def label(self) -> str:
        """How messages and the ledger name the journal."""
        return f"revenue journal {self.period:%Y-%m} {self.entity} {self.currency}"

    @property
    def last_day(self) -> date:
        """The last day of the period: the journal's ``tranDate``."""
        return month_end(self.period)

    @classmethod
    def parse(cls, source_id: str) -> JournalKey:
        """The key of a source id (``2026-10:acme-us:USD``, adjustments' suffix ignored).

        Raises ValueError on anything else.
        """
        parts = source_id.split(":")
        if len(parts) not in (3, 5):
            raise ValueError(f"not a journal source id: {source_id!r}")
        year, month = parts[0].split("-")
        return cls(date(int(year), int(month), 1), parts[1], parts[2])


def adjustment_source_id(key: JournalKey, posted_in: date) -> str:
    """Source id of the adjustment of ``key`` posted in month ``posted_in``."""
    return f"{key.source_id}:adj:{posted_in:%Y-%m}"


def month_start(day: date) -> date:
    """The first day of ``day``'s month."""
    return day.replace(day=1)


def month_end(day: date) -> date:
    """The last day of ``day``'s month."""
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


@dataclass(frozen=True, order=True)
class RevenueTotal:
    """Recognized revenue of one product family in one journal (a sum of schedule entries)."""

    key: JournalKey
    product_family: str
    amount: Decimal


@dataclass(frozen=True, order=True)
class LineKey:
    """What one line pair posts to: revenue and deferred revenue accounts, department, class."""

    revenue_account: str
    deferred_account: str
    department: str | None
    class_: str | None


def totals_of(entries: Iterable[RevenueEntry]) -> list[RevenueTotal]:
    """Sum recognized entries of ratable products per journal and product family.

    Scheduled (not yet recognized) entries and point-in-time products are left out; entries
    whose product is missing are left out too (the invoice itself is quarantined for that).
    """
    sums: dict[tuple[JournalKey, str], Decimal] = {}
    for entry in entries:
        if entry.status != "recognized" or entry.product is None:
            continue
        if entry.billing_entity is None or entry.currency is None:
            continue  # its line does not exist in billing: validation rejects the entry
        if entry.product.revenue_pattern != "ratable":
            continue
        key = (
            JournalKey(month_start(entry.period), entry.billing_entity, entry.currency),
            entry.product.product_family,
        )
        sums[key] = sums.get(key, _ZERO) + entry.amount
    return sorted(RevenueTotal(k, family, amount) for (k, family), amount in sums.items())


@dataclass(frozen=True)
class _Lines:
    amounts: dict[LineKey, Decimal]
    families: dict[LineKey, list[str]]


def _lines(
    key: JournalKey, totals: Iterable[RevenueTotal], tables: MappingTables, problems: list[Problem]
) -> _Lines:
    """Net recognized amount per line pair, with the families each pair carries."""
    entity = tables.entities.get(key.entity)
    amounts: dict[LineKey, Decimal] = {}
    families: dict[LineKey, list[str]] = {}
    for total in sorted(totals, key=lambda t: t.product_family):
        where = f"product_family {total.product_family}"
        if total.key != key:
            raise ValueError(f"{total} does not belong to {key.label}")
        if not is_rounded(total.amount, key.currency):
            problems.append(
                Problem(
                    where,
                    f"recognized amount {total.amount} has more decimals than {key.currency} "
                    "allows: billing must round schedule entries to the currency",
                )
            )
            continue
        family = tables.product_families.get(total.product_family)
        if family is None:
            problems.append(
                Problem(
                    where,
                    f"no accounts mapped for product family {total.product_family!r}: add "
                    f"[product_families.{total.product_family}] to the "
                    f"{tables.describe('product_families')}",
                )
            )
            continue
        department = family.department or (entity.department if entity else None)
        class_ = family.class_ or (entity.class_ if entity else None)
        if department is None:
            problems.append(
                Problem(
                    f"{where}.department",
                    f"no department mapped for product family {total.product_family!r} or "
                    f"billing entity {key.entity!r}: set department in "
                    f"{tables.describe('product_families')} or {tables.describe('entities')}",
                )
            )
            continue
        line = LineKey(family.revenue_account, family.deferred_revenue_account, department, class_)
        amounts[line] = amounts.get(line, _ZERO) + total.amount
        families.setdefault(line, []).append(total.product_family)
    return _Lines(amounts, families)


def journal_lines(
    key: JournalKey, totals: Iterable[RevenueTotal], tables: MappingTables
) -> dict[LineKey, Decimal]:
    """Net recognized revenue per line pair of ``key``. Raises MappingError."""
    problems: list[Problem] = []
    lines = _lines(key, totals, tables, problems)
    if problems:
        raise MappingError(key.label, problems)
    return lines.amounts


def posted_lines(payload: Mapping[str, Any]) -> dict[LineKey, Decimal]:
    """The net amount per line pair of a journal payload this module built (the inverse of it).

    Pairs are (deferred line, revenue line); the deferred line's debit minus credit is the net.
    Raises ValueError on a payload of another shape.
    """
    lines = list(payload.get("lineList", ()))
    if len(lines) % 2:
        raise ValueError("a revenue journal has line pairs; this one has an odd line count")
    out: dict[LineKey, Decimal] = {}
    for deferred, revenue in zip(lines[::2], lines[1::2], strict=True):
        line = LineKey(
            revenue_account=revenue["account"]["internalId"],
            deferred_account=deferred["account"]["internalId"],
            department=deferred.get("department", {}).get("internalId"),
            class_=deferred.get("class", {}).get("internalId"),
        )
        net = Decimal(deferred.get("debit", "0")) - Decimal(deferred.get("credit", "0"))
        out[line] = out.get(line, _ZERO) + net
    return out


def choose_period(
    day: date, periods: Sequence[AccountingPeriod] | None, policy: Policy
) -> tuple[AccountingPeriod | None, str | None]:
    """Where a transaction dated ``day`` posts: (moved-to period or None, problem or None).

    Without period data (``periods`` None), or when the period holding ``day`` is open or not
    set up, it posts by its date (None, None). When it is closed: ``next_open`` gives the first
    open period after it, ``fail`` (or no open period after it) gives a problem message.
    """
    if periods is None:
        return None, None
    ordered = sorted(periods, key=period_order)
    holding = next((p for p in ordered if p.contains(day)), None)
    if holding is None or not holding.closed:
        return None, None
    if policy == "fail":
        return None, (
            f"accounting period {holding.name} is closed in NetSuite and the closed-period "
            'policy is "fail": reopen the period, or set closed_period_policy = "next_open" '
            "in the target's section of the config to post into the next open period"
        )
    following = next((p for p in ordered if p.start > holding.end and not p.closed), None)
    if following is None:
        return None, (
            f"accounting period {holding.name} is closed in NetSuite and no open period follows "
            "it: open the next accounting period"
        )
    return following, None


def _ref(internal_id: str) -> dict[str, str]:
    return {"internalId": internal_id}


def _families_by_line(tables: MappingTables, entity: str) -> dict[LineKey, list[str]]:
    mapping = tables.entities.get(entity)
    out: dict[LineKey, list[str]] = {}
    for name, family in sorted(tables.product_families.items()):
        department = family.department or (mapping.department if mapping else None)
        class_ = family.class_ or (mapping.class_ if mapping else None)
        line = LineKey(family.revenue_account, family.deferred_revenue_account, department, class_)
        out.setdefault(line, []).append(name)
    return out


def _pair(
    line: LineKey, amount: Decimal, currency: str, memo: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    # Debit deferred / credit revenue; a negative net (reversals) swaps the sides.
    text = amount_text(abs(amount), currency)
    deferred_side, revenue_side = ("debit", "credit") if amount >= 0 else ("credit", "debit")
    segments: dict[str, Any] = {}
    if line.department is not None:
        segments["department"] = _ref(line.department)
    if line.class_ is not None:
        segments["class"] = _ref(line.class_)
    deferred = {"account": _ref(line.deferred_account), deferred_side: text, "memo": memo}
    revenue = {"account": _ref(line.revenue_account), revenue_side: text, "memo": memo}
    return {**deferred, **segments}, {**revenue, **segments}


def _header(
    key: JournalKey, tables: MappingTables, problems: list[Problem]
) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    entity = tables.entities.get(key.entity)
    if entity is None:
        problems.append(
            Problem(
                "billing_entity",
                f"no NetSuite subsidiary mapped for billing entity {key.entity!r}: add "
                f"[entities.{key.entity}] with netsuite_subsidiary to the "
                f"{tables.describe('entities')}",
            )
        )
    else:
        out["subsidiary"] = _ref(entity.netsuite_subsidiary)
    currency = tables.currencies.get(key.currency)
    if currency is None or not is_known_currency(key.currency):
        problems.append(
            Problem(
                "currency",
                f"no NetSuite currency mapped for {key.currency!r}: add it to the "
                f"{tables.describe('currencies')}",
            )
        )
    else:
        out["currency"] = _ref(currency)
    return out


def map_journal(
    key: JournalKey,
    lines: Mapping[LineKey, Decimal],
    tables: MappingTables,
    *,
    periods: Sequence[AccountingPeriod] | None = None,
    policy: Policy = "next_open",
    previous: Iterable[LineKey] = (),
    adjustment_in: date | None = None,
) -> Document | None:
    """The journal entry of ``key`` posting ``lines`` (net recognized revenue per line pair).

    ``periods`` are the ERP's accounting periods (None: unknown, post by date) and ``policy``
    decides what a closed period does. ``previous`` are the line pairs the journal already has in
    the ledger: they stay (at zero) so an existing entry is zeroed, not left stale. With
    ``adjustment_in`` (a month), the document is the adjustment of ``key`` posted in that month,
    always in an open period. Returns None when there is nothing to post and nothing to zero.
    Raises MappingError naming every problem.
    """
    problems: list[Problem] = []
    header = _header(key, tables, problems)
    families = _families_by_line(tables, key.entity)
    keep = [k for k, v in sorted(lines.items()) if v != _ZERO]
    if not keep:
        keep = sorted(set(previous))
        if not keep:
            if problems:
                raise MappingError(key.label, problems)
            return None
    day = key.last_day if adjustment_in is None else month_end(adjustment_in)
    moved_to, problem = choose_period(
        day, periods, "next_open" if adjustment_in is not None else policy
    )
    if problem is not None:
        problems.append(Problem("postingPeriod", problem))
    if problems:
        raise MappingError(key.label, problems)
    what = f"revenue recognition {key.period:%Y-%m} {key.entity} {key.currency}"
    if adjustment_in is not None:
        memo = f"Adjustment in {adjustment_in:%Y-%m} of {what}"
        source_id = adjustment_source_id(key, adjustment_in)
        label = f"{key.label} adjustment {adjustment_in:%Y-%m}"
    else:
        memo = f"R{what[1:]}"
        source_id, label = key.source_id, key.label
    payload: dict[str, Any] = {**header, "tranDate": day.isoformat()}
    if moved_to is not None:
        payload["postingPeriod"] = _ref(moved_to.internal_id)
        origin = f"{key.period:%Y-%m}" if adjustment_in is None else f"{adjustment_in:%Y-%m}"
        memo += f" (period {origin} is closed; posted in {moved_to.name})"
    payload["memo"] = memo
    line_list: list[dict[str, Any]] = []
    for line in keep:
        names = ", ".join(families.get(line, ())) or "unmapped family"
        line_memo = f"{key.period:%Y-%m} {names}"
        if adjustment_in is not None:
            line_memo = f"adjustment of {line_memo}"
        line_list.extend(_pair(line, lines.get(line, _ZERO), key.currency, line_memo))
    payload["lineList"] = line_list
    return Document(
        target=TARGET,
        kind=KIND,
        source_id=source_id,
        external_id=f"finsync:je:{source_id}",
        record_type="journalEntry",
        label=label,
        payload=payload,
    )


def subtract(
    a: Mapping[LineKey, Decimal], *others: Mapping[LineKey, Decimal]
) -> dict[LineKey, Decimal]:
    """``a`` minus every mapping of ``others``, per line pair (missing pairs count as zero)."""
    out = dict(a)
    for other in others:
        for line, amount in other.items():
            out[line] = out.get(line, _ZERO) - amount
    return out


def journal_totals(payload: Mapping[str, Any]) -> tuple[Decimal, Decimal]:
    """(debits, credits) of a journal payload."""
    debits = credits = _ZERO
    for line in payload.get("lineList", ()):
        debits += Decimal(line.get("debit", "0"))
        credits += Decimal(line.get("credit", "0"))
    return debits, credits
