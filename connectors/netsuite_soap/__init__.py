"""NetSuite SuiteTalk SOAP (endpoint 2023_2) connector: upsertList / getList / search with TBA.

May import what every connector may (``core``, ``finsync.config``, the shared connector
modules); never ``sync``, ``mappings``, the reports or the console.

- ``settings``: the version, caps and namespaces, and ``NetSuiteSoapSettings`` from config.
- ``transport``: zeep reads the WSDL once per process (``soap_client``); ``SoapTransport``
  builds envelopes with a fresh ``tokenPassport`` per request (HMAC-SHA256 over
  ``account&consumerKey&token&nonce&timestamp`` keyed ``consumerSecret&tokenSecret``) and sends
  them with httpx, so timeouts, retries and the concurrency limit are handled exactly like every
  other connector (``connectors.http``).
- ``messages``: the records of an upsertList, written with lxml in the element order and value
  formats of the WSDL's types (``RecordWriter``; zeep's own rendering is the reference the tests
  compare it with). Countries become the 2023_2 ``Country`` enumeration through the table
  generated from the XSD (``core/netsuite_countries.py``), never from display names.
- ``faults``: SOAP faults and write statuses classified in one table (``classify_fault``); one
  bad record fails only its own ``WriteResult``.
- ``replies``: reading replies with lxml; only status, ids and faults matter.
- ``connector``: ``NetSuiteSoapConnector``.

- Idempotency: ``upsertList`` matches on externalId and record type, so re-sending a batch whose
  outcome is unknown updates instead of duplicating.
- Apply sublists reference documents by internal id only (``doc`` is ``xsd:long``): the sync
  hands the connector the ids its ledger holds (``Document.known_ids``); what it lacks is looked
  up with getList.
- Order: a batch goes out in dependency waves (``netsuite_common.dependency_waves``), one
  upsertList each, so an invoice in the same batch is written (and its id known) before the
  payment applied to it.
- Voids: the 2023_2 endpoint has no void operation; a ``void`` document carries the voided
  (zeroed) payload and is written with the same upsert.
- ``accounting_periods()`` searches with ``AccountingPeriodSearch``.
- Secrets never appear in messages or logs: zeep's transport logger (which prints envelopes,
  passport included, at DEBUG) is silenced and unused.
"""

from connectors.netsuite_soap.connector import NetSuiteSoapConnector, build_netsuite
from connectors.netsuite_soap.faults import classify_fault
from connectors.netsuite_soap.settings import NetSuiteSoapSettings, default_endpoint
from connectors.netsuite_soap.transport import soap_client, tba_signature

__all__ = [
    "NetSuiteSoapConnector",
    "NetSuiteSoapSettings",
    "build_netsuite",
    "classify_fault",
    "default_endpoint",
    "soap_client",
    "tba_signature",
]
