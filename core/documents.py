"""The target document model: what the mappings produce, the ledger records and connectors send.

A ``Document`` is one mapped record for one target, keyed by ``DocKey`` (kind, source id); its
``payload_hash`` tells the ledger whether anything changed. A connector answers each document
with a ``WriteResult``: a record the system rejects does not fail its batch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from core.errors import ConnectorError

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
