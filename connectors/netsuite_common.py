"""What the NetSuite SOAP and REST connectors share: accounting periods, batch ordering and
transport settings.

``accounting_periods()`` on either connector returns ``AccountingPeriod`` values, so the sync
can decide where a transaction posts (a closed period's policy: next open period, or fail).

``dependency_waves`` orders one ``send`` batch: a document never goes out before a document of
the same batch it depends on (a payment before the invoice it applies to would be refused, and
its apply line needs the invoice's internal id). The sync engine already sends kinds in order;
this keeps a mixed batch correct too. Apply lines name what they apply to by external id
(``applied_documents``: invoices, or the payments and credit memos refunds pay back); each
transport looks those up for their internal ids, except what the batch itself just wrote.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from core.documents import Document, WriteResult
from core.errors import RetryableError
from finsync.config import Section


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


def transport_settings(section: Section) -> dict[str, Any]:
    """The settings both transports share (concurrency, timeout, retries), read from a target
    section; ConfigError names the bad key."""
    return {
        "concurrency": section.int("concurrency", 5, minimum=1, maximum=100),
        "timeout_seconds": section.float("timeout_seconds", 120.0, minimum=1.0),
        "retry_attempts": section.int("retry_attempts", 5, minimum=1, maximum=100),
        "retry_deadline_seconds": section.float("retry_deadline_seconds", 300.0, minimum=1.0),
        "backoff_seconds": section.float("backoff_seconds", 1.0, minimum=0.0),
    }


def send_in_waves(
    documents: Sequence[Document],
    max_batch: int,
    send_wave: Callable[[list[int], dict[int, WriteResult]], None],
) -> list[WriteResult]:
    """The batch skeleton of both transports' ``send``: wave by wave (``dependency_waves``),
    documents whose dependency failed get that failure, the others go to ``send_wave``, which
    puts one result per index into the results. One result per document, in order."""
    if len(documents) > max_batch:
        raise ValueError(f"at most {max_batch} documents per send, got {len(documents)}")
    results: dict[int, WriteResult] = {}
    for wave in dependency_waves(documents):
        pending = []
        for i in wave:
            blocked = failed_dependency(documents, i, results)
            if blocked is not None:
                results[i] = blocked
            else:
                pending.append(i)
        if pending:
            send_wave(pending, results)
    return [results[i] for i in range(len(documents))]


def applied_documents(documents: Sequence[Document]) -> dict[str, str]:
    """External id -> record type of every document the apply lines of ``documents`` apply to
    by external id: an invoice unless the reference names its ``type`` (a refund applies to a
    ``customerPayment`` or a ``creditMemo``). Both transports need their internal ids."""
    return {
        line["doc"]["externalId"]: line["doc"].get("type", "invoice")
        for d in documents
        if d.operation != "delete"
        for line in d.payload.get("applyList", ())
        if isinstance(line.get("doc"), dict) and "externalId" in line["doc"]
    }


def missing_applied(
    operation: str, document: Document, doc_ids: Mapping[str, str]
) -> WriteResult | None:
    """A retryable failure of ``operation`` for ``document`` when a document it applies to (by
    external id) is not in ``doc_ids``, so not in NetSuite yet; None when every one was found."""
    missing = [ext for ext in applied_documents([document]) if ext not in doc_ids]
    if not missing:
        return None
    return WriteResult(
        document.external_id,
        False,
        error=RetryableError(
            "netsuite",
            operation,
            f"{document.label}: applied document(s) {', '.join(missing)} not found in NetSuite;"
            " sync them first",
            code="DEPENDENCY_NOT_FOUND",
        ),
    )


def documents_written(
    documents: Sequence[Document], results: Mapping[int, WriteResult]
) -> dict[str, str]:
    """External id -> internal id of documents NetSuite holds that need no look-up for the
    payments, credit memos and refunds applied to them: those the ledger recorded as written
    (``Document.known_ids``) and those this batch already wrote."""
    known = {ext: iid for d in documents for ext, iid in d.known_ids.items()}
    known.update(
        {
            documents[i].external_id: r.internal_id
            for i, r in results.items()
            if r.ok and r.internal_id
        }
    )
    return known
