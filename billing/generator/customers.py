"""Customers and products: the catalog's products, and customers with their traits (entity,
currency, tax, payment profile and method, plan, billing day), names and addresses."""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from billing.catalog import ENTITIES, PRODUCTS, TAX_RATES
from billing.generator.dates import add_months
from billing.generator.rows import ZERO, Customer, Rows

# Share of customers per entity, in the order of catalog.ENTITIES.
ENTITY_WEIGHTS = (45, 20, 15, 12, 8)

# How a customer pays: prompt (in full before the due date), late (in full after it), partial
# (half, then the rest), batcher (every other month, all open invoices in one payment),
# deadbeat (pays the first invoice, then nothing: invoices become uncollectible).
PROFILES = ("prompt", "late", "partial", "batcher", "deadbeat")

PROFILE_WEIGHTS = (55, 14, 12, 13, 6)

# The first customers have fixed traits so that even a tiny seed holds every entity, currency,
# payment behaviour and billing pattern; later customers are drawn at random.
FIXED_TRAITS: tuple[dict[str, Any], ...] = (
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

METHODS = ("card", "ach", "wire", "check")

METHOD_WEIGHTS = (45, 25, 20, 10)

# (city, postal code prefix) per US state or per country.
CITIES: dict[str, tuple[tuple[str, str], ...]] = {
    "CA": (("San Francisco", "941"), ("Los Angeles", "900"), ("San Diego", "921")),
    "NY": (("New York", "100"), ("Buffalo", "142"), ("Albany", "122")),
    "TX": (("Austin", "787"), ("Houston", "770"), ("Dallas", "752")),
    "WA": (("Seattle", "981"), ("Spokane", "992"), ("Tacoma", "984")),
    "DE": (("Berlin", "10"), ("München", "80"), ("Hamburg", "20"), ("Köln", "50")),
    "GB": (("London", "EC1A"), ("Manchester", "M1"), ("Leeds", "LS1")),
    "JP": (("Tokyo", "100"), ("Osaka", "530"), ("Nagoya", "450")),
    "KW": (("Kuwait City", "13"), ("Hawalli", "32"), ("Salmiya", "22")),
}

STREETS = ("Main St", "Oak Ave", "Market St", "High Street", "Hauptstraße", "Station Road")

NAME_PARTS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
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


def company_name(rng: random.Random, country: str) -> str:
    """A company name in the style of ``country``."""
    first, second, suffix = NAME_PARTS[country]
    return " ".join(p for p in (rng.choice(first), rng.choice(second), rng.choice(suffix)) if p)


def slug(name: str) -> str:
    """The name's ASCII letters and digits, for an e-mail domain."""
    ascii_only = "".join(ch.lower() for ch in name if ch.isascii() and ch.isalnum())
    return ascii_only or "kaisha"


def address(rng: random.Random, country: str, region: str | None) -> dict[str, str]:
    """City, postal code and first address line in the style of ``country`` (or US state)."""
    city, prefix = rng.choice(CITIES[region or country])
    number = rng.randint(1, 999)
    if country == "US":
        postal = f"{prefix}{rng.randint(0, 99):02d}"
        line1 = f"{number} {rng.choice(STREETS[:3])}"
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


def products(rows: Rows) -> None:
    """Buffer the catalog's products, dated a year before the window."""
    at = datetime.combine(rows.start - timedelta(days=365), time(0), tzinfo=UTC)
    for product in PRODUCTS:
        rows.emit(
            "products",
            {
                "id": rows.next_id("products"),
                "sku": product.sku,
                "name": product.name,
                "product_family": product.product_family,
                "revenue_pattern": product.revenue_pattern,
                "tax_code": product.tax_code,
                "updated_at": at,
            },
        )


def new_customer(rows: Rows, index: int) -> Customer:
    """Draw customer ``index``'s traits and buffer its row (the first few have fixed traits)."""
    rng = rows.rng
    fixed = FIXED_TRAITS[index] if index < len(FIXED_TRAITS) else {}
    if "entity" in fixed:
        entity = ENTITIES[fixed["entity"]]
    else:
        entity = rng.choices(ENTITIES, weights=ENTITY_WEIGHTS)[0]
    region = rng.choice(entity.regions) if entity.regions else None
    jurisdiction = f"{entity.country}-{region}" if region else entity.country
    exempt = fixed.get("exempt", not fixed and rng.random() < 0.07)
    method = fixed.get("method") or rng.choices(METHODS, weights=METHOD_WEIGHTS)[0]
    if entity.currency in ("JPY", "KWD") and method in ("ach", "check"):
        method = "wire"  # no ACH or checks there
    signup = 0 if fixed or rng.random() < 0.65 else rng.randrange(rows.months)
    cust = Customer(
        id=rows.next_id("customers"),
        entity=entity,
        currency=entity.currency,
        jurisdiction=jurisdiction,
        tax_rate=ZERO if exempt else TAX_RATES[jurisdiction],
        profile=fixed.get("profile") or rng.choices(PROFILES, weights=PROFILE_WEIGHTS)[0],
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
        else ZERO,
        price_factor=rng.choice((Decimal("0.9125"), Decimal("0.85"), Decimal("0.9333")))
        if rng.random() < 0.2
        else None,
        po_number=f"PO-{rng.randint(10000, 99999)}" if rng.random() < 0.15 else None,
    )
    name = company_name(rng, entity.country)
    first_issue = add_months(rows.start, signup).replace(day=cust.billing_day)
    created_at = rows.ts(first_issue - timedelta(days=rng.randint(1, 400 if not signup else 20)))
    updated_at = created_at
    if rng.random() < 0.15:  # address or e-mail corrected later
        edit_day = max(created_at.date(), rows.start) + timedelta(days=rng.randint(1, 90))
        if edit_day <= rows.end:
            updated_at = rows.ts(edit_day, after=created_at)
    rows.emit(
        "customers",
        {
            "id": cust.id,
            "account_number": f"CUST-{cust.id:06d}",
            "name": name,
            "email": None if rng.random() < 0.05 else f"billing@{slug(name)}.example",
            "billing_entity": entity.code,
            "currency": cust.currency,
            "country": entity.country,
            "region": region,
            **address(rng, entity.country, region),
            "tax_exempt": exempt,
            "exemption_number": f"EX-{jurisdiction}-{rng.randint(100000, 999999)}"
            if exempt
            else None,
            "created_at": created_at,
            "updated_at": updated_at,
        },
    )
    return cust
