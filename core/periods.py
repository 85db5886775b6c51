"""Accounting periods of a target's books: where a transaction posts, and whether it may.

The NetSuite connectors read them (``accounting_periods()``); the revenue-recognition mapping
and the sync decide with them where a journal posts (a closed period's policy).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class AccountingPeriod:
    """One posting period of the account: internal id, name (``Mar 2024``), first and last day.

    ``closed`` is True when finsync's transactions cannot post there: the period is closed, or
    locked for accounts receivable or for everything.
    """

    internal_id: str
    name: str
    start: date
    end: date
    closed: bool

    def contains(self, day: date) -> bool:
        """True when ``day`` falls within the period."""
        return self.start <= day <= self.end


def period_order(period: AccountingPeriod) -> tuple[date, date, str]:
    """Sort key: by first day, then last day, then internal id (adjustment periods)."""
    return (period.start, period.end, period.internal_id)
