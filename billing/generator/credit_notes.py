"""Credit notes and voids: invoices voided or credited before payment, paid invoices credited
later (most such credits refunded); each spread over the line's schedule as a reversal."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from billing.generator.dates import month_start
from billing.generator.payments import refund
from billing.generator.revenue import entries, reversal, split_weighted
from billing.generator.rows import ZERO, Customer, Invoice, Rows
from core.money import quantum, round_money

_CREDIT_REASONS_PARTIAL = ("Service outage credit", "Goodwill credit", "Price correction")

_CREDIT_REASONS_FULL = ("Billing error: invoice cancelled", "Order cancelled")


def decide_void_or_credit(rows: Rows, cust: Customer, inv: Invoice) -> None:
    """Before any payment, now and then void the invoice or credit part or all of it."""
    rng = rows.rng
    roll = rng.random()
    issue = inv.issue_date
    if roll < 0.03:
        day = issue + timedelta(days=rng.randint(0, 4))
        if day <= rows.end:
            voided_at = rows.ts(day, after=inv.row["created_at"])
            inv.void = True
            inv.row.update(status="void", voided_at=voided_at)
            inv.touch(voided_at)
            for line in inv.lines:
                entries(rows, line.id, reversal(line.parts, month_start(day)), voided_at)
    elif roll < 0.09:
        # Before any payment: a credit reduces what the customer owes.
        day = issue + timedelta(days=rng.randint(1, 3))
        if day <= rows.end:
            credit(rows, cust, inv, day, full=rng.random() < 0.3)


def credit(rows: Rows, cust: Customer, inv: Invoice, day: date, *, full: bool) -> int | None:
    """Issue a credit note against ``inv``; returns its id, or None if nothing is left."""
    rng = rows.rng
    cur = cust.currency
    if full:
        picks = [(line, line.amount - line.credited) for line in inv.lines]
        reason = rng.choice(_CREDIT_REASONS_FULL)
    else:
        line = inv.lines[rng.randrange(len(inv.lines))]
        pct = rng.choice((Decimal("0.10"), Decimal("0.25"), Decimal("0.50")))
        picks = [(line, round_money((line.amount - line.credited) * pct, cur))]
        reason = rng.choice(_CREDIT_REASONS_PARTIAL)
    picks = [(line, amount) for line, amount in picks if amount > 0]
    if not picks:
        return None
    note_id = rows.next_id("credit_notes")
    created_at = rows.ts(day, after=inv.row["created_at"])
    subtotal = tax_total = round_money(ZERO, cur)
    for line_no, (line, amount) in enumerate(picks, 1):
        left_tax = line.tax_amount - line.credited_tax
        if amount == line.amount - line.credited:
            tax = left_tax  # crediting what is left of the line takes all its tax
        else:
            tax = min(round_money(amount * line.tax_rate, cur), left_tax)
        line.credited += amount
        line.credited_tax += tax
        subtotal += amount
        tax_total += tax
        rows.emit(
            "credit_note_lines",
            {
                "id": rows.next_id("credit_note_lines"),
                "credit_note_id": note_id,
                "line_no": line_no,
                "invoice_line_id": line.id,
                "product_id": rows.product_ids[line.product.sku],
                "description": f"Credit: {line.product.name}",
                "amount": amount,
                "tax_amount": tax,
                "updated_at": created_at,
            },
        )
        # Spread the credit like the line itself, so each month loses its share.
        weights = [int(abs(part) / quantum(cur)) for _, part in line.parts]
        shares = split_weighted(amount, weights, cur)
        part_parts = [(p, sh) for (p, _), sh in zip(line.parts, shares, strict=True)]
        entries(rows, line.id, reversal(part_parts, month_start(day)), created_at)
    inv.credited += subtotal + tax_total
    inv.touch(created_at)
    rows.emit(
        "credit_notes",
        {
            "id": note_id,
            "number": f"CN-{note_id:08d}",
            "invoice_id": inv.row["id"],
            "customer_id": cust.id,
            "currency": cur,
            "status": "issued",
            "issue_date": day,
            "reason": reason,
            "subtotal": subtotal,
            "tax_total": tax_total,
            "total": subtotal + tax_total,
            "created_at": created_at,
            "updated_at": created_at,
        },
    )
    if inv.balance <= 0 and inv.settled_on is None:
        inv.settled_on = day
    return note_id


def late_credit(rows: Rows, cust: Customer, inv: Invoice) -> None:
    """Now and then a paid invoice is credited later; most such credits are refunded."""
    rng = rows.rng
    if inv.void or inv.settled_on is None or inv.applied == 0 or rng.random() >= 0.06:
        return
    day = inv.settled_on + timedelta(days=rng.randint(5, 30))
    if day > rows.end:
        return
    before = inv.credited
    note_id = credit(rows, cust, inv, day, full=rng.random() < 0.25)
    if note_id is not None and rng.random() < 0.6:
        refund_day = day + timedelta(days=rng.randint(1, 7))
        if refund_day <= rows.end:
            refund(rows, cust, refund_day, inv.credited - before, credit_note_id=note_id)
