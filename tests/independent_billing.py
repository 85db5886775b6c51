"""An independent billing database: its own DDL, its own rows, its own expected figures.

Nothing here comes from finsync's generator or test builders, and no expected figure comes from
finsync code: the tables are created with hand-written SQL (NUMERIC money columns on SQLite as
on PostgreSQL, no foreign keys or unique constraints, as views over a real billing schema may
be), the rows are written out one by one below, and ``Dataset`` holds figures computed from those
rows by this module's own arithmetic.

The month under test is October 2026 (``PERIOD``); billing has recognized revenue up to the end
of November, as a billing system would in early December.

Accounting policy assumed (the same as docs/accounting.md):

- Only valid records count; a broken record and every record that depends on it is left out of
  every figure and counted, per currency as billing holds it, under "left out".
- Invoiced and Tax: totals and tax of invoices issued in the month, except invoices voided in
  that month. Voided: totals of invoices issued earlier and voided in the month (void date =
  ``voided_at`` in the company's time zone, America/New_York; every void here is at noon UTC).
- Credited: credit notes with status ``issued`` issued in the month. Collected: payments with
  status ``succeeded`` received in the month (failed and reversed count nowhere). Refunded:
  refunds in the month, of payments and of credit notes alike. Net collected = Collected -
  Refunded.
- Recognized: every valid schedule entry of the month (ratable and point-in-time, reversals
  included). Deferred (ratable lines) at a day D = ratable line amounts of invoices issued by D
  - ratable credit-note lines issued by D - (ratable line amounts less their credits) of
  invoices voided by D - ratable schedule entries of months up to D's month. Opening is that
  at the day before the month, closing at its last day.
- Open receivable at the last day: per valid invoice issued by then and not voided by then,
  total - applications of succeeded payments applied by then - issued credit notes by then;
  a positive amount goes into the bucket of its days past due (<= 0 current, 1-30, 31-60,
  61-90, 90+). A negative one is not aging: it is a customer credit balance.
- Credit balance per customer and currency at the last day: unapplied cash of succeeded
  payments received by then + the over-credit of invoices whose open amount is negative -
  refunds by then.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import sqlalchemy as sa

PERIOD = date(2026, 10, 1)
PERIOD_END = date(2026, 10, 31)
#: Billing has closed (recognized) every month up to this one.
RECOGNIZED_THROUGH = date(2026, 11, 1)
SCALE = {"USD": 2, "JPY": 0, "KWD": 3}
BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")
STAMP = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)

DDL = """
CREATE TABLE customers (id BIGINT PRIMARY KEY, account_number TEXT, name TEXT, email TEXT,
  billing_entity TEXT, currency CHAR(3), country CHAR(2), region TEXT, city TEXT,
  postal_code TEXT, address_line1 TEXT, tax_exempt BOOLEAN, exemption_number TEXT,
  created_at {ts}, updated_at {ts});
CREATE TABLE products (id BIGINT PRIMARY KEY, sku TEXT, name TEXT, product_family TEXT,
  revenue_pattern TEXT, tax_code TEXT, updated_at {ts});
CREATE TABLE invoices (id BIGINT PRIMARY KEY, number TEXT, customer_id BIGINT,
  billing_entity TEXT, currency CHAR(3), status TEXT, issue_date DATE, due_date DATE,
  subtotal {money}, tax_total {money}, total {money}, memo TEXT, voided_at {ts},
  created_at {ts}, updated_at {ts});
CREATE TABLE invoice_lines (id BIGINT PRIMARY KEY, invoice_id BIGINT, line_no INTEGER,
  product_id BIGINT, description TEXT, quantity {money}, unit_price {money}, discount {money},
  amount {money}, tax_rate {money}, tax_amount {money}, tax_jurisdiction TEXT,
  service_start DATE, service_end DATE, updated_at {ts});
CREATE TABLE credit_notes (id BIGINT PRIMARY KEY, number TEXT, invoice_id BIGINT,
  customer_id BIGINT, currency CHAR(3), status TEXT, issue_date DATE, reason TEXT,
  subtotal {money}, tax_total {money}, total {money}, created_at {ts}, updated_at {ts});
CREATE TABLE credit_note_lines (id BIGINT PRIMARY KEY, credit_note_id BIGINT, line_no INTEGER,
  invoice_line_id BIGINT, product_id BIGINT, description TEXT, amount {money},
  tax_amount {money}, updated_at {ts});
CREATE TABLE payments (id BIGINT PRIMARY KEY, reference TEXT, customer_id BIGINT,
  currency CHAR(3), amount {money}, received_on DATE, method TEXT, processor_fee {money},
  status TEXT, created_at {ts}, updated_at {ts});
CREATE TABLE payment_applications (id BIGINT PRIMARY KEY, payment_id BIGINT,
  invoice_id BIGINT, amount {money}, applied_on DATE, updated_at {ts});
CREATE TABLE refunds (id BIGINT PRIMARY KEY, reference TEXT, customer_id BIGINT,
  payment_id BIGINT, credit_note_id BIGINT, currency CHAR(3), amount {money},
  refunded_on DATE, created_at {ts}, updated_at {ts});
CREATE TABLE revenue_schedule_entries (id BIGINT PRIMARY KEY, invoice_line_id BIGINT,
  period DATE, amount {money}, status TEXT, recognized_on DATE, updated_at {ts});
"""

D = Decimal
_NIL = Decimal(0)


def _month_end(day: date) -> date:
    following = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return following - timedelta(days=1)


def _months(start: date, end: date) -> list[date]:
    out, month = [], start.replace(day=1)
    while month <= end:
        out.append(month)
        month = _month_end(month) + timedelta(days=1)
    return out


def _round(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(D(1).scaleb(-SCALE.get(currency, 2)), rounding=ROUND_HALF_UP)


@dataclass
class CurrencyFigures:
    """What the month's workbook must show for one currency (valid records only)."""

    invoiced: Decimal = _NIL
    tax: Decimal = _NIL
    voided: Decimal = _NIL
    credited: Decimal = _NIL
    collected: Decimal = _NIL
    refunded: Decimal = _NIL
    recognized: Decimal = _NIL
    deferred_opening: Decimal = _NIL
    deferred_closing: Decimal = _NIL
    aging: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(BUCKETS, D(0)))

    @property
    def net_collected(self) -> Decimal:
        """Collected less refunded."""
        return self.collected - self.refunded


@dataclass
class Dataset:
    """The rows written and what finsync must make of them."""

    rows: dict[str, list[dict[str, Any]]]
    #: (kind, id) of every record validation must reject -> the field its message names.
    rejected: dict[tuple[str, int], str]
    figures: dict[str, CurrencyFigures]
    #: (account number, currency) -> what the company owes the customer at the month's end.
    credit_balances: dict[tuple[str, str], Decimal]
    #: currency as billing holds it -> (records left out, their money: totals of invoices,
    #: credit notes, payments and refunds; schedule entries and customers add to the count).
    left_out: dict[str, tuple[int, Decimal]]

    def valid(self, table: str) -> list[dict[str, Any]]:
        """The rows of ``table`` that are not rejected (for tables of a rejection kind)."""
        kind = _KIND_OF_TABLE[table]
        return [r for r in self.rows[table] if (kind, r["id"]) not in self.rejected]

    def netsuite_expectation(self) -> dict[str, dict[str, Decimal]]:
        """What the NetSuite sandbox must hold after a sync: per record type, external number ->
        amount (an invoice's total, zero once void; a payment's amount; a refund's amount)."""
        invoices = {
            r["number"]: D(0) if r["status"] == "void" else r["total"]
            for r in self.valid("invoices")
        }
        notes = {r["number"]: r["total"] for r in self.valid("credit_notes")}
        payments = {
            r["reference"]: r["amount"]
            for r in self.valid("payments")
            if r["status"] == "succeeded"
        }
        refunds = {r["reference"]: r["amount"] for r in self.valid("refunds")}
        customers = {r["account_number"]: D(0) for r in self.valid("customers")}
        return {
            "customer": customers,
            "invoice": invoices,
            "creditMemo": notes,
            "customerPayment": payments,
            "customerRefund": refunds,
        }


_KIND_OF_TABLE = {
    "customers": "customer",
    "invoices": "invoice",
    "credit_notes": "credit_note",
    "payments": "payment",
    "refunds": "refund",
    "revenue_schedule_entries": "revenue_entry",
}


class _Rows:
    """Collects rows, then writes them with the dialect's literal forms."""

    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.rejected: dict[tuple[str, int], str] = {}

    def add(self, table: str, **row: Any) -> dict[str, Any]:
        row.setdefault("updated_at", STAMP)
        if table in ("customers", "invoices", "credit_notes", "payments", "refunds"):
            row.setdefault("created_at", STAMP)
        self.rows[table].append(row)
        return row

    def broken(self, kind: str, record_id: int, field_name: str) -> None:
        self.rejected[(kind, record_id)] = field_name


def _customers(rows: _Rows) -> None:
    def customer(cid: int, account: str, name: str, entity: str, cur: str, **extra: Any) -> None:
        address = {
            "USD": ("US", "CA", "San Francisco", "94105", "1 Market St"),
            "JPY": ("JP", None, "Tokyo", "100-0001", "1-1 Chiyoda"),
            "KWD": ("KW", None, "Kuwait City", "13001", "Gulf Road 5"),
        }.get(cur.upper(), ("US", "CA", "San Francisco", "94105", "1 Market St"))
        row: dict[str, Any] = {
            "id": cid,
            "account_number": account,
            "name": name,
            "email": f"ap+{cid}@example.com",
            "billing_entity": entity,
            "currency": cur,
            "country": address[0],
            "region": address[1],
            "city": address[2],
            "postal_code": address[3],
            "address_line1": address[4],
            "tax_exempt": False,
            "exemption_number": None,
        }
        row.update(extra)
        rows.add("customers", **row)

    customer(50001, "IB-C1", "=1+1 Holdings", "acme-us", "USD")
    customer(50002, "IB-C2", "@SUM(A1) Labs", "acme-us", "USD")
    customer(50003, "IB-C3", "株式会社テスト商事", "acme-jp", "JPY")
    customer(50004, "IB-C4", "شركة الخليج للتقنية", "acme-kw", "KWD")
    customer(
        50005,
        "IB-C5",
        "Ζήτα Analytics",
        "acme-us",
        "USD",
        tax_exempt=True,
        exemption_number="CA-EX-2291",
    )
    customer(50006, "IB-C6", "Nowhere Entity LLC", "acme-zz", "USD")
    rows.broken("customer", 50006, "billing_entity")
    customer(50007, "IB-C7", "   ", "acme-us", "USD")
    rows.broken("customer", 50007, "name")


PRODUCTS = {
    7001: ("plat-pro", "platform", "ratable", "SW054000"),
    7002: ("support-prem", "support", "ratable", "SW054000"),
    7003: ("onboarding", "services", "point_in_time", "S0000000"),
    7004: ("training", "services", "ratable", "S0000000"),
}


class _Invoices:
    """Writes invoices with their lines and schedules; ids are handed out from 900001 on."""

    def __init__(self, rows: _Rows) -> None:
        self.rows = rows
        self.next_line = 910001
        self.next_entry = 970001
        self.lines: dict[int, dict[str, Any]] = {}

    def invoice(
        self,
        iid: int,
        number: str,
        customer_id: int,
        cur: str,
        issued: date,
        lines: list[dict[str, Any]],
        *,
        entity: str = "acme-us",
        due: date | None = None,
        voided_on: date | None = None,
        status: str | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        written = []
        for no, spec in enumerate(lines, start=1):
            qty, price = D(spec.get("qty", "1")), D(spec["price"])
            discount = D(spec.get("discount", "0"))
            money_cur = cur if cur in SCALE else "USD"
            amount = spec.get("amount") or _round(qty * price - discount, money_cur)
            rate = D(spec.get("rate", "0"))
            tax = spec.get("tax") or _round(amount * rate, money_cur)
            line = {
                "id": self.next_line,
                "invoice_id": iid,
                "line_no": no,
                "product_id": spec.get("product", 7003),
                "description": spec.get("description", f"{number} line {no}"),
                "quantity": qty,
                "unit_price": price,
                "discount": discount,
                "amount": D(amount),
                "tax_rate": rate,
                "tax_amount": D(tax),
                "tax_jurisdiction": "US-CA" if cur.upper() == "USD" else None,
                "service_start": spec.get("start"),
                "service_end": spec.get("end"),
            }
            self.next_line += 1
            self.rows.add("invoice_lines", **line)
            self.lines[line["id"]] = line
            written.append(line)
        subtotal = sum((li["amount"] for li in written), D(0))
        tax_total = sum((li["tax_amount"] for li in written), D(0))
        row: dict[str, Any] = {
            "id": iid,
            "number": number,
            "customer_id": customer_id,
            "billing_entity": entity,
            "currency": cur,
            "status": status or ("void" if voided_on else "open"),
            "issue_date": issued,
            "due_date": due or issued + timedelta(days=30),
            "subtotal": subtotal,
            "tax_total": tax_total,
            "total": subtotal + tax_total,
            "memo": f"PO {number}",
            "voided_at": datetime.combine(voided_on, datetime.min.time(), UTC) + timedelta(hours=12)
            if voided_on
            else None,
        }
        row.update(overrides or {})
        self.rows.add("invoices", **row)
        return row

    def entry(self, line_id: int, month: date, amount: str | Decimal) -> int:
        eid = self.next_entry
        self.next_entry += 1
        recognized = month <= RECOGNIZED_THROUGH
        self.rows.add(
            "revenue_schedule_entries",
            id=eid,
            invoice_line_id=line_id,
            period=month,
            amount=D(amount),
            status="recognized" if recognized else "scheduled",
            recognized_on=_month_end(month) if recognized else None,
        )
        return eid

    def line_of(self, invoice_id: int, line_no: int = 1) -> int:
        return next(
            li["id"]
            for li in self.lines.values()
            if li["invoice_id"] == invoice_id and li["line_no"] == line_no
        )


def _valid_invoices(inv: _Invoices) -> None:
    # 12 months of platform, partly paid by P-1001.
    inv.invoice(
        900001,
        "IND-1001",
        50001,
        "USD",
        date(2026, 10, 1),
        [
            {
                "product": 7001,
                "qty": "12",
                "price": "100.00",
                "rate": "0.0725",
                "start": date(2026, 10, 1),
                "end": date(2027, 9, 30),
            }
        ],
    )
    for month in _months(date(2026, 10, 1), date(2027, 9, 30)):
        inv.entry(inv.line_of(900001), month, "100.00")
    # Point in time, tax rounded half-up (54.375 -> 54.38); paid by the multi-invoice P-1002.
    inv.invoice(
        900002,
        "IND-1002",
        50001,
        "USD",
        date(2026, 10, 5),
        [{"product": 7003, "price": "750.00", "rate": "0.0725"}],
        status="paid",
    )
    inv.entry(inv.line_of(900002), date(2026, 10, 1), "750.00")
    # Service period crossing the month: 17 of 31 days in October, 14 in November.
    inv.invoice(
        900003,
        "IND-1003",
        50001,
        "USD",
        date(2026, 10, 15),
        [
            {
                "product": 7001,
                "price": "310.00",
                "start": date(2026, 10, 15),
                "end": date(2026, 11, 14),
            }
        ],
        status="paid",
    )
    inv.entry(inv.line_of(900003), date(2026, 10, 1), "170.00")
    inv.entry(inv.line_of(900003), date(2026, 11, 1), "140.00")
    # A one-day training, over-paid by P-1003 (71.00 unapplied, 50.00 of it refunded).
    inv.invoice(
        900004,
        "IND-1004",
        50001,
        "USD",
        date(2026, 10, 22),
        [
            {
                "product": 7004,
                "price": "400.00",
                "rate": "0.0725",
                "start": date(2026, 10, 22),
                "end": date(2026, 10, 22),
            }
        ],
        status="paid",
    )
    inv.entry(inv.line_of(900004), date(2026, 10, 1), "400.00")
    # A zero-amount invoice (a free month).
    inv.invoice(
        900005,
        "IND-1005",
        50002,
        "USD",
        date(2026, 10, 3),
        [
            {
                "product": 7001,
                "price": "0.00",
                "start": date(2026, 10, 1),
                "end": date(2026, 10, 31),
            }
        ],
        status="paid",
    )
    inv.entry(inv.line_of(900005), date(2026, 10, 1), "0.00")
    # Credited in full (CN-1001) in its first month: every month reversed in its own month.
    inv.invoice(
        900006,
        "IND-1006",
        50002,
        "USD",
        date(2026, 10, 2),
        [
            {
                "product": 7001,
                "qty": "3",
                "price": "100.00",
                "rate": "0.0725",
                "start": date(2026, 10, 1),
                "end": date(2026, 12, 31),
            }
        ],
    )
    for month in _months(date(2026, 10, 1), date(2026, 12, 31)):
        inv.entry(inv.line_of(900006), month, "100.00")
        inv.entry(inv.line_of(900006), month, "-100.00")
    # Paid (P-1004), then credited in part (CN-1002, 20.00 a month), the credit refunded in part.
    inv.invoice(
        900007,
        "IND-1007",
        50002,
        "USD",
        date(2026, 10, 1),
        [
            {
                "product": 7002,
                "qty": "6",
                "price": "100.00",
                "start": date(2026, 10, 1),
                "end": date(2027, 3, 31),
            }
        ],
        status="paid",
    )
    for month in _months(date(2026, 10, 1), date(2027, 3, 31)):
        inv.entry(inv.line_of(900007), month, "100.00")
        inv.entry(inv.line_of(900007), month, "-20.00")
    # Voided in the month it was issued: counts nowhere.
    inv.invoice(
        900008,
        "IND-1008",
        50001,
        "USD",
        date(2026, 10, 6),
        [{"product": 7003, "price": "200.00", "rate": "0.0725"}],
        voided_on=date(2026, 10, 9),
    )
    inv.entry(inv.line_of(900008), date(2026, 10, 1), "200.00")
    inv.entry(inv.line_of(900008), date(2026, 10, 1), "-200.00")
    # Issued in September, voided in October after September's close: September's revenue is
    # reversed in October, the later months in their own months.
    inv.invoice(
        900009,
        "IND-1009",
        50001,
        "USD",
        date(2026, 9, 10),
        [
            {
                "product": 7001,
                "qty": "4",
                "price": "100.00",
                "rate": "0.0725",
                "start": date(2026, 9, 1),
                "end": date(2026, 12, 31),
            }
        ],
        voided_on=date(2026, 10, 12),
    )
    line = inv.line_of(900009)
    for month in _months(date(2026, 9, 1), date(2026, 12, 31)):
        inv.entry(line, month, "100.00")
    for month in (date(2026, 10, 1), date(2026, 10, 1), date(2026, 11, 1), date(2026, 12, 1)):
        inv.entry(line, month, "-100.00")
    # JPY, issued in October and voided in November, after October's close.
    inv.invoice(
        900010,
        "IND-1010",
        50003,
        "JPY",
        date(2026, 10, 8),
        [
            {
                "product": 7001,
                "qty": "2",
                "price": "15000",
                "rate": "0.10",
                "start": date(2026, 10, 1),
                "end": date(2026, 11, 30),
            }
        ],
        entity="acme-jp",
        voided_on=date(2026, 11, 5),
    )
    line = inv.line_of(900010)
    for amount in ("15000", "-15000"):
        inv.entry(line, date(2026, 10, 1) if amount == "15000" else date(2026, 11, 1), amount)
    inv.entry(line, date(2026, 11, 1), "15000")
    inv.entry(line, date(2026, 11, 1), "-15000")
    # JPY point in time (12345.7 of tax rounds to 12346), partly paid by P-1005.
    inv.invoice(
        900011,
        "IND-1011",
        50003,
        "JPY",
        date(2026, 10, 14),
        [{"product": 7003, "price": "123457", "rate": "0.10"}],
        entity="acme-jp",
    )
    inv.entry(inv.line_of(900011), date(2026, 10, 1), "123457")
    # KWD, three decimals, over-paid by P-1006.
    inv.invoice(
        900012,
        "IND-1012",
        50004,
        "KWD",
        date(2026, 10, 1),
        [
            {
                "product": 7001,
                "qty": "3",
                "price": "12.345",
                "start": date(2026, 10, 1),
                "end": date(2026, 12, 31),
            }
        ],
        entity="acme-kw",
        status="paid",
    )
    for month in _months(date(2026, 10, 1), date(2026, 12, 31)):
        inv.entry(inv.line_of(900012), month, "12.345")
    # KWD from August, unpaid: 62 days past due at October's end.
    inv.invoice(
        900013,
        "IND-1013",
        50004,
        "KWD",
        date(2026, 8, 15),
        [{"product": 7003, "price": "5.250"}],
        entity="acme-kw",
        due=date(2026, 8, 30),
    )
    inv.entry(inv.line_of(900013), date(2026, 8, 1), "5.250")
    # A tax-exempt customer's September invoice, partly paid in September: 46 days past due.
    inv.invoice(
        900014,
        "IND-1014",
        50005,
        "USD",
        date(2026, 9, 1),
        [{"product": 7003, "price": "1000.00"}],
        due=date(2026, 9, 15),
    )
    inv.entry(inv.line_of(900014), date(2026, 9, 1), "1000.00")
    # Valid invoices whose schedules are broken (the entries are rejected, not the invoices).
    inv.invoice(
        900015,
        "IND-1015",
        50002,
        "USD",
        date(2026, 10, 1),
        [
            {
                "product": 7001,
                "qty": "2",
                "price": "100.00",
                "start": date(2026, 10, 1),
                "end": date(2026, 11, 30),
            }
        ],
    )
    inv.entry(inv.line_of(900015), date(2026, 10, 1), "100.00")
    outside = inv.entry(inv.line_of(900015), date(2026, 12, 1), "100.00")
    inv.rows.broken("revenue_entry", outside, "period")
    inv.invoice(
        900016,
        "IND-1016",
        50002,
        "USD",
        date(2026, 10, 1),
        [
            {
                "product": 7002,
                "qty": "2",
                "price": "100.00",
                "start": date(2026, 10, 1),
                "end": date(2026, 11, 30),
            }
        ],
    )
    for month, amount in ((date(2026, 10, 1), "100.00"), (date(2026, 11, 1), "90.00")):
        eid = inv.entry(inv.line_of(900016), month, amount)
        inv.rows.broken("revenue_entry", eid, "amount")


def _broken_invoices(inv: _Invoices) -> None:
    base = [{"product": 7003, "price": "100.00", "rate": "0.0725"}]
    day = date(2026, 10, 16)
    broken = inv.rows.broken
    row = inv.invoice(900101, "IND-B01", 50001, "XXX", day, base)
    broken("invoice", row["id"], "currency")
    eid = inv.entry(inv.line_of(900101), date(2026, 10, 1), "100.00")
    broken("revenue_entry", eid, "invoice_line_id")
    broken("invoice", inv.invoice(900102, "IND-B02", 50001, "usd", day, base)["id"], "currency")
    row = inv.invoice(
        900103, "IND-B03", 50001, "USD", day, base, overrides={"total": D("1000000000002010.00")}
    )
    broken("invoice", row["id"], "total")
    row = inv.invoice(900104, "IND-B04", 50006, "USD", day, base, entity="acme-zz")
    broken("invoice", row["id"], "customer_id")
    broken("invoice", inv.invoice(900105, "IND-B05", 999999, "USD", day, base)["id"], "customer_id")
    row = inv.invoice(900106, "IND-B06", 50001, "USD", day, [{**base[0], "product": 7999}])
    broken("invoice", row["id"], "line 1.product_id")
    row = inv.invoice(900107, "IND-B07", 50001, "USD", day, base, due=date(2026, 10, 1))
    broken("invoice", row["id"], "due_date")
    reversed_period = {
        "product": 7001,
        "price": "100.00",
        "start": date(2026, 10, 31),
        "end": date(2026, 10, 1),
    }
    row = inv.invoice(900108, "IND-B08", 50001, "USD", day, [reversed_period])
    broken("invoice", row["id"], "line 1.service_end")
    row = inv.invoice(
        900109,
        "IND-B09",
        50001,
        "USD",
        day,
        [{"product": 7003, "price": "12.345", "amount": D("12.345")}],
    )
    broken("invoice", row["id"], "line 1.amount")
    row = inv.invoice(900110, "IND-B10", 50001, "USD", day, [{**base[0], "tax": D("9.00")}])
    broken("invoice", row["id"], "line 1.tax_amount")
    row = inv.invoice(
        900111,
        "IND-B11",
        50001,
        "USD",
        day,
        base,
        overrides={"subtotal": D("150.00"), "total": D("157.25")},
    )
    broken("invoice", row["id"], "subtotal")
    broken("invoice", inv.invoice(900112, "IND-1002", 50001, "USD", day, base)["id"], "number")


def _credit_notes(rows: _Rows, inv: _Invoices) -> None:
    next_line = iter(range(930001, 930100))

    def note(
        nid: int,
        number: str,
        invoice_id: int,
        customer_id: int,
        cur: str,
        issued: date,
        lines: list[tuple[int | None, int, str, str]],
    ) -> None:
        subtotal = tax_total = D(0)
        for no, (invoice_line_id, product, amount, tax) in enumerate(lines, start=1):
            rows.add(
                "credit_note_lines",
                id=next(next_line),
                credit_note_id=nid,
                line_no=no,
                invoice_line_id=invoice_line_id,
                product_id=product,
                description=f"credit {number}",
                amount=D(amount),
                tax_amount=D(tax),
            )
            subtotal += D(amount)
            tax_total += D(tax)
        rows.add(
            "credit_notes",
            id=nid,
            number=number,
            invoice_id=invoice_id,
            customer_id=customer_id,
            currency=cur,
            status="issued",
            issue_date=issued,
            reason="service credit",
            subtotal=subtotal,
            tax_total=tax_total,
            total=subtotal + tax_total,
        )

    note(
        920001,
        "CN-1001",
        900006,
        50002,
        "USD",
        date(2026, 10, 20),
        [(inv.line_of(900006), 7001, "300.00", "21.75")],
    )
    note(
        920002,
        "CN-1002",
        900007,
        50002,
        "USD",
        date(2026, 10, 15),
        [(inv.line_of(900007), 7002, "120.00", "0.00")],
    )
    note(
        920101,
        "CN-B01",
        900002,
        50001,
        "USD",
        date(2026, 10, 21),
        [(inv.line_of(900002), 7003, "900.00", "0.00")],
    )
    rows.broken("credit_note", 920101, "total")
    note(
        920102,
        "CN-B02",
        900103,
        50001,
        "USD",
        date(2026, 10, 21),
        [(inv.line_of(900103), 7003, "10.00", "0.00")],
    )
    rows.broken("credit_note", 920102, "invoice_id")


def _payments(rows: _Rows) -> None:
    next_app = iter(range(950001, 950100))

    def payment(
        pid: int,
        reference: str,
        customer_id: int,
        cur: str,
        amount: str,
        received: date,
        applications: list[tuple[int, str]],
        status: str = "succeeded",
    ) -> None:
        rows.add(
            "payments",
            id=pid,
            reference=reference,
            customer_id=customer_id,
            currency=cur,
            amount=D(amount),
            received_on=received,
            method="wire",
            processor_fee=D(0),
            status=status,
        )
        for invoice_id, applied in applications:
            rows.add(
                "payment_applications",
                id=next(next_app),
                payment_id=pid,
                invoice_id=invoice_id,
                amount=D(applied),
                applied_on=received,
            )

    payment(940001, "P-1001", 50001, "USD", "500.00", date(2026, 10, 10), [(900001, "500.00")])
    payment(
        940002,
        "P-1002",
        50001,
        "USD",
        "1114.38",
        date(2026, 10, 20),
        [(900002, "804.38"), (900003, "310.00")],
    )
    payment(940003, "P-1003", 50001, "USD", "500.00", date(2026, 10, 25), [(900004, "429.00")])
    payment(940004, "P-1004", 50002, "USD", "600.00", date(2026, 10, 5), [(900007, "600.00")])
    payment(940005, "P-1005", 50003, "JPY", "100000", date(2026, 10, 30), [(900011, "100000")])
    payment(940006, "P-1006", 50004, "KWD", "40.000", date(2026, 10, 20), [(900012, "37.035")])
    payment(940007, "P-1007", 50005, "USD", "250.00", date(2026, 9, 20), [(900014, "250.00")])
    payment(940008, "P-1008", 50001, "USD", "300.00", date(2026, 10, 18), [], status="failed")
    payment(940101, "P-B01", 50005, "USD", "5.00", date(2026, 10, 26), [(900014, "50.00")])
    rows.broken("payment", 940101, "applications")
    payment(940102, "P-B02", 50002, "USD", "10.00", date(2026, 10, 26), [(900001, "10.00")])
    rows.broken("payment", 940102, "application 950010.invoice_id")
    payment(940103, "P-B03", 50001, "USD", "214.50", date(2026, 10, 26), [(900008, "214.50")])
    rows.broken("payment", 940103, "application 950011.invoice_id")


def _refunds(rows: _Rows) -> None:
    def refund(
        rid: int,
        reference: str,
        customer_id: int,
        cur: str,
        amount: str,
        day: date,
        *,
        payment: int | None = None,
        credit_note: int | None = None,
    ) -> None:
        rows.add(
            "refunds",
            id=rid,
            reference=reference,
            customer_id=customer_id,
            payment_id=payment,
            credit_note_id=credit_note,
            currency=cur,
            amount=D(amount),
            refunded_on=day,
        )

    refund(960001, "R-1001", 50001, "USD", "50.00", date(2026, 10, 28), payment=940003)
    refund(960002, "R-1002", 50002, "USD", "100.00", date(2026, 10, 30), credit_note=920002)
    refund(960003, "R-1003", 50004, "KWD", "1.000", date(2026, 10, 25), payment=940006)
    refund(960101, "R-B01", 50001, "USD", "10.00", date(2026, 10, 29), payment=940001)
    rows.broken("refund", 960101, "amount")
    refund(960102, "R-B02", 50002, "USD", "30.00", date(2026, 10, 31), credit_note=920002)
    rows.broken("refund", 960102, "amount")


def _sql_value(value: Any, dialect: str) -> Any:
    if dialect != "sqlite":
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    return value


def _write(engine: sa.Engine, rows: dict[str, list[dict[str, Any]]]) -> None:
    dialect = engine.dialect.name
    ts = "TIMESTAMP" if dialect == "sqlite" else "TIMESTAMP WITH TIME ZONE"
    money = "NUMERIC" if dialect == "sqlite" else "NUMERIC(24, 6)"
    with engine.begin() as conn:
        for statement in DDL.format(ts=ts, money=money).split(";"):
            if statement.strip():
                conn.exec_driver_sql(statement)
        for table, table_rows in rows.items():
            columns = list(table_rows[0])
            sql = sa.text(
                f"INSERT INTO {table} ({', '.join(columns)}) "
                f"VALUES ({', '.join(':' + c for c in columns)})"
            )
            conn.execute(
                sql, [{c: _sql_value(r.get(c), dialect) for c in columns} for r in table_rows]
            )


def build_independent_billing(engine: sa.Engine) -> Dataset:
    """Create the tables in ``engine``'s database, write the rows, return the expectations."""
    rows = _Rows()
    _customers(rows)
    for pid, (sku, family, pattern, tax_code) in PRODUCTS.items():
        rows.add(
            "products",
            id=pid,
            sku=sku,
            name=sku.replace("-", " ").title(),
            product_family=family,
            revenue_pattern=pattern,
            tax_code=tax_code,
        )
    invoices = _Invoices(rows)
    _valid_invoices(invoices)
    _broken_invoices(invoices)
    _credit_notes(rows, invoices)
    _payments(rows)
    _refunds(rows)
    _write(engine, rows.rows)
    dataset = Dataset(
        rows=dict(rows.rows),
        rejected=dict(rows.rejected),
        figures={},
        credit_balances={},
        left_out={},
    )
    _expect(dataset, invoices.lines)
    return dataset


# -- the expected figures, by this module's own arithmetic ------------------------------------


def _void_day(invoice: dict[str, Any]) -> date | None:
    stamp = invoice["voided_at"]
    return None if stamp is None else (stamp - timedelta(hours=5)).date()  # America/New_York


def _expect(ds: Dataset, lines: dict[int, dict[str, Any]]) -> None:
    invoices = {r["id"]: r for r in ds.valid("invoices")}
    notes = [r for r in ds.valid("credit_notes") if r["status"] == "issued"]
    payments = {r["id"]: r for r in ds.valid("payments") if r["status"] == "succeeded"}
    refunds = ds.valid("refunds")
    entries = ds.valid("revenue_schedule_entries")
    products = {pid: spec[2] for pid, spec in PRODUCTS.items()}
    figures: dict[str, CurrencyFigures] = defaultdict(CurrencyFigures)

    def in_month(day: date | None) -> bool:
        return day is not None and PERIOD <= day <= PERIOD_END

    for inv in invoices.values():
        fig = figures[inv["currency"]]
        void = _void_day(inv)
        if in_month(inv["issue_date"]) and not in_month(void):
            fig.invoiced += inv["total"]
            fig.tax += inv["tax_total"]
        if in_month(void) and inv["issue_date"] < PERIOD:
            fig.voided += inv["total"]
    for note in notes:
        if in_month(note["issue_date"]):
            figures[note["currency"]].credited += note["total"]
    for pay in payments.values():
        if in_month(pay["received_on"]):
            figures[pay["currency"]].collected += pay["amount"]
    for ref in refunds:
        if in_month(ref["refunded_on"]):
            figures[ref["currency"]].refunded += ref["amount"]
    line_currency = {
        lid: invoices[li["invoice_id"]]["currency"]
        for lid, li in lines.items()
        if li["invoice_id"] in invoices
    }
    for entry in entries:
        if entry["period"] == PERIOD:
            figures[line_currency[entry["invoice_line_id"]]].recognized += entry["amount"]

    note_lines = [
        li
        for li in ds.rows["credit_note_lines"]
        if li["credit_note_id"] in {n["id"] for n in notes}
    ]
    note_day = {n["id"]: n["issue_date"] for n in notes}

    def deferred(day: date) -> dict[str, Decimal]:
        out: dict[str, Decimal] = defaultdict(Decimal)
        credited_by_line: dict[int, Decimal] = defaultdict(Decimal)
        for li in note_lines:
            line = lines.get(li["invoice_line_id"])
            if line is None or products[line["product_id"]] != "ratable":
                continue
            if note_day[li["credit_note_id"]] <= day:
                out[line_currency[line["id"]]] -= li["amount"]
                credited_by_line[line["id"]] += li["amount"]
        for lid, line in lines.items():
            inv = invoices.get(line["invoice_id"])
            if inv is None or products.get(line["product_id"]) != "ratable":
                continue
            if inv["issue_date"] <= day:
                out[inv["currency"]] += line["amount"]
            void = _void_day(inv)
            if void is not None and void <= day:
                out[inv["currency"]] -= line["amount"] - credited_by_line[lid]
        for entry in entries:
            line = lines[entry["invoice_line_id"]]
            if products[line["product_id"]] == "ratable" and entry["period"] <= day:
                out[line_currency[line["id"]]] -= entry["amount"]
        return out

    for cur, amount in deferred(PERIOD - timedelta(days=1)).items():
        figures[cur].deferred_opening = amount
    for cur, amount in deferred(PERIOD_END).items():
        figures[cur].deferred_closing = amount

    applied: dict[int, Decimal] = defaultdict(Decimal)
    unapplied: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    for app in ds.rows["payment_applications"]:
        pay = payments.get(app["payment_id"])
        if pay is not None and app["applied_on"] <= PERIOD_END:
            applied[app["invoice_id"]] += app["amount"]
    for pay in payments.values():
        if pay["received_on"] <= PERIOD_END:
            mine = sum(
                (
                    a["amount"]
                    for a in ds.rows["payment_applications"]
                    if a["payment_id"] == pay["id"] and a["applied_on"] <= PERIOD_END
                ),
                D(0),
            )
            unapplied[(pay["customer_id"], pay["currency"])] += pay["amount"] - mine
    credit = dict(unapplied)
    for inv in invoices.values():
        void = _void_day(inv)
        if inv["issue_date"] > PERIOD_END or (void is not None and void <= PERIOD_END):
            continue
        owed = inv["total"] - applied[inv["id"]]
        owed -= sum(
            (
                n["total"]
                for n in notes
                if n["invoice_id"] == inv["id"] and n["issue_date"] <= PERIOD_END
            ),
            D(0),
        )
        if owed > 0:
            late = (PERIOD_END - inv["due_date"]).days
            bucket = (
                "current"
                if late <= 0
                else "1-30"
                if late <= 30
                else "31-60"
                if late <= 60
                else "61-90"
                if late <= 90
                else "90+"
            )
            figures[inv["currency"]].aging[bucket] += owed
        elif owed < 0:
            key = (inv["customer_id"], inv["currency"])
            credit[key] = credit.get(key, D(0)) - owed
    for ref in refunds:
        if ref["refunded_on"] <= PERIOD_END:
            key = (ref["customer_id"], ref["currency"])
            credit[key] = credit.get(key, D(0)) - ref["amount"]
    accounts = {r["id"]: r["account_number"] for r in ds.rows["customers"]}
    ds.credit_balances = {
        (accounts[cid], cur): amount for (cid, cur), amount in sorted(credit.items()) if amount
    }
    ds.figures = dict(figures)

    money_of = {
        "invoice": ("invoices", "total"),
        "credit_note": ("credit_notes", "total"),
        "payment": ("payments", "amount"),
        "refund": ("refunds", "amount"),
    }
    left: dict[str, tuple[int, Decimal]] = {}
    for kind, record_id in ds.rejected:
        table = {v: k for k, v in _KIND_OF_TABLE.items()}[kind]
        row = next(r for r in ds.rows[table] if r["id"] == record_id)
        if kind == "revenue_entry":
            line = lines[row["invoice_line_id"]]
            cur = next(i for i in ds.rows["invoices"] if i["id"] == line["invoice_id"])["currency"]
        else:
            cur = row["currency"]
        count, money = left.get(cur, (0, D(0)))
        if kind in money_of:
            money += row[money_of[kind][1]]
        left[cur] = (count + 1, money)
    ds.left_out = left
