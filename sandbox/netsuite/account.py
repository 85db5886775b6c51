"""The sandbox account's reference data: what a NetSuite account holds before finsync writes.

The internal ids match ``mapping.example.toml`` so the demo mapping works unchanged. Accounting
periods are monthly; each can be closed and reopened while the sandbox runs.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class Subsidiary:
    """A subsidiary of the OneWorld account: internal id, name and base currency (ISO code)."""

    internal_id: str
    name: str
    base_currency: str


@dataclass(frozen=True)
class Period:
    """A monthly accounting period: internal id, first and last day, NetSuite-style name."""

    internal_id: str
    start: date
    end: date

    @property
    def name(self) -> str:
        """The period name NetSuite shows, e.g. ``Mar 2024``."""
        return self.start.strftime("%b %Y")

    @property
    def key(self) -> str:
        """``YYYY-MM``, the key of the general ledger view."""
        return self.start.strftime("%Y-%m")


SUBSIDIARIES = (
    Subsidiary("1", "Acme Inc. (acme-us)", "USD"),
    Subsidiary("2", "Acme GmbH (acme-de)", "EUR"),
    Subsidiary("3", "Acme Ltd (acme-uk)", "GBP"),
    Subsidiary("4", "Acme KK (acme-jp)", "JPY"),
    Subsidiary("5", "Acme WLL (acme-kw)", "KWD"),
)
CURRENCIES = {"1": "USD", "2": "GBP", "4": "EUR", "7": "JPY", "12": "KWD"}
ITEMS = frozenset({"101", "102", "103", "401", "201", "301", "302"})
TAX_CODES = frozenset({"11", "12", "-7"})
ACCOUNTS = frozenset(
    {"1100", "1200", "2200", "2500", "2510", "2520", "2530", "4000", "4100", "4200", "4300"}
)
DEPARTMENTS = frozenset({"10", "20", "30"})
# The example mapping sets no class or location; a few exist so the fields can be exercised.
CLASSES = frozenset({"1", "2"})
LOCATIONS = frozenset({"1"})


def _month(text: str) -> date:
    year, month = text.split("-")
    return date(int(year), int(month), 1)


def _next_month(day: date) -> date:
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)


class AccountSetup:
    """Reference data and accounting periods of the sandbox account. Thread-safe.

    ``periods`` is the first and last month (``YYYY-MM``) of the monthly periods; all start open.
    """

    def __init__(self, periods: tuple[str, str] = ("2024-01", "2027-12")) -> None:
        first, last = _month(periods[0]), _month(periods[1])
        if last < first:
            raise ValueError(f"periods must run forward, got {periods[0]} .. {periods[1]}")
        self.subsidiaries = {s.internal_id: s for s in SUBSIDIARIES}
        self.currencies = dict(CURRENCIES)
        self.items = ITEMS
        self.tax_codes = TAX_CODES
        self.accounts = ACCOUNTS
        self.departments = DEPARTMENTS
        self.classes = CLASSES
        self.locations = LOCATIONS
        self.periods: list[Period] = []
        month = first
        while month <= last:
            following = _next_month(month)
            self.periods.append(
                Period(
                    str(len(self.periods) + 1), month, date.fromordinal(following.toordinal() - 1)
                )
            )
            month = following
        self._by_id = {p.internal_id: p for p in self.periods}
        self._closed: set[str] = set()
        self._lock = threading.Lock()

    def reference_ids(self, kind: str) -> frozenset[str]:
        """The internal ids of one kind of reference data (``subsidiary``, ``item`` ...)."""
        table = {
            "subsidiary": frozenset(self.subsidiaries),
            "currency": frozenset(self.currencies),
            "item": self.items,
            "taxCode": self.tax_codes,
            "account": self.accounts,
            "department": self.departments,
            "class": self.classes,
            "location": self.locations,
            "accountingPeriod": frozenset(self._by_id),
        }
        return table[kind]

    def period_for(self, day: date) -> Period | None:
        """The monthly period containing ``day``, or None when the account has none."""
        for period in self.periods:
            if period.start <= day <= period.end:
                return period
        return None

    def period(self, internal_id: str) -> Period | None:
        """The period with this internal id, or None."""
        return self._by_id.get(internal_id)

    def is_closed(self, period: Period) -> bool:
        """True when nothing may post into ``period``."""
        with self._lock:
            return period.internal_id in self._closed

    def close_period(self, day: date) -> Period:
        """Close the period containing ``day``. Raises ValueError when there is none."""
        period = self._require(day)
        with self._lock:
            self._closed.add(period.internal_id)
        return period

    def open_period(self, day: date) -> Period:
        """Reopen the period containing ``day``. Raises ValueError when there is none."""
        period = self._require(day)
        with self._lock:
            self._closed.discard(period.internal_id)
        return period

    def _require(self, day: date) -> Period:
        period = self.period_for(day)
        if period is None:
            raise ValueError(f"the sandbox account has no accounting period for {day}")
        return period
