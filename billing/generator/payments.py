"""Payments and refunds: payments by profile (prompt, late, partial, batcher, deadbeat), failed
and reversed attempts, processor fees, applications to invoices, over-payments refunded."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import ROUND_CEILING, Decimal

from billing.generator.dates import add_months, month_start
from billing.generator.rows import ZERO, Customer, Invoice, Rows
from core.money import round_money

# Card fees: rate plus a fixed amount per currency; ACH: a rate, capped; wire: a flat fee.
CARD_FIXED = {"USD": "0.30", "EUR": "0.25", "GBP": "0.20", "JPY": "40", "KWD": "0.100"}

ACH_CAP = {"USD": "5.00", "EUR": "5.00", "GBP": "4.00", "JPY": "700", "KWD": "1.500"}

WIRE_FEE = {"USD": "15.00", "EUR": "12.00", "GBP": "10.00", "JPY": "2000", "KWD": "4.500"}

# Over-payments are rounded up to a round number of this many major units.
ROUND_UP = {"USD": "100", "EUR": "100", "GBP": "100", "JPY": "10000", "KWD": "50"}


def pay(rows: Rows, cust: Customer, invoices: Sequence[Invoice]) -> None:
    """The customer's payments of its invoices, as its payment profile has them."""
    rng = rows.rng
    payable = [inv for inv in invoices if not inv.void and inv.balance > 0]
    if cust.profile == "batcher":
        if not payable:
            return
        day = add_months(month_start(payable[0].issue_date), 1).replace(day=20)
        while day <= rows.end:
            group = [
                (inv, inv.balance)
                for inv in payable
                if inv.balance > 0 and inv.issue_date + timedelta(days=5) <= day
            ]
            if group:
                payment(rows, cust, day, group)
            day = add_months(day, 2)
        return
    for n, inv in enumerate(payable):
        issue = inv.issue_date
        due = inv.row["due_date"]
        if cust.profile == "prompt":
            payment(
                rows,
                cust,
                issue + timedelta(days=rng.randint(5, max(5, cust.terms))),
                [(inv, inv.balance)],
            )
        elif cust.profile == "late":
            payment(rows, cust, due + timedelta(days=rng.randint(5, 40)), [(inv, inv.balance)])
        elif cust.profile == "partial":
            half = round_money(inv.balance / 2, cust.currency)
            payment(rows, cust, issue + timedelta(days=rng.randint(5, 15)), [(inv, half)])
            if inv.applied:
                payment(
                    rows, cust, issue + timedelta(days=rng.randint(30, 60)), [(inv, inv.balance)]
                )
        elif n == 0:  # a deadbeat pays its first invoice, then stops
            payment(rows, cust, due, [(inv, inv.balance)])


def payment(
    rows: Rows, cust: Customer, day: date, allocations: Sequence[tuple[Invoice, Decimal]]
) -> None:
    """Receive a payment for ``allocations`` on ``day`` (nothing if after the window)."""
    rng = rows.rng
    cur = cust.currency
    applied = sum((amount for _, amount in allocations), ZERO)
    if day > rows.end or applied <= 0:
        return
    if cust.method == "card" and rng.random() < 0.06:
        # The card is declined first; it goes through the next day.
        payment_row(rows, cust, day, applied, "failed", rows.ts(day), None)
        day += timedelta(days=1)
    elif cust.method == "ach" and rng.random() < 0.05 and day + timedelta(days=5) <= rows.end:
        # The debit is returned three days later; the customer pays again after that.
        made = rows.ts(day)
        payment_row(
            rows, cust, day, applied, "reversed", made, rows.ts(day + timedelta(days=3), after=made)
        )
        day += timedelta(days=5)
    if day > rows.end:
        return
    amount = applied
    overpaid = rng.random() < 0.06
    if overpaid:
        step = Decimal(ROUND_UP[cur])
        amount = round_money((applied / step).to_integral_value(ROUND_CEILING) * step, cur)
        if amount == applied:
            amount += step
    made = rows.ts(day)
    payment_id = payment_row(rows, cust, day, amount, "succeeded", made, None)
    for inv, part in allocations:
        rows.emit(
            "payment_applications",
            {
                "id": rows.next_id("payment_applications"),
                "payment_id": payment_id,
                "invoice_id": inv.row["id"],
                "amount": part,
                "applied_on": day,
                "updated_at": made,
            },
        )
        inv.applied += part
        inv.touch(made)
        if inv.balance <= 0:
            inv.settled_on = day
    if overpaid and rng.random() < 0.5:
        refund_day = day + timedelta(days=rng.randint(3, 14))
        if refund_day <= rows.end:
            refund(rows, cust, refund_day, amount - applied, payment_id=payment_id)


def payment_row(
    rows: Rows,
    cust: Customer,
    day: date,
    amount: Decimal,
    status: str,
    made: datetime,
    changed: datetime | None,
) -> int:
    cur = cust.currency
    fee = ZERO
    if status == "succeeded":
        if cust.method == "card":
            fee = amount * Decimal("0.029") + Decimal(CARD_FIXED[cur])
        elif cust.method == "ach":
            fee = min(amount * Decimal("0.008"), Decimal(ACH_CAP[cur]))
        elif cust.method == "wire":
            fee = Decimal(WIRE_FEE[cur])
    payment_id = rows.next_id("payments")
    rows.emit(
        "payments",
        {
            "id": payment_id,
            "reference": f"PAY-{payment_id:08d}",
            "customer_id": cust.id,
            "currency": cur,
            "amount": amount,
            "received_on": day,
            "method": cust.method,
            "processor_fee": round_money(fee, cur),
            "status": status,
            "created_at": made,
            "updated_at": changed or made,
        },
    )
    return payment_id


def refund(
    rows: Rows,
    cust: Customer,
    day: date,
    amount: Decimal,
    *,
    payment_id: int | None = None,
    credit_note_id: int | None = None,
) -> None:
    refund_id = rows.next_id("refunds")
    made = rows.ts(day)
    rows.emit(
        "refunds",
        {
            "id": refund_id,
            "reference": f"RF-{refund_id:08d}",
            "customer_id": cust.id,
            "payment_id": payment_id,
            "credit_note_id": credit_note_id,
            "currency": cust.currency,
            "amount": amount,
            "refunded_on": day,
            "created_at": made,
            "updated_at": made,
        },
    )
