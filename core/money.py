"""Money helpers: Decimal amounts rounded to each currency's minor units.

A float anywhere near an amount is a bug; these functions refuse floats outright.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from functools import cache

from babel.numbers import get_currency_precision, list_currencies

#: ISO 4217 codes that are not money anyone is invoiced in: precious metals, fund and
#: settlement units, the testing code XTS and XXX, "no currency".
NON_MONETARY_CODES = frozenset(
    {"XAD", "XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XDR", "XEU", "XFO", "XFU"}
    | {"XPD", "XPT", "XRE", "XSU", "XTS", "XUA", "XXX"}
)


@cache
def _known_currencies() -> frozenset[str]:
    return frozenset(list_currencies()) - NON_MONETARY_CODES


def is_known_currency(code: str) -> bool:
    """True when ``code`` is an uppercase ISO 4217 code of a currency babel knows (``usd`` and
    the non-monetary ``XXX`` are not)."""
    return code in _known_currencies()


@cache
def minor_units(currency: str) -> int:
    """Number of decimals of ``currency`` (JPY 0, USD 2, KWD 3). Raises ValueError if unknown."""
    if not is_known_currency(currency):
        raise ValueError(f"unknown currency code {currency!r}")
    return int(get_currency_precision(currency))


@cache
def quantum(currency: str) -> Decimal:
    """The smallest amount of ``currency`` as a Decimal exponent (Decimal('0.01') for USD)."""
    return Decimal(1).scaleb(-minor_units(currency))


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Round ``amount`` half-up to the minor units of ``currency``."""
    if not isinstance(amount, Decimal):
        raise TypeError(f"money must be Decimal, got {type(amount).__name__}")
    return amount.quantize(quantum(currency), rounding=ROUND_HALF_UP)


def is_rounded(amount: Decimal, currency: str) -> bool:
    """True when ``amount`` carries no more decimals than ``currency`` allows."""
    return amount == amount.quantize(quantum(currency))


def decimal_text(value: Decimal) -> str:
    """Exact plain decimal string without exponent or trailing zeros ("1.5", "100", "0")."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def amount_text(amount: Decimal, currency: str) -> str:
    """Exact amount string with exactly the currency's minor units ("1234.50", JPY "7400")."""
    return str(amount.quantize(quantum(currency)))


def split_evenly(total: Decimal, parts: int, currency: str) -> list[Decimal]:
    """Split ``total`` into ``parts`` amounts that differ by at most one minor unit and sum to it.

    The remainder goes to the first parts, so the split is deterministic.
    """
    if parts <= 0:
        raise ValueError("parts must be positive")
    q = quantum(currency)
    units = int((total / q).to_integral_value())
    if Decimal(units) * q != total:
        raise ValueError(f"{total} is not rounded to {currency} minor units")
    base, rest = divmod(abs(units), parts)
    sign = -1 if units < 0 else 1
    return [sign * Decimal(base + (1 if i < rest else 0)) * q for i in range(parts)]
