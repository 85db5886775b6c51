"""What the NetSuite SOAP and REST connectors share: accounting periods and batch ordering.

``accounting_periods()`` on either connector returns ``AccountingPeriod`` values, so the sync
can decide where a transaction posts (a closed period's policy: next open period, or fail).

``dependency_waves`` orders one ``send`` batch: a document never goes out before a document of
the same batch it depends on (a payment before the invoice it applies to would be refused, and
its apply line needs the invoice's internal id). The sync engine already sends kinds in order;
this keeps a mixed batch correct too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from connectors.base import Document, WriteResult
from finsync.errors import RetryableError


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


def dependency_waves(documents: Sequence[Document]) -> list[list[int]]:
    """Positions of ``documents`` in waves: each document comes in a later wave than every
    document of the same batch it depends on. Order within a wave is the batch's order.

    Dependencies outside the batch are the caller's (the sync engine's) concern. A cycle, which
    the mappings never produce, is sent as one last wave in batch order rather than dropped.
    """
    position = {d.key: i for i, d in enumerate(documents)}
    needs = [
        {position[k] for k in d.depends_on if k in position and position[k] != i}
        for i, d in enumerate(documents)
    ]
    waves: list[list[int]] = []
    done: set[int] = set()
    remaining = list(range(len(documents)))
    while remaining:
        ready = [i for i in remaining if needs[i] <= done] or remaining
        waves.append(ready)
        done.update(ready)
        remaining = [i for i in remaining if i not in done]
    return waves


def failed_dependency(
    documents: Sequence[Document], index: int, results: Mapping[int, WriteResult]
) -> WriteResult | None:
    """A failed result for ``documents[index]`` when a document of the same batch it depends on
    has failed (it would only be refused in turn), else None. Retryable: once the dependency
    syncs, so can this one."""
    document = documents[index]
    keys = set(document.depends_on)
    failed = [
        documents[i].label
        for i, result in results.items()
        if not result.ok and documents[i].key in keys
    ]
    if not failed:
        return None
    return WriteResult(
        document.external_id,
        False,
        error=RetryableError(
            "netsuite",
            "upsert",
            f"{document.label}: not sent because {', '.join(sorted(failed))} failed in the "
            "same batch",
            code="DEPENDENCY_FAILED",
        ),
    )
