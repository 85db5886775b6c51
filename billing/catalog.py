"""The demo company: billing entities, products and tax jurisdictions the generator uses.

``mapping.example.toml`` maps exactly these codes, and the NetSuite and AvaTax sandboxes know the
ids it maps them to.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Entity:
    """A billing entity (legal entity) and the customers it bills."""

    code: str
    currency: str
    country: str
    regions: tuple[str, ...]  # regions its customers live in (US states), or () for none


@dataclass(frozen=True)
class CatalogProduct:
    """A product the demo company sells."""

    sku: str
    name: str
    product_family: str
    revenue_pattern: str  # 'ratable' or 'point_in_time'
    tax_code: str
    unit_prices: dict[str, Decimal]  # per currency, list price of one unit


ENTITIES: tuple[Entity, ...] = (
    Entity("acme-us", "USD", "US", ("CA", "NY", "TX", "WA")),
    Entity("acme-de", "EUR", "DE", ()),
    Entity("acme-uk", "GBP", "GB", ()),
    Entity("acme-jp", "JPY", "JP", ()),
    Entity("acme-kw", "KWD", "KW", ()),
)

#: Tax rates billing charges, by jurisdiction (country, or country-region in the US).
TAX_RATES: dict[str, Decimal] = {
    "US-CA": Decimal("0.0725"),
    "US-NY": Decimal("0.08875"),
    "US-TX": Decimal("0.0625"),
    "US-WA": Decimal("0.065"),
    "DE": Decimal("0.19"),
    "GB": Decimal("0.20"),
    "JP": Decimal("0.10"),
    "KW": Decimal("0"),
}


def _prices(usd: str, eur: str, gbp: str, jpy: str, kwd: str) -> dict[str, Decimal]:
    return {
        "USD": Decimal(usd),
        "EUR": Decimal(eur),
        "GBP": Decimal(gbp),
        "JPY": Decimal(jpy),
        "KWD": Decimal(kwd),
    }


PRODUCTS: tuple[CatalogProduct, ...] = (
    CatalogProduct(
        "plat-basic",
        "Platform Basic",
        "platform",
        "ratable",
        "SW054000",
        _prices("49.00", "45.00", "39.00", "7400", "15.250"),
    ),
    CatalogProduct(
        "plat-pro",
        "Platform Pro",
        "platform",
        "ratable",
        "SW054000",
        _prices("199.00", "185.00", "159.00", "29800", "61.500"),
    ),
    CatalogProduct(
        "seats",
        "Additional seats",
        "platform",
        "ratable",
        "SW054000",
        _prices("12.50", "11.50", "9.90", "1850", "3.875"),
    ),
    CatalogProduct(
        "support-prem",
        "Premium support",
        "support",
        "ratable",
        "SW054000",
        _prices("99.00", "92.00", "79.00", "14800", "30.750"),
    ),
    CatalogProduct(
        "api-calls",
        "API usage (per 1,000 calls)",
        "usage",
        "point_in_time",
        "SW054000",
        _prices("0.4500", "0.4200", "0.3600", "68", "0.1400"),
    ),
    CatalogProduct(
        "onboarding",
        "Onboarding services",
        "services",
        "point_in_time",
        "S0000000",
        _prices("1500.00", "1400.00", "1200.00", "225000", "460.000"),
    ),
    CatalogProduct(
        "training",
        "Training day",
        "services",
        "point_in_time",
        "S0000000",
        _prices("800.00", "750.00", "640.00", "120000", "245.000"),
    ),
)
