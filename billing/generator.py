"""Deterministic, realistic data for the billing source contract (``billing.schema``).

``seed_billing`` fills the contract's tables with the demo company of ``billing.catalog``: five
billing entities and currencies, taxed and tax-exempt customers, monthly and annual
subscriptions with prorated service periods, usage and services billed at a point in time,
discounts, voids, credit notes, partial, late, multi-invoice, failed, reversed and over-payments,
refunds, revenue schedules that sum exactly to what is left of each line, and rows edited after
they were created. ``apply_edits`` then changes some of those records the way billing does after
finsync has synced them once, so tests can check that the next sync picks the changes up.

Everything comes from one ``random.Random(seed)``; no clock, no global state. Timestamps are
derived from the data's dates, so the same arguments always produce the same rows, on SQLite and
PostgreSQL alike.

The generator works customer by customer: all of a customer's records are decided (invoices,
payments, credit notes, statuses) before any of them is written, so no row is ever updated after
insertion and rows go out in large Core ``executemany`` batches.
"""

from __future__ import annotations

import random
from calendar import monthrange
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_CEILING, Decimal
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from billing import schema
from billing.catalog import ENTITIES, PRODUCTS, TAX_RATES, CatalogProduct, Entity
from core.money import quantum, round_money, split_evenly

#: Rows per INSERT executemany call.
CHUNK_ROWS = 5000

_ZERO = Decimal(0)

#: Tables in an order in which rows can be inserted (parents before children).
_TABLES: tuple[sa.Table, ...] = (
    schema.customers,
    schema.products,
    schema.invoices,
    schema.invoice_lines,
    schema.credit_notes,
    schema.credit_note_lines,
    schema.payments,
    schema.payment_applications,
    schema.refunds,
    schema.revenue_schedule_entries,
)

# Share of customers per entity, in the order of catalog.ENTITIES.
_ENTITY_WEIGHTS = (45, 20, 15, 12, 8)

# How a customer pays: prompt (in full before the due date), late (in full after it), partial
# (half, then the rest), batcher (every other month, all open invoices in one payment),
# deadbeat (pays the first invoice, then nothing: invoices become uncollectible).
_PROFILES = ("prompt", "late", "partial", "batcher", "deadbeat")
_PROFILE_WEIGHTS = (55, 14, 12, 13, 6)

# The first customers have fixed traits so that even a tiny seed holds every entity, currency,
# payment behaviour and billing pattern; later customers are drawn at random.
_FIXED_TRAITS: tuple[dict[str, Any], ...] = (
    {"entity": 0, "profile": "prompt", "method": "card", "annual": False, "billing_day": 1},
    {"entity": 1, "profile": "batcher", "method": "wire", "annual": False, "billing_day": 1},
    {"entity": 2, "profile": "partial", "method": "ach", "annual": False, "billing_day": 1},
    {"entity": 3, "profile": "prompt", "method": "wire", "annual": True, "billing_day": 15},
    {"entity": 4, "profile": "late", "method": "wire", "annual": False, "billing_day": 10},
    {"entity": 0, "profile": "deadbeat", "method": "check", "annual": False, "billing_day": 1},
    {
        "entity": 0,
        "profile": "prompt",
        "method": "ach",
        "annual": True,
        "billing_day": 1,
        "exempt": True,
    },
    {"entity": 0, "profile": "batcher", "method": "card", "annual": False, "billing_day": 20},
)

_METHODS = ("card", "ach", "wire", "check")
_METHOD_WEIGHTS = (45, 25, 20, 10)

# Card fees: rate plus a fixed amount per currency; ACH: a rate, capped; wire: a flat fee.
_CARD_FIXED = {"USD": "0.30", "EUR": "0.25", "GBP": "0.20", "JPY": "40", "KWD": "0.100"}
_ACH_CAP = {"USD": "5.00", "EUR": "5.00", "GBP": "4.00", "JPY": "700", "KWD": "1.500"}
_WIRE_FEE = {"USD": "15.00", "EUR": "12.00", "GBP": "10.00", "JPY": "2000", "KWD": "4.500"}
# Over-payments are rounded up to a round number of this many major units.
_ROUND_UP = {"USD": "100", "EUR": "100", "GBP": "100", "JPY": "10000", "KWD": "50"}

_NAME_PARTS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "US": (
        (
            "Blue",
            "North",
            "Summit",
            "Cedar",
            "Harbor",
            "Pioneer",
            "Granite",
            "O'Brien",
            "Redwood",
            "Silver",
        ),
        (
            "Analytics",
            "Logistics",
            "Foods",
            "Labs",
            "Systems",
            "Media",
            "Robotics",
            "Health",
            "& Sons",
            "Partners",
        ),
        ("Inc.", "LLC", "Corp."),
    ),
    "DE": (
        ("Müller", "Schäfer", "Weiß", "Köhler", "Becker", "Hoffmann", "Groß"),
        ("Maschinenbau", "Logistik", "Software", "Handel", "Bäckerei", "Werkzeuge"),
        ("GmbH", "AG", "GmbH & Co. KG"),
    ),
    "GB": (
        ("Thames", "Pennine", "Oakridge", "Kingsley", "Harrow", "St. Albans"),
        ("Consulting", "Engineering", "Trading", "Digital", "Brewing"),
        ("Ltd", "PLC", "LLP"),
    ),
    "JP": (
        ("Sakura", "Fuji", "Hikari", "Midori", "株式会社さくら", "株式会社ひかり"),
        ("Systems", "Trading", "Electronics", "システム", "商事"),
        ("K.K.", "G.K.", ""),
    ),
    "KW": (
        ("Al Noor", "Gulf Star", "Al Salam", "Desert Rose", "Al Bahar"),
        ("Trading", "Contracting", "General Trading", "Logistics"),
        ("W.L.L.", "K.S.C.C."),
    ),
}

# (city, postal code prefix) per US state or per country.
_CITIES: dict[str, tuple[tuple[str, str], ...]] = {
    "CA": (("San Francisco", "941"), ("Los Angeles", "900"), ("San Diego", "921")),
    "NY": (("New York", "100"), ("Buffalo", "142"), ("Albany", "122")),
    "TX": (("Austin", "787"), ("Houston", "770"), ("Dallas", "752")),
    "WA": (("Seattle", "981"), ("Spokane", "992"), ("Tacoma", "984")),
    "DE": (("Berlin", "10"), ("München", "80"), ("Hamburg", "20"), ("Köln", "50")),
    "GB": (("London", "EC1A"), ("Manchester", "M1"), ("Leeds", "LS1")),
    "JP": (("Tokyo", "100"), ("Osaka", "530"), ("Nagoya", "450")),
    "KW": (("Kuwait City", "13"), ("Hawalli", "32"), ("Salmiya", "22")),
}
_STREETS = ("Main St", "Oak Ave", "Market St", "High Street", "Hauptstraße", "Station Road")

_CREDIT_REASONS_PARTIAL = ("Service outage credit", "Goodwill credit", "Price correction")
_CREDIT_REASONS_FULL = ("Billing error: invoice cancelled", "Order cancelled")


@dataclass(frozen=True)
class SeedSummary:
    """What ``seed_billing`` wrote: rows per table and the months covered."""

    customers: int
    products: int
    invoices: int
    invoice_lines: int
    credit_notes: int
    credit_note_lines: int
    payments: int
    payment_applications: int
    refunds: int
    revenue_schedule_entries: int
    first_period: date  # first day of the first seeded month
    last_period: date  # first day of the last seeded month

    def rows(self) -> list[tuple[str, int]]:
        """(table name, row count) pairs in insertion order, for printing."""
        return [(table.name, int(getattr(self, table.name))) for table in _TABLES]


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


# --- dates and amounts -----------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _add_months(day: date, months: int) -> date:
    years, month0 = divmod(day.month - 1 + months, 12)
    year = day.year + years
    return date(year, month0 + 1, min(day.day, monthrange(year, month0 + 1)[1]))


def _month_start(day: date) -> date:
    return day.replace(day=1)


@lru_cache(maxsize=4096)
def _month_end(day: date) -> date:
    return day.replace(day=monthrange(day.year, day.month)[1])


def _split_weighted(total: Decimal, weights: Sequence[int], currency: str) -> list[Decimal]:
    """Split ``total`` in proportion to ``weights`` so that the parts sum exactly to it.

    Largest-remainder method on minor units; ties go to the earlier part, so it is deterministic.
    """
    q = quantum(currency)
    units = int((total / q).to_integral_value())
    sign = -1 if units < 0 else 1
    units = abs(units)
    weight_sum = sum(weights)
    shares = [units * w // weight_sum for w in weights]
    order = sorted(range(len(weights)), key=lambda i: (-(units * weights[i] % weight_sum), i))
    for i in order[: units - sum(shares)]:
        shares[i] += 1
    return [Decimal(sign * s) * q for s in shares]


def _schedule(amount: Decimal, start: date, end: date, currency: str) -> list[tuple[date, Decimal]]:
    """Spread a ratable ``amount`` over the months of the service period ``start``..``end``.

    Whole calendar months get equal shares (straight-line per month); other periods are prorated
    by days. One (period, amount) per month touched; the amounts sum exactly to ``amount``.
    """
    months: list[tuple[date, int]] = []
    cursor = start
    while cursor <= end:
        last = min(_month_end(cursor), end)
        months.append((_month_start(cursor), (last - cursor).days + 1))
        cursor = last + timedelta(days=1)
    if start.day == 1 and end == _month_end(end):
        shares = split_evenly(amount, len(months), currency)
    else:
        shares = _split_weighted(amount, [days for _, days in months], currency)
    return [(period, share) for (period, _), share in zip(months, shares, strict=True)]


def _line_schedule(
    amount: Decimal,
    ratable: bool,
    start: date | None,
    end: date | None,
    issue: date,
    currency: str,
) -> list[tuple[date, Decimal]]:
    """The schedule of one line: over its service period if ratable, else in the issue month."""
    if ratable and start is not None and end is not None:
        return _schedule(amount, start, end, currency)
    return [(_month_start(issue), amount)]


def _reversal(parts: Sequence[tuple[date, Decimal]], earliest: date) -> list[tuple[date, Decimal]]:
    """Negative entries undoing ``parts``: periods before ``earliest`` are caught up in it.

    Revenue already recognized in a closed month is reversed in the month of the credit (or
    void), not rewritten; future months are reduced in their own period. Zero parts are dropped.
    """
    merged: dict[date, Decimal] = {}
    for period, amount in parts:
        if amount:
            key = max(period, earliest)
            merged[key] = merged.get(key, _ZERO) - amount
    return sorted(merged.items())


def _line_amount(quantity: Decimal, unit_price: Decimal, discount: Decimal, cur: str) -> Decimal:
    return round_money(quantity * unit_price - discount, cur)


# --- customers -------------------------------------------------------------------------------


def _company_name(rng: random.Random, country: str) -> str:
    first, second, suffix = _NAME_PARTS[country]
    return " ".join(p for p in (rng.choice(first), rng.choice(second), rng.choice(suffix)) if p)


def _slug(name: str) -> str:
    ascii_only = "".join(ch.lower() for ch in name if ch.isascii() and ch.isalnum())
    return ascii_only or "kaisha"


def _address(rng: random.Random, country: str, region: str | None) -> dict[str, str]:
    city, prefix = rng.choice(_CITIES[region or country])
    number = rng.randint(1, 999)
    if country == "US":
        postal = f"{prefix}{rng.randint(0, 99):02d}"
        line1 = f"{number} {rng.choice(_STREETS[:3])}"
    elif country == "DE":
        postal = f"{prefix}{rng.randint(100, 999)}"
        line1 = f"Hauptstraße {number}"
    elif country == "GB":
        postal = f"{prefix} {rng.randint(1, 9)}{rng.choice('ABDEFGHJ')}{rng.choice('LNPQRSTU')}"
        line1 = f"{number} {rng.choice(('High Street', 'Station Road'))}"
    elif country == "JP":
        postal = f"{prefix}-{rng.randint(0, 9999):04d}"
        line1 = f"{rng.randint(1, 9)}-{rng.randint(1, 20)}-{rng.randint(1, 30)} Marunouchi"
    else:
        postal = f"{prefix}{rng.randint(0, 999):03d}"
        line1 = f"Block {rng.randint(1, 12)}, Street {rng.randint(1, 40)}"
    return {"city": city, "postal_code": postal, "address_line1": line1}


@dataclass
class _Customer:
    id: int
    entity: Entity
    currency: str
    jurisdiction: str
    tax_rate: Decimal
    profile: str
    method: str
    annual: bool
    billing_day: int
    terms: int
    signup: int  # index of the first billed month
    plan: CatalogProduct
    seats: int
    support: bool
    usage: bool
    onboarding: bool
    discount_pct: Decimal
    price_factor: Decimal | None
    po_number: str | None


@dataclass
class _Line:
    id: int
    product: CatalogProduct
    amount: Decimal
    tax_amount: Decimal
    tax_rate: Decimal
    parts: list[tuple[date, Decimal]]
    credited: Decimal = _ZERO
    credited_tax: Decimal = _ZERO


@dataclass
class _Invoice:
    row: dict[str, Any]
    lines: list[_Line]
    applied: Decimal = _ZERO
    credited: Decimal = _ZERO
    void: bool = False
    settled_on: date | None = None
    line_rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return Decimal(self.row["total"])

    @property
    def balance(self) -> Decimal:
        return self.total - self.applied - self.credited

    @property
    def issue_date(self) -> date:
        issue: date = self.row["issue_date"]
        return issue

    def touch(self, at: datetime) -> None:
        """A change of the invoice or its children moves its updated_at."""
        self.row["updated_at"] = max(self.row["updated_at"], at)


class _Seeder:
    """Generates one customer's records at a time into buffers, flushed in large batches."""

    def __init__(self, rng: random.Random, start: date, months: int) -> None:
        self.rng = rng
        self.start = start
        self.months = months
        self.end = _add_months(start, months) - timedelta(days=1)
        self.boundary = _add_months(start, months)  # entries before it are recognized
        self.last_ids = {table.name: 0 for table in _TABLES}
        self.counts = {table.name: 0 for table in _TABLES}
        self.buffers: dict[str, list[dict[str, Any]]] = {table.name: [] for table in _TABLES}
        self.product_ids = {p.sku: i for i, p in enumerate(PRODUCTS, start=1)}

    # -- plumbing --

    def next_id(self, table: str) -> int:
        self.last_ids[table] += 1
        return self.last_ids[table]

    def emit(self, table: str, row: dict[str, Any]) -> None:
        self.buffers[table].append(row)
        self.counts[table] += 1

    def buffered(self) -> int:
        return sum(len(rows) for rows in self.buffers.values())

    def flush(self, conn: Connection) -> None:
        for table in _TABLES:
            rows = self.buffers[table.name]
            for i in range(0, len(rows), CHUNK_ROWS):
                conn.execute(table.insert(), rows[i : i + CHUNK_ROWS])
            rows.clear()

    def ts(self, day: date, after: datetime | None = None) -> datetime:
        """A business-hours timestamp on ``day``, strictly later than ``after`` if given."""
        rng = self.rng
        moment = datetime.combine(
            day, time(rng.randint(7, 18), rng.randint(0, 59), rng.randint(0, 59)), tzinfo=UTC
        )
        if after is not None and moment <= after:
            moment = after + timedelta(minutes=rng.randint(1, 90))
        return moment

    # -- products --

    def products(self) -> None:
        at = datetime.combine(self.start - timedelta(days=365), time(0), tzinfo=UTC)
        for product in PRODUCTS:
            self.emit(
                "products",
                {
                    "id": self.next_id("products"),
                    "sku": product.sku,
                    "name": product.name,
                    "product_family": product.product_family,
                    "revenue_pattern": product.revenue_pattern,
                    "tax_code": product.tax_code,
                    "updated_at": at,
                },
            )

    # -- one customer --

    def customer(self, index: int) -> None:
        rng = self.rng
        fixed = _FIXED_TRAITS[index] if index < len(_FIXED_TRAITS) else {}
        if "entity" in fixed:
            entity = ENTITIES[fixed["entity"]]
        else:
            entity = rng.choices(ENTITIES, weights=_ENTITY_WEIGHTS)[0]
        region = rng.choice(entity.regions) if entity.regions else None
        jurisdiction = f"{entity.country}-{region}" if region else entity.country
        exempt = fixed.get("exempt", not fixed and rng.random() < 0.07)
        method = fixed.get("method") or rng.choices(_METHODS, weights=_METHOD_WEIGHTS)[0]
        if entity.currency in ("JPY", "KWD") and method in ("ach", "check"):
            method = "wire"  # no ACH or checks there
        signup = 0 if fixed or rng.random() < 0.65 else rng.randrange(self.months)
        cust = _Customer(
            id=self.next_id("customers"),
            entity=entity,
            currency=entity.currency,
            jurisdiction=jurisdiction,
            tax_rate=_ZERO if exempt else TAX_RATES[jurisdiction],
            profile=fixed.get("profile") or rng.choices(_PROFILES, weights=_PROFILE_WEIGHTS)[0],
            method=method,
            annual=fixed.get("annual", rng.random() < 0.18),
            billing_day=fixed.get("billing_day", 1 if rng.random() < 0.7 else rng.randint(2, 28)),
            terms=rng.choice((14, 30, 30, 45)),
            signup=signup,
            plan=PRODUCTS[rng.randrange(2)],
            seats=rng.randint(1, 40) if rng.random() < 0.5 else 0,
            support=rng.random() < 0.25,
            usage=index < 3 or rng.random() < 0.45,
            onboarding=rng.random() < (0.7 if signup else 0.15),
            discount_pct=rng.choice((Decimal("0.10"), Decimal("0.15"), Decimal("0.20")))
            if rng.random() < 0.2
            else _ZERO,
            price_factor=rng.choice((Decimal("0.9125"), Decimal("0.85"), Decimal("0.9333")))
            if rng.random() < 0.2
            else None,
            po_number=f"PO-{rng.randint(10000, 99999)}" if rng.random() < 0.15 else None,
        )
        name = _company_name(rng, entity.country)
        first_issue = _add_months(self.start, signup).replace(day=cust.billing_day)
        created_at = self.ts(
            first_issue - timedelta(days=rng.randint(1, 400 if not signup else 20))
        )
        updated_at = created_at
        if rng.random() < 0.15:  # address or e-mail corrected later
            edit_day = max(created_at.date(), self.start) + timedelta(days=rng.randint(1, 90))
            if edit_day <= self.end:
                updated_at = self.ts(edit_day, after=created_at)
        self.emit(
            "customers",
            {
                "id": cust.id,
                "account_number": f"CUST-{cust.id:06d}",
                "name": name,
                "email": None if rng.random() < 0.05 else f"billing@{_slug(name)}.example",
                "billing_entity": entity.code,
                "currency": cust.currency,
                "country": entity.country,
                "region": region,
                **_address(rng, entity.country, region),
                "tax_exempt": exempt,
                "exemption_number": f"EX-{jurisdiction}-{rng.randint(100000, 999999)}"
                if exempt
                else None,
                "created_at": created_at,
                "updated_at": updated_at,
            },
        )

        invoices = [inv for m in range(signup, self.months) if (inv := self.month_invoice(cust, m))]
        for inv in invoices:
            self.decide_void_or_credit(cust, inv)
        self.pay(cust, invoices)
        for inv in invoices:
            self.late_credit(cust, inv)
        for inv in invoices:
            self.finish(cust, inv)

    def price(self, cust: _Customer, product: CatalogProduct) -> Decimal:
        listed = product.unit_prices[cust.currency]
        if cust.price_factor is None or product.revenue_pattern != "ratable":
            return listed
        # Negotiated prices carry more decimals than the currency: amounts round per line.
        return (listed * cust.price_factor).quantize(Decimal("0.0001"))

    def month_invoice(self, cust: _Customer, m: int) -> _Invoice | None:
        rng = self.rng
        cur = cust.currency
        issue = _add_months(self.start, m).replace(day=cust.billing_day)
        specs: list[
            tuple[CatalogProduct, Decimal, Decimal, Decimal, date | None, date | None, str]
        ] = []
        if not cust.annual or (m - cust.signup) % 12 == 0:
            n = 12 if cust.annual else 1
            start, end = issue, _add_months(issue, n) - timedelta(days=1)
            period = f"{start:%Y-%m-%d} to {end:%Y-%m-%d}"
            unit = self.price(cust, cust.plan) * n
            # Annual plans get two months free; some customers have a negotiated discount.
            pct = cust.discount_pct + (Decimal(2) / Decimal(12) if cust.annual else _ZERO)
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
                        self.price(cust, seats) * n,
                        _ZERO,
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
                        self.price(cust, support) * n,
                        _ZERO,
                        start,
                        end,
                        f"{support.name}, {period}",
                    )
                )
        if cust.usage and m > cust.signup:
            usage = PRODUCTS[4]
            calls = Decimal(rng.randint(50, 900_000)).scaleb(-3)  # thousands of calls
            used = _add_months(issue, -1)
            specs.append(
                (
                    usage,
                    calls,
                    usage.unit_prices[cur],
                    _ZERO,
                    None,
                    None,
                    f"API usage {used:%B %Y}: {calls} thousand calls",
                )
            )
        if m == cust.signup and cust.onboarding:
            onboarding = PRODUCTS[5]
            unit = onboarding.unit_prices[cur]
            discount = round_money(unit * Decimal("0.25"), cur) if rng.random() < 0.3 else _ZERO
            specs.append((onboarding, Decimal(1), unit, discount, None, None, onboarding.name))
        if rng.random() < 0.05:
            training = PRODUCTS[6]
            days = Decimal(rng.choice((1, 1, 2)))
            specs.append(
                (
                    training,
                    days,
                    training.unit_prices[cur],
                    _ZERO,
                    issue,
                    issue,
                    f"{training.name} on {issue:%Y-%m-%d}",
                )
            )
        if not specs:
            return None
        return self.invoice(cust, issue, specs)

    def invoice(
        self,
        cust: _Customer,
        issue: date,
        specs: Sequence[
            tuple[CatalogProduct, Decimal, Decimal, Decimal, date | None, date | None, str]
        ],
    ) -> _Invoice:
        rng = self.rng
        cur = cust.currency
        invoice_id = self.next_id("invoices")
        created_at = self.ts(issue)
        inv = _Invoice(row={}, lines=[])
        for line_no, (product, qty, unit, discount, start, end, text) in enumerate(specs, 1):
            amount = _line_amount(qty, unit, discount, cur)
            tax = round_money(amount * cust.tax_rate, cur)
            line_id = self.next_id("invoice_lines")
            ratable = product.revenue_pattern == "ratable"
            parts = _line_schedule(amount, ratable, start, end, issue, cur)
            inv.lines.append(_Line(line_id, product, amount, tax, cust.tax_rate, parts))
            inv.line_rows.append(
                {
                    "id": line_id,
                    "invoice_id": invoice_id,
                    "line_no": line_no,
                    "product_id": self.product_ids[product.sku],
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
            self.entries(line_id, parts, created_at)
        subtotal = sum((line.amount for line in inv.lines), round_money(_ZERO, cur))
        tax_total = sum((line.tax_amount for line in inv.lines), round_money(_ZERO, cur))
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
            if edit_day <= self.end:
                row = inv.line_rows[rng.randrange(len(inv.line_rows))]
                row["description"] += " (corrected)"
                row["updated_at"] = self.ts(edit_day, after=created_at)
                inv.touch(row["updated_at"])
        if rng.random() < 0.08:  # memo added after issue (a PO number arrives)
            edit_day = issue + timedelta(days=rng.randint(1, 20))
            if edit_day <= self.end:
                inv.row["memo"] = f"PO {rng.randint(100000, 999999)} (added after issue)"
                inv.touch(self.ts(edit_day, after=created_at))
        return inv

    def entries(self, line_id: int, parts: Sequence[tuple[date, Decimal]], made: datetime) -> None:
        """Schedule entries made at ``made``; months before the boundary are recognized."""
        for period, amount in parts:
            if period < self.boundary:
                recognized_on: date | None = _month_end(period)
                # The month-end close marks the entry recognized, moving its updated_at.
                closed = datetime.combine(_month_end(period), time(23, 30), tzinfo=UTC)
                status, updated_at = "recognized", max(made, closed)
            else:
                recognized_on, status, updated_at = None, "scheduled", made
            self.emit(
                "revenue_schedule_entries",
                {
                    "id": self.next_id("revenue_schedule_entries"),
                    "invoice_line_id": line_id,
                    "period": period,
                    "amount": amount,
                    "status": status,
                    "recognized_on": recognized_on,
                    "updated_at": updated_at,
                },
            )

    # -- what happens to invoices --

    def decide_void_or_credit(self, cust: _Customer, inv: _Invoice) -> None:
        rng = self.rng
        roll = rng.random()
        issue = inv.issue_date
        if roll < 0.03:
            day = issue + timedelta(days=rng.randint(0, 4))
            if day <= self.end:
                voided_at = self.ts(day, after=inv.row["created_at"])
                inv.void = True
                inv.row.update(status="void", voided_at=voided_at)
                inv.touch(voided_at)
                for line in inv.lines:
                    self.entries(line.id, _reversal(line.parts, _month_start(day)), voided_at)
        elif roll < 0.09:
            # Before any payment: a credit reduces what the customer owes.
            day = issue + timedelta(days=rng.randint(1, 3))
            if day <= self.end:
                self.credit(cust, inv, day, full=rng.random() < 0.3)

    def credit(self, cust: _Customer, inv: _Invoice, day: date, *, full: bool) -> int | None:
        """Issue a credit note against ``inv``; returns its id, or None if nothing is left."""
        rng = self.rng
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
        note_id = self.next_id("credit_notes")
        created_at = self.ts(day, after=inv.row["created_at"])
        subtotal = tax_total = round_money(_ZERO, cur)
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
            self.emit(
                "credit_note_lines",
                {
                    "id": self.next_id("credit_note_lines"),
                    "credit_note_id": note_id,
                    "line_no": line_no,
                    "invoice_line_id": line.id,
                    "product_id": self.product_ids[line.product.sku],
                    "description": f"Credit: {line.product.name}",
                    "amount": amount,
                    "tax_amount": tax,
                    "updated_at": created_at,
                },
            )
            # Spread the credit like the line itself, so each month loses its share.
            weights = [int(abs(part) / quantum(cur)) for _, part in line.parts]
            shares = _split_weighted(amount, weights, cur)
            part_parts = [(p, sh) for (p, _), sh in zip(line.parts, shares, strict=True)]
            self.entries(line.id, _reversal(part_parts, _month_start(day)), created_at)
        inv.credited += subtotal + tax_total
        inv.touch(created_at)
        self.emit(
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

    def pay(self, cust: _Customer, invoices: Sequence[_Invoice]) -> None:
        rng = self.rng
        payable = [inv for inv in invoices if not inv.void and inv.balance > 0]
        if cust.profile == "batcher":
            if not payable:
                return
            day = _add_months(_month_start(payable[0].issue_date), 1).replace(day=20)
            while day <= self.end:
                group = [
                    (inv, inv.balance)
                    for inv in payable
                    if inv.balance > 0 and inv.issue_date + timedelta(days=5) <= day
                ]
                if group:
                    self.payment(cust, day, group)
                day = _add_months(day, 2)
            return
        for n, inv in enumerate(payable):
            issue = inv.issue_date
            due = inv.row["due_date"]
            if cust.profile == "prompt":
                self.payment(
                    cust,
                    issue + timedelta(days=rng.randint(5, max(5, cust.terms))),
                    [(inv, inv.balance)],
                )
            elif cust.profile == "late":
                self.payment(cust, due + timedelta(days=rng.randint(5, 40)), [(inv, inv.balance)])
            elif cust.profile == "partial":
                half = round_money(inv.balance / 2, cust.currency)
                self.payment(cust, issue + timedelta(days=rng.randint(5, 15)), [(inv, half)])
                if inv.applied:
                    self.payment(
                        cust, issue + timedelta(days=rng.randint(30, 60)), [(inv, inv.balance)]
                    )
            elif n == 0:  # a deadbeat pays its first invoice, then stops
                self.payment(cust, due, [(inv, inv.balance)])

    def payment(
        self, cust: _Customer, day: date, allocations: Sequence[tuple[_Invoice, Decimal]]
    ) -> None:
        """Receive a payment for ``allocations`` on ``day`` (nothing if after the window)."""
        rng = self.rng
        cur = cust.currency
        applied = sum((amount for _, amount in allocations), _ZERO)
        if day > self.end or applied <= 0:
            return
        if cust.method == "card" and rng.random() < 0.06:
            # The card is declined first; it goes through the next day.
            self.payment_row(cust, day, applied, "failed", self.ts(day), None)
            day += timedelta(days=1)
        elif cust.method == "ach" and rng.random() < 0.05 and day + timedelta(days=5) <= self.end:
            # The debit is returned three days later; the customer pays again after that.
            made = self.ts(day)
            self.payment_row(
                cust, day, applied, "reversed", made, self.ts(day + timedelta(days=3), after=made)
            )
            day += timedelta(days=5)
        if day > self.end:
            return
        amount = applied
        overpaid = rng.random() < 0.06
        if overpaid:
            step = Decimal(_ROUND_UP[cur])
            amount = round_money((applied / step).to_integral_value(ROUND_CEILING) * step, cur)
            if amount == applied:
                amount += step
        made = self.ts(day)
        payment_id = self.payment_row(cust, day, amount, "succeeded", made, None)
        for inv, part in allocations:
            self.emit(
                "payment_applications",
                {
                    "id": self.next_id("payment_applications"),
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
            if refund_day <= self.end:
                self.refund(cust, refund_day, amount - applied, payment_id=payment_id)

    def payment_row(
        self,
        cust: _Customer,
        day: date,
        amount: Decimal,
        status: str,
        made: datetime,
        changed: datetime | None,
    ) -> int:
        cur = cust.currency
        fee = _ZERO
        if status == "succeeded":
            if cust.method == "card":
                fee = amount * Decimal("0.029") + Decimal(_CARD_FIXED[cur])
            elif cust.method == "ach":
                fee = min(amount * Decimal("0.008"), Decimal(_ACH_CAP[cur]))
            elif cust.method == "wire":
                fee = Decimal(_WIRE_FEE[cur])
        payment_id = self.next_id("payments")
        self.emit(
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
        self,
        cust: _Customer,
        day: date,
        amount: Decimal,
        *,
        payment_id: int | None = None,
        credit_note_id: int | None = None,
    ) -> None:
        refund_id = self.next_id("refunds")
        made = self.ts(day)
        self.emit(
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

    def late_credit(self, cust: _Customer, inv: _Invoice) -> None:
        """Now and then a paid invoice is credited later; most such credits are refunded."""
        rng = self.rng
        if inv.void or inv.settled_on is None or inv.applied == 0 or rng.random() >= 0.06:
            return
        day = inv.settled_on + timedelta(days=rng.randint(5, 30))
        if day > self.end:
            return
        before = inv.credited
        note_id = self.credit(cust, inv, day, full=rng.random() < 0.25)
        if note_id is not None and rng.random() < 0.6:
            refund_day = day + timedelta(days=rng.randint(1, 7))
            if refund_day <= self.end:
                self.refund(cust, refund_day, inv.credited - before, credit_note_id=note_id)

    def finish(self, cust: _Customer, inv: _Invoice) -> None:
        """Settle the invoice's status and write it with its lines."""
        if not inv.void:
            if inv.balance <= 0:
                inv.row["status"] = "paid"
            elif cust.profile == "deadbeat":
                written_off = inv.row["due_date"] + timedelta(days=60)
                if written_off <= self.end:
                    inv.row["status"] = "uncollectible"
                    inv.touch(self.ts(written_off, after=inv.row["updated_at"]))
        self.emit("invoices", inv.row)
        for row in inv.line_rows:
            self.emit("invoice_lines", row)


# --- public API ------------------------------------------------------------------------------


def _row_counts(conn: Connection) -> dict[str, int]:
    return {
        table.name: int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
        for table in _TABLES
    }


def _empty(conn: Connection) -> None:
    """Delete every row of the contract's tables."""
    if conn.dialect.name == "postgresql":
        # Row-by-row DELETE re-checks each foreign key against tables full of dead rows, which
        # is quadratic; TRUNCATE of all the tables together is instant and transactional.
        names = ", ".join(conn.dialect.identifier_preparer.format_table(t) for t in _TABLES)
        conn.execute(sa.text(f"TRUNCATE {names}"))
    else:
        for table in reversed(_TABLES):
            conn.execute(table.delete())


def seed_billing(
    engine: Engine,
    *,
    customers: int,
    months: int,
    seed: int,
    start: date = date(2025, 11, 1),
    progress: Callable[[int, int], None] | None = None,
    replace: bool = False,
) -> SeedSummary:
    """Fill the billing contract's tables with ``customers`` customers over ``months`` months.

    Creates the tables if absent. Raises ValueError if they already hold rows (unless
    ``replace``, which empties them first) or if the arguments are out of range. The same
    arguments always write the same rows. ``progress(done, total)`` is called with the number of
    customers written so far.
    """
    if customers < 1 or months < 1:
        raise ValueError("customers and months must be at least 1")
    if start.day != 1:
        raise ValueError(f"start must be the first day of a month, got {start}")
    schema.metadata.create_all(engine)
    seeder = _Seeder(random.Random(seed), start, months)
    with engine.begin() as conn:
        counts = _row_counts(conn)
        if any(counts.values()):
            if not replace:
                held = ", ".join(f"{name}: {n}" for name, n in counts.items() if n)
                raise ValueError(
                    f"billing tables already hold rows ({held}); pass replace=True to empty "
                    "them first"
                )
            _empty(conn)
        seeder.products()
        for index in range(customers):
            seeder.customer(index)
            if seeder.buffered() >= CHUNK_ROWS:
                seeder.flush(conn)
                if progress is not None:
                    progress(index + 1, customers)
        seeder.flush(conn)
    if progress is not None:
        progress(customers, customers)
    return SeedSummary(
        **seeder.counts, first_period=start, last_period=_add_months(start, months - 1)
    )


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
    subtotal = sum((a for a, _ in amounts), round_money(_ZERO, currency))
    tax_total = sum((t for _, t in amounts), round_money(_ZERO, currency))
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
    amount = _line_amount(new_qty, line["unit_price"], line["discount"], currency)
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
    parts = _line_schedule(
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
        for period, amount in _reversal(by_line[line_id], _month_start(at.date())):
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
    new_name = _company_name(rng, country if country in _NAME_PARTS else "US")
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
    rate = _ZERO if cust["tax_exempt"] else TAX_RATES.get(jurisdiction, _ZERO)
    product_ids: dict[str, int] = {
        sku: pid for sku, pid in conn.execute(sa.select(s.products.c.sku, s.products.c.id))
    }
    issue = at.date()
    end = _add_months(issue, 1) - timedelta(days=1)
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
        amount = _line_amount(qty, unit, _ZERO, cur)
        line_rows.append(
            {
                "id": line_id,
                "invoice_id": invoice_id,
                "line_no": line_no,
                "product_id": product_ids[product.sku],
                "description": f"{product.name} (added)",
                "quantity": qty,
                "unit_price": unit,
                "discount": round_money(_ZERO, cur),
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
        for period, share in _line_schedule(amount, ratable, start, stop, issue, cur):
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
    subtotal = sum((r["amount"] for r in line_rows), round_money(_ZERO, cur))
    tax_total = sum((r["tax_amount"] for r in line_rows), round_money(_ZERO, cur))
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
