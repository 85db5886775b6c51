"""The AvaTax sandbox's account: its companies and the small rate table it taxes by, one
``Jurisdiction`` per country, or per region where the region decides (US states)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sandbox.avatax.faults import fault

#: Companies the sandbox account holds: company code -> company id.
COMPANIES: dict[str, int] = {
    "ACME_US": 101,
    "ACME_DE": 102,
    "ACME_UK": 103,
    "ACME_JP": 104,
    "ACME_KW": 105,
}


@dataclass(frozen=True)
class Jurisdiction:
    """One taxing jurisdiction of the rate table."""

    country: str
    region: str
    juris_type: str  # TransactionSummary.jurisType: "State" or "Country"
    juris_code: str
    juris_name: str
    tax_type: str  # "Sales" (US sales tax) or "Output" (VAT/GST)
    tax_name: str
    rate: Decimal


def _us(region: str, name: str, rate: str) -> Jurisdiction:
    return Jurisdiction(
        "US", region, "State", region, name, "Sales", f"{region} STATE TAX", Decimal(rate)
    )


def _vat(country: str, name: str, rate: str, tax_name: str = "VAT") -> Jurisdiction:
    return Jurisdiction(
        country, "", "Country", country, name, "Output", f"{country} {tax_name}", Decimal(rate)
    )


#: Rates by country, and by region where the region decides (US states).
RATES: dict[tuple[str, str], Jurisdiction] = {
    ("US", "CA"): _us("CA", "CALIFORNIA", "0.0725"),
    ("US", "NY"): _us("NY", "NEW YORK", "0.08875"),
    ("US", "TX"): _us("TX", "TEXAS", "0.0625"),
    ("US", "WA"): _us("WA", "WASHINGTON", "0.065"),
    ("DE", ""): _vat("DE", "GERMANY", "0.19"),
    ("GB", ""): _vat("GB", "UNITED KINGDOM", "0.20"),
    ("JP", ""): _vat("JP", "JAPAN", "0.10", "CONSUMPTION TAX"),
    ("KW", ""): _vat("KW", "KUWAIT", "0"),
}
_REGIONAL = frozenset(country for country, region in RATES if region)


def jurisdiction(location: Any) -> Jurisdiction:
    """The jurisdiction of an address location, refused the way AvaTax refuses it."""
    if not isinstance(location, dict):
        raise fault(
            "MissingAddress",
            "An address is required to calculate tax: give "
            "addresses.singleLocation or addresses.shipTo.",
            ref="addresses",
        )
    country = str(location.get("country") or "").upper()
    region = str(location.get("region") or "").upper()
    if not country:
        raise fault(
            "InvalidAddress",
            "The address is incomplete: a country is required.",
            ref="addresses.singleLocation.country",
        )
    if country not in {c for c, _ in RATES}:
        raise fault(
            "InvalidCountry",
            f"Country '{country}' is not a country this account collects tax in.",
            ref="addresses.singleLocation.country",
        )
    if country in _REGIONAL:
        juris = RATES.get((country, region))
        if juris is None:
            raise fault(
                "InvalidCountryRegion",
                f"Region '{region}' is not a valid region of country '{country}'.",
                ref="addresses.singleLocation.region",
            )
        return juris
    return RATES[(country, "")]
