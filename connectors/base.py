"""The connector protocol and the document that travels through it.

A connector takes target documents (already mapped, with their external ids) and writes them to
one system over one transport. It reports one ``WriteResult`` per document: a record the system
rejects does not fail its batch. Failures of the whole call (the system is down, credentials are
refused) are raised as the ``finsync.errors`` taxonomy: ``RetryableError`` (including
``RateLimitedError`` and ``OutcomeUnknownError``) or ``PermanentError`` (including ``AuthError``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from finsync.errors import ConnectorError

Operation = Literal["upsert", "void", "delete"]


@dataclass(frozen=True, slots=True)
class DocKey:
    """Identifies a source record within a target: (kind, source id)."""

    kind: str
    source_id: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.source_id}"


@dataclass(frozen=True)
class Document:
    """A mapped target document, ready to send.

    ``payload`` is JSON-compatible: amounts are decimal strings (exact), dates ISO strings.
    ``record_type`` is the vendor's record type (``invoice``, ``customerPayment``,
    ``SalesInvoice`` ...). ``external_id`` is the idempotency key derived from the billing
    record. ``depends_on`` lists the documents that must be synced before this one;
    ``known_ids`` the internal ids (by external id) of those the target already holds, as the
    ledger recorded them, so a connector need not look them up.
    """

    target: str
    kind: str
    source_id: str
    external_id: str
    record_type: str
    label: str
    payload: Mapping[str, Any]
    operation: Operation = "upsert"
    depends_on: tuple[DocKey, ...] = ()
    known_ids: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> DocKey:
        """The ledger key of this document."""
        return DocKey(self.kind, self.source_id)

    @property
    def payload_hash(self) -> str:
        """SHA-256 of the canonical JSON of operation and payload (equal: nothing to send)."""
        return payload_hash(self.operation, self.payload)


def canonical_json(payload: Mapping[str, Any]) -> str:
    """Deterministic JSON for hashing and storage (sorted keys, no spaces)."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def payload_hash(operation: str, payload: Mapping[str, Any]) -> str:
    """Hash of what would be sent; the ledger skips a document whose hash was already synced."""
    return hash_payload_text(operation, canonical_json(payload))


def hash_payload_text(operation: str, payload_text: str) -> str:
    """``payload_hash`` of a payload already turned into canonical JSON."""
    digest = hashlib.sha256()
    digest.update(operation.encode())
    digest.update(b"\0")
    digest.update(payload_text.encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class WriteResult:
    """The outcome of one document in a batch.

    ``ok`` with ``internal_id`` (the system's own id) on success; ``created`` tells a new record
    from an update when the system says so. On failure, ``error`` is a classified
    ``ConnectorError`` carrying the system's own message.
    """

    external_id: str
    ok: bool
    internal_id: str | None = None
    created: bool | None = None
    error: ConnectorError | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


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
