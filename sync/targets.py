"""Which kinds each target takes, and the mapping that turns a source record into its document.

A target section in the config names its ``system`` (the connector) and, optionally, its
``mapping`` (which document shapes it takes; by default the system's own). The scripted test
system takes NetSuite's documents, so engine tests exercise the real mapping.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from billing.records import CreditNote, Customer, Invoice, Payment, Refund, SourceRecord
from core.documents import Document
from mappings import avatax, netsuite, tryton
from mappings.tables import MappingTables
from sync.extract import Page

#: Maps one record of a page; None means the target takes no document for this record.
MapFunction = Callable[[SourceRecord, Page, MappingTables], Document | None]


@dataclass(frozen=True)
class TargetMapping:
    """The document shapes of one kind of target."""

    name: str
    kinds: tuple[str, ...]
    map: MapFunction


def _map_netsuite(record: SourceRecord, page: Page, tables: MappingTables) -> Document | None:
    if isinstance(record, Customer):
        return netsuite.map_customer(record, tables)
    if isinstance(record, Invoice):
        return netsuite.map_invoice(record, tables, customer=page.customers.get(record.customer_id))
    if isinstance(record, CreditNote):
        return netsuite.map_credit_note(
            record, tables, customer=page.customers.get(record.customer_id)
        )
    if isinstance(record, Payment):
        return netsuite.map_payment(record, tables)
    if isinstance(record, Refund):
        return netsuite.map_refund(record, tables)
    return None


def _map_avatax(record: SourceRecord, page: Page, tables: MappingTables) -> Document | None:
    if isinstance(record, Invoice):
        return avatax.map_invoice(record, page.customers.get(record.customer_id), tables)
    if isinstance(record, CreditNote):
        return avatax.map_credit_note(
            record,
            page.customers.get(record.customer_id),
            page.invoice_dates.get(record.invoice_id),
            tables,
        )
    return None


def _map_tryton(record: SourceRecord, page: Page, tables: MappingTables) -> Document | None:
    if isinstance(record, Customer):
        return tryton.map_customer(record, tables)
    if isinstance(record, Invoice):
        return tryton.map_invoice(record, tables)
    if isinstance(record, CreditNote):
        return tryton.map_credit_note(record, tables)
    if isinstance(record, Payment):
        return tryton.map_payment(record, tables)
    if isinstance(record, Refund):
        return tryton.map_refund(record, tables)
    return None


MAPPINGS: dict[str, TargetMapping] = {
    # "revenue": monthly journals, built by sync/revrec.py rather than per record (map -> None).
    "netsuite": TargetMapping(
        "netsuite",
        ("customer", "invoice", "credit_note", "payment", "refund", "revenue"),
        _map_netsuite,
    ),
    "avatax": TargetMapping("avatax", ("invoice", "credit_note"), _map_avatax),
    "tryton": TargetMapping(
        "tryton",
        ("customer", "invoice", "credit_note", "payment", "refund", "revenue"),
        _map_tryton,
    ),
}


def connector_tables(system: str, tables: MappingTables) -> object:
    """The mapping tables as the connector of ``system`` takes them in ``check_mapping``.

    Tryton's connector also translates revenue journals into moves with them; that is mapping
    code, handed over here so that the connector imports nothing of ``mappings``.
    """
    return tryton.ConnectorTables(tables) if system == "tryton" else tables
