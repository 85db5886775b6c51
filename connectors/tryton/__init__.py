"""Tryton ERP connector (JSON-RPC over HTTP, httpx).

Tryton is a real ERP with its own books and rules: finsync creates parties, posts customer
invoices and credit notes, records payments and refunds as cash moves against the customer's
receivable, and posts revenue journals as account moves (payload shapes: ``mappings.tryton``).

- Session: ``common.db.login`` gives ``[user id, token]``; every call sends
  ``Authorization: Session base64(login:uid:token)`` and a context naming the document's company.
  An expired session (HTTP 401) is renewed with one new login and the call repeated.
- Encoding: Decimals travel as ``{"__class__": "Decimal", "decimal": "..."}`` and dates as
  ``{"__class__": "date", ...}``, both ways; money never becomes a float.
- Errors, classified in ``classify_rpc_error``: Tryton's user errors (validation, domain, closed
  period ...) come as HTTP 200 with ``{"error": [name, [message, description, ...]]}`` and are
  ``PermanentError`` carrying Tryton's own message; a refused login is ``AuthError``; transport
  failures, 5xx, concurrency and rate-limit answers, and server faults (a traceback instead of a
  user error) are retryable. Reads are retried within a budget; writes are not (a write whose
  answer is lost is ``OutcomeUnknownError``, and the engine looks it up before anything is sent
  again).
- Idempotency: every document carries finsync's external id where Tryton keeps a reference (the
  invoice's ``reference``, the move's ``description``, a party identifier), and it is SEARCHED
  BEFORE ANY CREATE. A document found half-done (a draft invoice, a missing deferral after a
  crash) is completed, never created twice. Posted documents are never rewritten: voids are
  reversing documents with their own reference (``<external id>:void``); a revenue journal that
  changes gets a move of the difference (description ``<external id>@<payload hash>``), so the
  journal's moves always add up to the latest payload.
- Batches: new documents of one company are created with one ``create`` and posted with one
  ``post`` (posting is most of Tryton's cost); when Tryton refuses a batch, its documents are
  retried one by one so only the bad record fails.
- The mapping is checked at start (``check_mapping``): every company, journal and account code
  of the mapping file's ``[tryton]`` section must exist in Tryton, or finsync stops with one line.
  The sync hands the mapping over as a ``TrytonMapping`` (``mappings.tryton.ConnectorTables``),
  which also translates revenue journals into Tryton moves: that is mapping code, so the
  connector imports none of it.

The package: ``rpc`` is the transport (settings, encoding, error classification, the session);
``books`` what every document kind stands on (the mapping check, charts, journals, batching,
look-ups, account moves); ``parties``, ``invoices`` (and credit notes), ``cash`` (payments and
refunds) and ``journals`` (revenue) handle one kind each; ``connector`` is the ``Connector``
over them. Like all of ``connectors``, it imports ``core``, ``finsync.config`` and its sibling
modules, never ``sync`` or ``mappings``.
"""

from connectors.tryton.books import TrytonCodes, TrytonMapping
from connectors.tryton.connector import TrytonConnector, build_tryton
from connectors.tryton.rpc import (
    SYSTEM,
    TrytonRpc,
    TrytonSettings,
    classify_rpc_error,
    dumps,
    loads,
)

__all__ = [
    "SYSTEM",
    "TrytonCodes",
    "TrytonConnector",
    "TrytonMapping",
    "TrytonRpc",
    "TrytonSettings",
    "build_tryton",
    "classify_rpc_error",
    "dumps",
    "loads",
]
