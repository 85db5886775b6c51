"""The connector protocol.

A connector takes target documents (``core.documents.Document``: already mapped, with their
external ids) and writes them to one system over one transport. It reports one ``WriteResult``
per document: a record the system rejects does not fail its batch. Failures of the whole call
(the system is down, credentials are refused) are raised as the ``core.errors`` taxonomy:
``RetryableError`` (including ``RateLimitedError`` and ``OutcomeUnknownError``) or
``PermanentError`` (including ``AuthError``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from core.documents import Document, WriteResult


@runtime_checkable
class Connector(Protocol):
    """What the push engine needs from a target system."""

    #: Name of the system, e.g. ``netsuite`` or ``avatax``; used in messages and the ledger.
    system: str
    #: Largest number of documents one ``send`` call accepts.
    max_batch: int

    def send(self, documents: Sequence[Document]) -> list[WriteResult]:
        """Write ``documents`` (upsert, void or delete each). One result per document, in order.

        Raises RetryableError / PermanentError for failures of the whole call.
        """
        ...

    def lookup(self, documents: Sequence[Document]) -> dict[str, str | None]:
        """Find documents by external id: external id -> internal id, or None if absent.

        Used before re-sending a write whose outcome is unknown.
        """
        ...

    def close(self) -> None:
        """Release connections."""
        ...
