"""Invoices: each month's lines (plan, seats, support, usage, onboarding, training), their
amounts, tax and revenue schedules, later corrections, and the final status."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal

from billing.catalog import PRODUCTS, CatalogProduct
from billing.generator.dates import add_months
from billing.generator.revenue import entries, line_schedule
from billing.generator.rows import ZERO, Customer, Invoice, Line, Rows
from core.money import round_money


def line_amount(quantity: Decimal, unit_price: Decimal, discount: Decimal, cur: str) -> Decimal:
    """A line's amount: quantity times unit price, less the discount, rounded."""
    return round_money(quantity * unit_price - discount, cur)


def price(rows: Rows, cust: Customer, product: CatalogProduct) -> Decimal:
    """The customer's unit price of ``product`` (negotiated for ratable products)."""
    listed = product.unit_prices[cust.currency]
    if cust.price_factor is None or product.revenue_pattern != "ratable":
        return listed
    # Negotiated prices carry more decimals than the currency: amounts round per line.
    return (listed * cust.price_factor).quantize(Decimal("0.0001"))


def month_invoice(rows: Rows, cust: Customer, m: int) -> Invoice | None:
    """The customer's invoice of month ``m`` of the window, if anything is billed then."""
    rng = rows.rng
    cur = cust.currency
    issue = add_months(rows.start, m).replace(day=cust.billing_day)
    specs: list[
        tuple[CatalogProduct, Decimal, Decimal, Decimal, date | None, date | None, str]
    ] = []
    if not cust.annual or (m - cust.signup) % 12 == 0:
        n = 12 if cust.annual else 1
        start, end = issue, add_months(issue, n) - timedelta(days=1)
        period = f"{start:%Y-%m-%d} to {end:%Y-%m-%d}"
        unit = price(rows, cust, cust.plan) * n
        # Annual plans get two months free; some customers have a negotiated discount.
        pct = cust.discount_pct + (Decimal(2) / Decimal(12) if cust.annual else ZERO)
        specs.append(
            (
                cust.plan,
                Decimal(1),
                unit,
                round_money(unit * pct, cur),
                start,
                end,
                f"{cust.plan.name}, {period}",
            )
        )
        if cust.seats:
            if m > cust.signup:
                cust.seats = max(1, cust.seats + rng.choice((-2, -1, 0, 0, 0, 0, 1, 3)))
            seats = PRODUCTS[2]
            specs.append(
                (
                    seats,
                    Decimal(cust.seats),
                    price(rows, cust, seats) * n,
                    ZERO,
                    start,
                    end,
                    f"{seats.name} x {cust.seats}, {period}",
                )
            )
        if cust.support:
            support = PRODUCTS[3]
            specs.append(
                (
                    support,
                    Decimal(1),
                    price(rows, cust, support) * n,
                    ZERO,
                    start,
                    end,
                    f"{support.name}, {period}",
                )
            )
    if cust.usage and m > cust.signup:
        usage = PRODUCTS[4]
        calls = Decimal(rng.randint(50, 900_000)).scaleb(-3)  # thousands of calls
        used = add_months(issue, -1)
        specs.append(
            (
                usage,
                calls,
                usage.unit_prices[cur],
                ZERO,
                None,
                None,
                f"API usage {used:%B %Y}: {calls} thousand calls",
            )
        )
    if m == cust.signup and cust.onboarding:
        onboarding = PRODUCTS[5]
        unit = onboarding.unit_prices[cur]
        discount = round_money(unit * Decimal("0.25"), cur) if rng.random() < 0.3 else ZERO
        specs.append((onboarding, Decimal(1), unit, discount, None, None, onboarding.name))
    if rng.random() < 0.05:
        training = PRODUCTS[6]
        days = Decimal(rng.choice((1, 1, 2)))
        specs.append(
            (
                training,
                days,
                training.unit_prices[cur],
                ZERO,
                issue,
                issue,
                f"{training.name} on {issue:%Y-%m-%d}",
            )
        )
    if not specs:
        return None
    return invoice(rows, cust, issue, specs)


def invoice(
    rows: Rows,
    cust: Customer,
    issue: date,
    specs: Sequence[
        tuple[CatalogProduct, Decimal, Decimal, Decimal, date | None, date | None, str]
    ],
) -> Invoice:
    rng = rows.rng
    cur = cust.currency
    invoice_id = rows.next_id("invoices")
    created_at = rows.ts(issue)
    inv = Invoice(row={}, lines=[])
    for line_no, (product, qty, unit, discount, start, end, text) in enumerate(specs, 1):
        amount = line_amount(qty, unit, discount, cur)
        tax = round_money(amount * cust.tax_rate, cur)
        line_id = rows.next_id("invoice_lines")
        ratable = product.revenue_pattern == "ratable"
        parts = line_schedule(amount, ratable, start, end, issue, cur)
        inv.lines.append(Line(line_id, product, amount, tax, cust.tax_rate, parts))
        inv.line_rows.append(
            {
                "id": line_id,
                "invoice_id": invoice_id,
                "line_no": line_no,
                "product_id": rows.product_ids[product.sku],
                "description": text,
                "quantity": qty,
                "unit_price": unit,
                "discount": discount,
                "amount": amount,
                "tax_rate": cust.tax_rate,
                "tax_amount": tax,
                "tax_jurisdiction": cust.jurisdiction,
                "service_start": start,
                "service_end": end,
                "updated_at": created_at,
            }
        )
        entries(rows, line_id, parts, created_at)
    subtotal = sum((line.amount for line in inv.lines), round_money(ZERO, cur))
    tax_total = sum((line.tax_amount for line in inv.lines), round_money(ZERO, cur))
    inv.row.update(
        {
            "id": invoice_id,
            "number": f"INV-{invoice_id:08d}",
            "customer_id": cust.id,
            "billing_entity": cust.entity.code,
            "currency": cur,
            "status": "open",
            "issue_date": issue,
            "due_date": issue + timedelta(days=cust.terms),
            "subtotal": subtotal,
            "tax_total": tax_total,
            "total": subtotal + tax_total,
            "memo": cust.po_number,
            "voided_at": None,
            "created_at": created_at,
            "updated_at": created_at,
        }
    )
    if rng.random() < 0.03:  # a line's description corrected a few days later
        edit_day = issue + timedelta(days=rng.randint(1, 10))
        if edit_day <= rows.end:
            row = inv.line_rows[rng.randrange(len(inv.line_rows))]
            row["description"] += " (corrected)"
            row["updated_at"] = rows.ts(edit_day, after=created_at)
            inv.touch(row["updated_at"])
    if rng.random() < 0.08:  # memo added after issue (a PO number arrives)
        edit_day = issue + timedelta(days=rng.randint(1, 20))
        if edit_day <= rows.end:
            inv.row["memo"] = f"PO {rng.randint(100000, 999999)} (added after issue)"
            inv.touch(rows.ts(edit_day, after=created_at))
    return inv


def finish(rows: Rows, cust: Customer, inv: Invoice) -> None:
    """Settle the invoice's status and write it with its lines."""
    if not inv.void:
        if inv.balance <= 0:
            inv.row["status"] = "paid"
        elif cust.profile == "deadbeat":
            written_off = inv.row["due_date"] + timedelta(days=60)
            if written_off <= rows.end:
                inv.row["status"] = "uncollectible"
                inv.touch(rows.ts(written_off, after=inv.row["updated_at"]))
    rows.emit("invoices", inv.row)
    for row in inv.line_rows:
        rows.emit("invoice_lines", row)
