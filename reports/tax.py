"""Tax reconciliation data: the tax billing charged against the tax AvaTax computes.

For every invoice issued in the period (voids excluded), per tax jurisdiction: the net amount
and tax billed (from ``invoice_lines``), and the tax the engine computed for it (the
``taxCalculated`` of the jurisdiction summary that the AvaTax connector returned and the sync
engine stored in the ledger's ``result``). Because finsync sends billing's tax as an override,
the engine records what the customer paid (``totalTax``) and still computes its own figure; the
variance (billed - computed) is what finance investigates before filing.

Invoices the engine does not hold yet have ``tax_computed`` None and count separately in the
totals. Totals are per jurisdiction and currency, and per currency: never across currencies.
Pure data; the workbook writer renders it. Decimal everywhere: amounts are summed in Python from
streamed rows, never in SQL (SQLite would sum them as floats).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa

from billing import schema as b
from sync.ledger import source_id_among
from sync.state import ledger

ZERO = Decimal(0)
#: Jurisdiction label of billing lines without a jurisdiction.
NO_JURISDICTION = "(none)"
#: Jurisdiction label of engine tax that came without a per-jurisdiction summary.
ENGINE_TOTAL = "(engine total)"
#: Countries whose billing jurisdictions are "country-region" (US states); others are a country.
_REGIONAL = frozenset({"US"})
_CHUNK = 1000


@dataclass(frozen=True)
class InvoiceTax:
    """One invoice in one jurisdiction: tax billed against tax computed by the engine."""

    invoice_id: int
    number: str
    entity: str
    currency: str
    issue_date: date
    jurisdiction: str
    taxable: Decimal
    tax_billed: Decimal
    #: What the engine computed; None when the engine does not hold the invoice (or its figures).
    tax_computed: Decimal | None
    #: "in engine", "not in engine" or "in engine, no figures" (recovered without an answer).
    engine_state: str
    #: The ledger status of the invoice for the tax target (None if it was never enqueued).
    ledger_status: str | None

    @property
    def variance(self) -> Decimal | None:
        """Billed minus computed; None while the engine's figure is unknown."""
        return None if self.tax_computed is None else self.tax_billed - self.tax_computed


@dataclass(frozen=True)
class TaxTotal:
    """Totals of one jurisdiction in one currency (or of a whole currency)."""

    jurisdiction: str
    currency: str
    invoices: int
    taxable: Decimal
    tax_billed: Decimal
    #: Sum over invoices the engine holds with figures (``invoices - not_in_engine`` of them).
    tax_computed: Decimal
    #: Tax billed on those same invoices, so ``variance = billed_in_engine - tax_computed``.
    tax_billed_in_engine: Decimal
    not_in_engine: int

    @property
    def variance(self) -> Decimal:
        """Billed minus computed over the invoices the engine holds."""
        return self.tax_billed_in_engine - self.tax_computed


@dataclass(frozen=True)
class TaxReconciliation:
    """Rows per invoice and jurisdiction, with totals per jurisdiction+currency and currency."""

    period_start: date
    period_end: date
    entity: str | None
    rows: tuple[InvoiceTax, ...]
    totals: tuple[TaxTotal, ...]
    currency_totals: tuple[TaxTotal, ...]

    @property
    def variances(self) -> tuple[InvoiceTax, ...]:
        """Rows where billing charged a different tax than the engine computes."""
        return tuple(r for r in self.rows if r.variance)

    def computed_by_jurisdiction(self) -> dict[tuple[str, str], Decimal]:
        """Tax computed per (jurisdiction, currency): the workbook's ``tax_engine`` figures."""
        return {(t.jurisdiction, t.currency): t.tax_computed for t in self.totals}


def tax_reconciliation(
    billing_engine: sa.Engine,
    state_engine: sa.Engine,
    *,
    period_start: date,
    period_end: date,
    entity: str | None = None,
    target: str = "avatax",
    left_out: Collection[int] = (),
) -> TaxReconciliation:
    """Reconcile the tax of invoices issued from ``period_start`` to ``period_end`` (inclusive).

    ``target`` is the name of the tax target in the config (its ledger rows); ``left_out`` are
    the ids of invoices validation rejected (not reconciled). Reads only.
    """
    rows = list(
        invoice_taxes(
            billing_engine,
            state_engine,
            period_start=period_start,
            period_end=period_end,
            entity=entity,
            target=target,
            left_out=left_out,
        )
    )
    rows.sort(key=_row_order)
    return TaxReconciliation(
        period_start=period_start,
        period_end=period_end,
        entity=entity,
        rows=tuple(rows),
        totals=_totals(rows, lambda r: (r.jurisdiction, r.currency)),
        currency_totals=_totals(rows, lambda r: ("(all)", r.currency)),
    )


def tax_figures(
    billing_engine: sa.Engine,
    state_engine: sa.Engine,
    *,
    period_start: date,
    period_end: date,
    entity: str | None = None,
    target: str = "avatax",
    left_out: Collection[int] = (),
) -> tuple[tuple[TaxTotal, ...], tuple[InvoiceTax, ...]]:
    """What the workbook shows of ``tax_reconciliation``: the totals per jurisdiction and
    currency, and the rows with a variance; the rows stream, so memory holds only those."""
    variances: list[InvoiceTax] = []
    totals = _Totals(lambda r: (r.jurisdiction, r.currency))
    for row in invoice_taxes(
        billing_engine,
        state_engine,
        period_start=period_start,
        period_end=period_end,
        entity=entity,
        target=target,
        left_out=left_out,
    ):
        totals.add(row)
        if row.variance:
            variances.append(row)
    variances.sort(key=_row_order)
    return totals.result(), tuple(variances)


def _row_order(row: InvoiceTax) -> tuple[date, str, str]:
    return (row.issue_date, row.number, row.jurisdiction)


def invoice_taxes(
    billing_engine: sa.Engine,
    state_engine: sa.Engine,
    *,
    period_start: date,
    period_end: date,
    entity: str | None = None,
    target: str = "avatax",
    left_out: Collection[int] = (),
) -> Iterator[InvoiceTax]:
    """The rows of ``tax_reconciliation`` as they stream, invoice by invoice (by invoice id);
    the engine's figures are looked up a chunk of invoices at a time."""
    for chunk in _billed(billing_engine, period_start, period_end, entity, left_out):
        engine = _engine_figures(state_engine, target, list(chunk))
        for invoice_id, (head, per_juris) in chunk.items():
            yield from _invoice_rows(invoice_id, head, per_juris, engine.get(invoice_id))


def _invoice_rows(
    invoice_id: int,
    head: _Head,
    per_juris: dict[str, tuple[Decimal, Decimal]],
    engine: tuple[str, _Figures | None] | None,
) -> Iterator[InvoiceTax]:
    number, inv_entity, currency, issued = head
    status, figures = engine if engine is not None else (None, None)
    if figures is None:
        state = "in engine, no figures" if status == "synced" else "not in engine"
        computed: dict[str, Decimal] | None = None
    else:
        state = "in engine"
        computed = _assign_total(figures, list(per_juris))
    for juris in sorted(set(per_juris) | set(computed or {})):
        taxable, tax = per_juris.get(juris, (ZERO, ZERO))
        yield InvoiceTax(
            invoice_id=invoice_id,
            number=number,
            entity=inv_entity,
            currency=currency,
            issue_date=issued,
            jurisdiction=juris,
            taxable=taxable,
            tax_billed=tax,
            tax_computed=None if computed is None else computed.get(juris, ZERO),
            engine_state=state,
            ledger_status=status,
        )


def jurisdiction_key(country: str | None, region: str | None) -> str:
    """Billing's jurisdiction label for an engine jurisdiction: "US-CA" in the US, else "DE"."""
    country = (country or "").upper()
    region = (region or "").upper()
    if not country:
        return ENGINE_TOTAL
    if country in _REGIONAL and region and region != country:
        return f"{country}-{region}"
    return country


_Head = tuple[str, str, str, date]


_Billed = dict[int, tuple[_Head, dict[str, tuple[Decimal, Decimal]]]]


def _billed(
    engine: sa.Engine, start: date, end: date, entity: str | None, left_out: Collection[int]
) -> Iterator[_Billed]:
    """Per invoice: its head and (taxable, tax) per jurisdiction, ``_CHUNK`` invoices at a time.

    PostgreSQL sums NUMERIC exactly, so it sends one row per invoice and jurisdiction; SQLite
    holds money as text and would sum floats, so its lines come one by one.
    """
    i, line = b.invoices, b.invoice_lines
    head = (i.c.id, i.c.number, i.c.billing_entity, i.c.currency, i.c.issue_date)
    if engine.dialect.name == "postgresql":
        stmt = (
            sa.select(
                *head,
                line.c.tax_jurisdiction,
                sa.func.sum(line.c.amount).label("amount"),
                sa.func.sum(line.c.tax_amount).label("tax_amount"),
            )
            .group_by(*head, line.c.tax_jurisdiction)
            .order_by(i.c.id)
        )
    else:
        stmt = sa.select(*head, line.c.tax_jurisdiction, line.c.amount, line.c.tax_amount).order_by(
            i.c.id, line.c.line_no
        )
    stmt = stmt.join_from(i, line, line.c.invoice_id == i.c.id).where(
        i.c.issue_date >= start, i.c.issue_date <= end, i.c.status != "void"
    )
    if entity:
        stmt = stmt.where(i.c.billing_entity == entity)
    skip = frozenset(left_out)
    out: _Billed = {}
    with engine.connect() as conn:
        for r in conn.execution_options(yield_per=2000).execute(stmt):
            if r.id in skip:
                continue
            if r.id not in out and len(out) >= _CHUNK:
                yield out
                out = {}
            _head, per_juris = out.setdefault(
                r.id, ((r.number, r.billing_entity, r.currency, r.issue_date), {})
            )
            juris = r.tax_jurisdiction or NO_JURISDICTION
            taxable, tax = per_juris.get(juris, (ZERO, ZERO))
            per_juris[juris] = (taxable + r.amount, tax + r.tax_amount)
    if out:
        yield out


_Figures = tuple[dict[str, Decimal], Decimal | None]


def _engine_figures(
    engine: sa.Engine, target: str, invoice_ids: list[int]
) -> dict[int, tuple[str, _Figures | None]]:
    """Ledger status and the engine's computed tax (per jurisdiction, total) of each invoice."""
    out: dict[int, tuple[str, _Figures | None]] = {}
    with engine.connect() as conn:
        for among in source_id_among(conn, [str(x) for x in invoice_ids]):
            stmt = sa.select(
                ledger.c.source_id, ledger.c.status, ledger.c.operation, ledger.c.result
            ).where(ledger.c.target == target, ledger.c.kind == "invoice", among)
            for r in conn.execute(stmt):
                figures = _parse_result(r.result) if r.operation == "upsert" else None
                out[int(r.source_id)] = (r.status, figures)
    return out


def _parse_result(text: str | None) -> _Figures | None:
    if not text:
        return None
    try:
        data = json.loads(text, parse_float=Decimal)
    except ValueError:
        return None
    if not isinstance(data, Mapping):
        return None
    total = _dec(data.get("totalTaxCalculated"))
    per_juris: dict[str, Decimal] = defaultdict(lambda: ZERO)
    summary = data.get("summary")
    for row in summary if isinstance(summary, list) else []:
        computed = _dec(row.get("taxCalculated")) if isinstance(row, Mapping) else None
        if computed is None:
            continue
        per_juris[jurisdiction_key(row.get("country"), row.get("region"))] += computed
    if total is None and not per_juris:
        return None
    return dict(per_juris), total


def _assign_total(figures: _Figures, billed_juris: list[str]) -> dict[str, Decimal]:
    per_juris, total = figures
    if per_juris or total is None:
        return per_juris
    # No jurisdiction summary: the whole computed tax belongs to the invoice's one
    # jurisdiction when billing has just one; otherwise it cannot be split honestly.
    return {billed_juris[0] if len(billed_juris) == 1 else ENGINE_TOTAL: total}


def _dec(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool | float):
        return None
    try:
        return Decimal(value) if isinstance(value, str | int | Decimal) else None
    except InvalidOperation:
        return None


class _Totals:
    """Totals of rows that come invoice by invoice, per ``key`` (an invoice's rows together)."""

    def __init__(self, key: Callable[[InvoiceTax], tuple[str, str]]) -> None:
        self.key = key
        self.acc: dict[tuple[str, str], dict[str, Any]] = {}

    def add(self, r: InvoiceTax) -> None:
        """Count one row; an invoice counts once per key however many rows it has there."""
        t = self.acc.setdefault(
            self.key(r),
            {
                "last": None,
                "invoices": 0,
                "missing": 0,
                "taxable": ZERO,
                "billed": ZERO,
                "computed": ZERO,
                "billed_in": ZERO,
            },
        )
        first_row = t["last"] != r.invoice_id
        t["last"] = r.invoice_id
        t["invoices"] += first_row
        t["taxable"] += r.taxable
        t["billed"] += r.tax_billed
        if r.tax_computed is None:
            t["missing"] += first_row
        else:
            t["computed"] += r.tax_computed
            t["billed_in"] += r.tax_billed

    def result(self) -> tuple[TaxTotal, ...]:
        """The totals, by key."""
        return tuple(
            TaxTotal(
                jurisdiction=j,
                currency=c,
                invoices=t["invoices"],
                taxable=t["taxable"],
                tax_billed=t["billed"],
                tax_computed=t["computed"],
                tax_billed_in_engine=t["billed_in"],
                not_in_engine=t["missing"],
            )
            for (j, c), t in sorted(self.acc.items())
        )


def _totals(rows: Iterable[InvoiceTax], key: Any) -> tuple[TaxTotal, ...]:
    totals = _Totals(key)
    for r in sorted(rows, key=lambda r: r.invoice_id):
        totals.add(r)
    return totals.result()
