"""How validation words its problems: amounts at the currency's scale, and the shared phrases."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from core.errors import Problem
from core.money import (
    amount_text,
    decimal_text,
    is_known_currency,
    is_rounded,
)

#: Zero as a Decimal, for sums and comparisons of amounts.
ZERO = Decimal(0)


def money_text(amount: Decimal, currency: str | None) -> str:
    """``amount`` as people read it: at the currency's scale when it is rounded to it, else
    exactly as billing holds it (without a database column's trailing zeros)."""
    if currency and is_known_currency(currency) and is_rounded(amount, currency):
        return amount_text(amount, currency)
    return decimal_text(amount)


def plain(value: Decimal) -> str:
    """A quantity, price or rate without a database column's trailing zeros."""
    return money_text(value, None)


def fix_first(what: str) -> str:
    """The problem of a record that refers to ``what``, a rejected record."""
    return f"{what} is rejected (see its own message): fix it in billing first"


def date_order_problem(where: str, later: date, earlier: date, earlier_name: str) -> Problem:
    """The problem of a date ``later`` that falls before ``earlier``."""
    return Problem(
        where,
        f"{later} is before {earlier_name} {earlier}: correct the dates in billing",
    )
