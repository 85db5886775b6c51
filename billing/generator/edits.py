"""Later edits: ``apply_edits`` changes seeded records the way billing does after a first sync
(a line's quantity, a void, a renamed customer, a new invoice), all at one ``updated_at``."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from billing import schema
from billing.catalog import PRODUCTS, TAX_RATES
from billing.generator.customers import NAME_PARTS, company_name
from billing.generator.dates import add_months, month_start
from billing.generator.invoices import line_amount
from billing.generator.revenue import line_schedule, reversal
from billing.generator.rows import ZERO
from core.money import round_money


@dataclass(frozen=True)
class EditSummary:
    """What ``apply_edits`` changed, all with ``updated_at == at``.

    Invoices appear in ``changed_invoices`` (a line's quantity changed), ``voided_invoices`` or
    ``new_invoices``; ``invoice_lines`` and ``revenue_schedule_entries`` hold the ids of the lines
    and schedule entries that were changed or added by any of those edits.
    """

    at: datetime
    changed_invoices: tuple[str, ...]
    voided_invoices: tuple[str, ...]
    new_invoices: tuple[str, ...]
    renamed_customers: tuple[str, ...]  # account numbers
    invoice_lines: tuple[int, ...]
    revenue_schedule_entries: tuple[int, ...]

    @property
    def invoice_numbers(self) -> tuple[str, ...]:
        """Every invoice whose row changed or was added, sorted."""
        return tuple(sorted(self.changed_invoices + self.voided_invoices + self.new_invoices))


def apply_edits(engine: Engine, *, seed: int, at: datetime, count: int = 10) -> EditSummary:
    """Change billing records the way billing does after a first sync, all at ``at``.

    Up to ``count`` of each: a line's quantity changes on an open, unpaid invoice (line, invoice
    totals and revenue schedule recomputed); an open, unpaid invoice is voided (its schedule
    reversed); a customer is renamed; an existing customer gets a new invoice. Every changed or
    added row gets ``updated_at = at``. Deterministic for a given database and ``seed``. Raises
    ValueError if ``at`` is naive.
    """
    if at.tzinfo is None:
        raise ValueError("at must be a timezone-aware datetime")
    rng = random.Random(seed)
    s = schema
    with engine.begin() as conn:
        untouched = (
            sa.select(s.invoices.c.id)
            .where(s.invoices.c.status == "open")
            .where(~sa.exists().where(s.payment_applications.c.invoice_id == s.invoices.c.id))
            .where(~sa.exists().where(s.credit_notes.c.invoice_id == s.invoices.c.id))
            .order_by(s.invoices.c.id)
        )
        candidates = list(conn.execute(untouched).scalars())
        picked = rng.sample(candidates, min(len(candidates), 2 * count))
        to_change, to_void = sorted(picked[:count]), sorted(picked[count:])
        lines: list[int] = []
        entries: list[int] = []
        changed = [
            _change_line(conn, rng, invoice_id, at, lines, entries) for invoice_id in to_change
        ]
        voided = [_void(conn, invoice_id, at, entries) for invoice_id in to_void]

        customer_ids = list(
            conn.execute(sa.select(s.customers.c.id).order_by(s.customers.c.id)).scalars()
        )
        renamed = [
            _rename(conn, rng, cid, at)
            for cid in sorted(rng.sample(customer_ids, min(count, len(customer_ids))))
        ]
        billed = sorted(rng.sample(customer_ids, min(count, len(customer_ids))))
        new = [_new_invoice(conn, rng, cid, at, lines, entries) for cid in billed]
    return EditSummary(
        at=at,
        changed_invoices=tuple(changed),
        voided_invoices=tuple(voided),
        new_invoices=tuple(new),
        renamed_customers=tuple(renamed),
        invoice_lines=tuple(sorted(lines)),
        revenue_schedule_entries=tuple(sorted(entries)),
    )


def _next_id(conn: Connection, table: sa.Table) -> int:
    return (
        int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(table.c.id), 0))).scalar_one()) + 1
    )


def _retotal(conn: Connection, invoice_id: int, currency: str, at: datetime) -> None:
    """Recompute an invoice's totals from its lines."""
    lines = schema.invoice_lines
    amounts = conn.execute(
        sa.select(lines.c.amount, lines.c.tax_amount).where(lines.c.invoice_id == invoice_id)
    ).all()
    subtotal = sum((a for a, _ in amounts), round_money(ZERO, currency))
    tax_total = sum((t for _, t in amounts), round_money(ZERO, currency))
    conn.execute(
        schema.invoices.update()
        .where(schema.invoices.c.id == invoice_id)
        .values(subtotal=subtotal, tax_total=tax_total, total=subtotal + tax_total, updated_at=at)
    )


def _change_line(
    conn: Connection,
    rng: random.Random,
    invoice_id: int,
    at: datetime,
    lines: list[int],
    entries: list[int],
) -> str:
    s = schema
    number, currency, issue = conn.execute(
        sa.select(s.invoices.c.number, s.invoices.c.currency, s.invoices.c.issue_date).where(
            s.invoices.c.id == invoice_id
        )
    ).one()
    candidates = (
        conn.execute(
            sa.select(s.invoice_lines, s.products.c.revenue_pattern)
            .join(s.products, s.products.c.id == s.invoice_lines.c.product_id)
            .where(s.invoice_lines.c.invoice_id == invoice_id)
            .order_by(s.invoice_lines.c.line_no)
        )
        .mappings()
        .all()
    )
    line = candidates[rng.randrange(len(candidates))]
    qty: Decimal = line["quantity"]
    if qty == qty.to_integral_value():
        new_qty = qty + rng.choice((1, 2, 3, 5))
    else:  # metered usage: the usage count was revised
        new_qty = (qty * Decimal("1.1")).quantize(Decimal("0.001"))
    amount = line_amount(new_qty, line["unit_price"], line["discount"], currency)
    tax = round_money(amount * line["tax_rate"], currency)
    conn.execute(
        s.invoice_lines.update()
        .where(s.invoice_lines.c.id == line["id"])
        .values(quantity=new_qty, amount=amount, tax_amount=tax, updated_at=at)
    )
    lines.append(line["id"])
    _retotal(conn, invoice_id, currency, at)
    # No credit note touches this line, so its entries are exactly the original schedule:
    # recompute it and rewrite each month's amount.
    parts = line_schedule(
        amount,
        line["revenue_pattern"] == "ratable",
        line["service_start"],
        line["service_end"],
        issue,
        currency,
    )
    rse = s.revenue_schedule_entries
    existing = conn.execute(
        sa.select(rse.c.id, rse.c.period)
        .where(rse.c.invoice_line_id == line["id"])
        .order_by(rse.c.period, rse.c.id)
    ).all()
    if [p for _, p in existing] != [p for p, _ in parts]:
        raise ValueError(
            f"invoice {number}: the schedule of line {line['line_no']} does not "
            "follow its service period; cannot recompute it"
        )
    for (entry_id, _), (_, share) in zip(existing, parts, strict=True):
        conn.execute(rse.update().where(rse.c.id == entry_id).values(amount=share, updated_at=at))
        entries.append(entry_id)
    return str(number)


def _void(conn: Connection, invoice_id: int, at: datetime, entries: list[int]) -> str:
    s = schema
    rse = s.revenue_schedule_entries
    number = conn.execute(
        sa.select(s.invoices.c.number).where(s.invoices.c.id == invoice_id)
    ).scalar_one()
    conn.execute(
        s.invoices.update()
        .where(s.invoices.c.id == invoice_id)
        .values(status="void", voided_at=at, updated_at=at)
    )
    rows = conn.execute(
        sa.select(rse.c.invoice_line_id, rse.c.period, rse.c.amount)
        .join(s.invoice_lines, s.invoice_lines.c.id == rse.c.invoice_line_id)
        .where(s.invoice_lines.c.invoice_id == invoice_id)
        .order_by(rse.c.invoice_line_id, rse.c.period, rse.c.id)
    ).all()
    next_id = _next_id(conn, rse)
    by_line: dict[int, list[tuple[date, Decimal]]] = {}
    for line_id, period, amount in rows:
        by_line.setdefault(line_id, []).append((period, amount))
    new_rows = []
    for line_id in sorted(by_line):
        # Reversals of the voided schedule fall in the month of the void or later; they are not
        # recognized yet.
        for period, amount in reversal(by_line[line_id], month_start(at.date())):
            new_rows.append(
                {
                    "id": next_id,
                    "invoice_line_id": line_id,
                    "period": period,
                    "amount": amount,
                    "status": "scheduled",
                    "recognized_on": None,
                    "updated_at": at,
                }
            )
            entries.append(next_id)
            next_id += 1
    if new_rows:
        conn.execute(rse.insert(), new_rows)
    return str(number)


def _rename(conn: Connection, rng: random.Random, customer_id: int, at: datetime) -> str:
    c = schema.customers
    account, name, country = conn.execute(
        sa.select(c.c.account_number, c.c.name, c.c.country).where(c.c.id == customer_id)
    ).one()
    new_name = company_name(rng, country if country in NAME_PARTS else "US")
    if new_name == name:
        new_name += " Group"
    conn.execute(c.update().where(c.c.id == customer_id).values(name=new_name, updated_at=at))
    return str(account)


def _new_invoice(
    conn: Connection,
    rng: random.Random,
    customer_id: int,
    at: datetime,
    lines: list[int],
    entries: list[int],
) -> str:
    s = schema
    cust = (
        conn.execute(sa.select(s.customers).where(s.customers.c.id == customer_id)).mappings().one()
    )
    cur = cust["currency"]
    region = cust["region"]
    jurisdiction = f"{cust['country']}-{region}" if region else str(cust["country"])
    rate = ZERO if cust["tax_exempt"] else TAX_RATES.get(jurisdiction, ZERO)
    product_ids: dict[str, int] = {
        sku: pid for sku, pid in conn.execute(sa.select(s.products.c.sku, s.products.c.id))
    }
    issue = at.date()
    end = add_months(issue, 1) - timedelta(days=1)
    seats, training = PRODUCTS[2], PRODUCTS[6]
    specs = [
        (seats, Decimal(rng.randint(1, 10)), seats.unit_prices[cur], issue, end),
        (training, Decimal(1), training.unit_prices[cur], issue, issue),
    ]
    invoice_id = _next_id(conn, s.invoices)
    number = f"INV-{invoice_id:08d}"
    line_id = _next_id(conn, s.invoice_lines)
    entry_id = _next_id(conn, s.revenue_schedule_entries)
    line_rows: list[dict[str, Any]] = []
    entry_rows: list[dict[str, Any]] = []
    for line_no, (product, qty, unit, start, stop) in enumerate(specs, 1):
        amount = line_amount(qty, unit, ZERO, cur)
        line_rows.append(
            {
                "id": line_id,
                "invoice_id": invoice_id,
                "line_no": line_no,
                "product_id": product_ids[product.sku],
                "description": f"{product.name} (added)",
                "quantity": qty,
                "unit_price": unit,
                "discount": round_money(ZERO, cur),
                "amount": amount,
                "tax_rate": rate,
                "tax_amount": round_money(amount * rate, cur),
                "tax_jurisdiction": jurisdiction,
                "service_start": start,
                "service_end": stop,
                "updated_at": at,
            }
        )
        ratable = product.revenue_pattern == "ratable"
        for period, share in line_schedule(amount, ratable, start, stop, issue, cur):
            entry_rows.append(
                {
                    "id": entry_id,
                    "invoice_line_id": line_id,
                    "period": period,
                    "amount": share,
                    "status": "scheduled",
                    "recognized_on": None,
                    "updated_at": at,
                }
            )
            entries.append(entry_id)
            entry_id += 1
        lines.append(line_id)
        line_id += 1
    subtotal = sum((r["amount"] for r in line_rows), round_money(ZERO, cur))
    tax_total = sum((r["tax_amount"] for r in line_rows), round_money(ZERO, cur))
    conn.execute(
        s.invoices.insert(),
        [
            {
                "id": invoice_id,
                "number": number,
                "customer_id": customer_id,
                "billing_entity": cust["billing_entity"],
                "currency": cur,
                "status": "open",
                "issue_date": issue,
                "due_date": issue + timedelta(days=30),
                "subtotal": subtotal,
                "tax_total": tax_total,
                "total": subtotal + tax_total,
                "memo": None,
                "voided_at": None,
                "created_at": at,
                "updated_at": at,
            }
        ],
    )
    conn.execute(s.invoice_lines.insert(), line_rows)
    conn.execute(s.revenue_schedule_entries.insert(), entry_rows)
    return number
