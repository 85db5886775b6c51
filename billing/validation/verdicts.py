"""What validation decides: the rejected records (``Rejection``, ``Verdicts``) and where it
reads billing from (``BillingSource``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from billing.records import (
    Product,
    SourceRecord,
)
from core.errors import Problem

#: Rejection kinds, in the order rejections are listed.
REJECTION_KINDS = (
    "customer",
    "product",
    "invoice",
    "credit_note",
    "payment",
    "refund",
    "revenue_entry",
)


@dataclass(frozen=True)
class Rejection:
    """A billing record that breaks the contract, with every reason and its fix."""

    kind: str  # one of REJECTION_KINDS
    record_id: int  # billing primary key
    label: str  # how messages name the record, e.g. "invoice INV-1001"
    currency: str | None  # as billing holds it (may be invalid)
    amount: Decimal | None  # the record's total or amount as billing holds it
    problems: tuple[Problem, ...]

    @property
    def message(self) -> str:
        """One line: the record, then each field with what is wrong and what to do."""
        return f"{self.label}: " + "; ".join(str(p) for p in self.problems)


class Verdicts:
    """The outcome of one validation pass: the rejected records, in kind order then id."""

    def __init__(self, rejections: Iterable[Rejection] = ()) -> None:
        order = {kind: i for i, kind in enumerate(REJECTION_KINDS)}
        self.rejections: tuple[Rejection, ...] = tuple(
            sorted(rejections, key=lambda r: (order.get(r.kind, len(order)), r.record_id))
        )
        self._by_key = {(r.kind, r.record_id): r for r in self.rejections}

    def rejected(self, kind: str, record_id: int) -> Rejection | None:
        """The rejection of record ``record_id`` of ``kind``, or None when it is sound."""
        return self._by_key.get((kind, record_id))

    def of_kind(self, kind: str) -> tuple[Rejection, ...]:
        """The rejections of one kind, by id."""
        return tuple(r for r in self.rejections if r.kind == kind)

    def ids(self, kind: str) -> frozenset[int]:
        """The billing ids of the rejected records of one kind."""
        return frozenset(r.record_id for r in self.rejections if r.kind == kind)

    def __len__(self) -> int:
        return len(self.rejections)


class BillingSource(Protocol):
    """Where validation reads billing from (``sync.extract.BillingReader`` is one)."""

    def products(self) -> Mapping[int, Product]:
        """Every product by id."""
        ...

    def all_records(self, kind: str) -> Iterator[SourceRecord]:
        """Every record of ``kind`` (customer, invoice, credit_note, payment, refund, revenue),
        by id; revenue entries by (invoice_line_id, id), so a line's schedule comes together."""
        ...
