"""Calendar arithmetic of the generator: months added, a month's first and last day."""

from __future__ import annotations

from calendar import monthrange
from datetime import date
from functools import lru_cache


@lru_cache(maxsize=4096)
def add_months(day: date, months: int) -> date:
    """``day`` moved by ``months`` months (clamped to the end of a shorter month)."""
    years, month0 = divmod(day.month - 1 + months, 12)
    year = day.year + years
    return date(year, month0 + 1, min(day.day, monthrange(year, month0 + 1)[1]))


def month_start(day: date) -> date:
    """The first day of ``day``'s month."""
    return day.replace(day=1)


@lru_cache(maxsize=4096)
def month_end(day: date) -> date:
    """The last day of ``day``'s month."""
    return day.replace(day=monthrange(day.year, day.month)[1])
