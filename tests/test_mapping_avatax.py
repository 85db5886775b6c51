"""AvaTax mapping: golden payloads, voids, credit notes, and every problem in one error."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from core.documents import DocKey
from core.errors import MappingError
from mappings import avatax
from mappings.tables import EntityMapping
from tests.avatax_records import credit_note, customer, invoice, line, tables

GOLDEN = Path(__file__).parent / "golden" / "avatax"


def _golden(name: str, payload: object) -> None:
    """Compare with the golden file; UPDATE_GOLDEN=1 rewrites it (review the diff)."""
    path = GOLDEN / f"{name}.json"
    text = json.dumps(payload, indent=2, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


def test_finalized_invoice_is_a_committed_sales_invoice_with_billed_tax_override() -> None:
    cust = customer()
    doc = avatax.map_invoice(invoice(cust=cust), cust, tables())

    assert (doc.target, doc.kind, doc.source_id) == ("avatax", "invoice", "10")
    assert (doc.external_id, doc.record_type, doc.operation) == (
        "INV-2026-0010",
        "SalesInvoice",
        "upsert",
    )
    model = doc.payload["createTransactionModel"]
    assert model["type"] == "SalesInvoice" and model["commit"] is True
    assert model["companyCode"] == "ACME_US"
    assert model["customerCode"] == "C-0001" and model["date"] == "2026-03-05"
    assert model["addresses"]["singleLocation"] == {
        "line1": "1 Market St",
        "city": "San Francisco",
        "region": "CA",
        "country": "US",
        "postalCode": "94105",
    }
    assert [
        (li["number"], li["itemCode"], li["taxCode"], li["quantity"], li["amount"])
        for li in model["lines"]
    ] == [
        ("1", "plat-pro", "SW054000", "2", "398.00"),
        ("2", "onboarding", "S0000000", "1", "1500.00"),
    ]
    assert model["taxOverride"]["type"] == "TaxAmount"
    assert model["taxOverride"]["taxAmount"] == "137.61"
    assert "exemptionNo" not in model
    _golden("sales_invoice", doc.payload)


def test_exempt_customer_sends_its_exemption_number() -> None:
    cust = customer(exempt=True)
    doc = avatax.map_invoice(invoice(cust=cust), cust, tables())
    assert doc.payload["createTransactionModel"]["exemptionNo"] == "EX-778899"


def test_amounts_keep_the_currency_decimals_exactly() -> None:
    jp = customer(entity="acme-jp")
    inv = invoice(
        cust=jp, lines=(line(1, "plat-pro", "1", "29800", "29800", "0.10", "2980", "JP"),)
    )
    model = avatax.map_invoice(inv, jp, tables()).payload["createTransactionModel"]
    assert model["currencyCode"] == "JPY" and model["companyCode"] == "ACME_JP"
    assert model["lines"][0]["amount"] == "29800"
    assert model["taxOverride"]["taxAmount"] == "2980"
    assert "region" not in model["addresses"]["singleLocation"]


def test_voided_invoice_becomes_a_void_of_the_same_document() -> None:
    cust = customer()
    doc = avatax.map_invoice(invoice(cust=cust, status="void"), cust, tables())
    assert doc.operation == "void"
    assert doc.external_id == "INV-2026-0010" and doc.record_type == "SalesInvoice"
    assert doc.payload == {
        "companyCode": "ACME_US",
        "transactionCode": "INV-2026-0010",
        "documentType": "SalesInvoice",
        "voidTransactionModel": {"code": "DocVoided"},
    }
    _golden("invoice_void", doc.payload)


def test_credit_note_is_a_return_invoice_referring_to_its_invoice() -> None:
    cust = customer()
    inv = invoice(cust=cust)
    doc = avatax.map_credit_note(credit_note(inv), cust, inv.issue_date, tables())

    assert (doc.kind, doc.source_id, doc.external_id, doc.record_type) == (
        "credit_note",
        "50",
        "CN-2026-0050",
        "ReturnInvoice",
    )
    assert doc.depends_on == (DocKey("invoice", "10"),)
    model = doc.payload["createTransactionModel"]
    assert model["type"] == "ReturnInvoice" and model["commit"] is True
    assert model["code"] == "CN-2026-0050"
    assert model["referenceCode"] == "INV-2026-0010"
    assert model["date"] == "2026-03-20"
    assert model["taxOverride"] == {
        "type": "TaxDate",
        "taxDate": "2026-03-05",
        "reason": "Return against invoice INV-2026-0010",
    }
    assert model["lines"][0]["amount"] == "-398.00"
    assert model["lines"][0]["taxOverride"]["taxAmount"] == "-28.86"
    _golden("return_invoice", doc.payload)


def test_voided_credit_note_voids_the_return_invoice() -> None:
    cust = customer()
    inv = invoice(cust=cust)
    doc = avatax.map_credit_note(credit_note(inv, status="void"), cust, inv.issue_date, tables())
    assert doc.operation == "void"
    assert doc.payload["documentType"] == "ReturnInvoice"
    assert doc.payload["transactionCode"] == "CN-2026-0050"


def test_every_problem_is_reported_in_one_mapping_error() -> None:
    t = tables()
    entities = dict(t.entities)
    entities["acme-us"] = EntityMapping(netsuite_subsidiary="1")  # no avatax_company
    t = replace(t, entities=entities)
    cust = replace(customer(), country=None, address_line1=None)
    bad_line = replace(invoice().lines[0], amount=Decimal("398.001"))
    inv = invoice(cust=cust, lines=(bad_line, invoice().lines[1]))

    with pytest.raises(MappingError) as info:
        avatax.map_invoice(inv, cust, t)

    err = info.value
    assert err.record == "invoice INV-2026-0010"
    by_field = {p.field: p.message for p in err.problems}
    assert by_field["billing_entity"] == (
        "add avatax_company to [entities.acme-us] in the mapping file"
    )
    assert "customer.country" in by_field
    assert "customer.address_line1" in by_field
    assert "line 1.amount" in by_field  # from the shared checks in billing/validation/


def test_missing_customer_and_unknown_entity_are_named() -> None:
    inv = replace(invoice(), billing_entity="acme-xx")
    with pytest.raises(MappingError) as info:
        avatax.map_invoice(inv, None, tables())
    fields = [p.field for p in info.value.problems]
    assert fields.count("billing_entity") == 1 and "customer_id" in fields
    assert "[entities.acme-xx]" in str(info.value)


def test_us_customer_without_state_cannot_be_taxed() -> None:
    cust = customer(region=None)
    with pytest.raises(MappingError) as info:
        avatax.map_invoice(invoice(cust=cust), cust, tables())
    assert [p.field for p in info.value.problems] == ["customer.region"]


def test_tax_exempt_customer_without_certificate_is_refused() -> None:
    cust = replace(customer(exempt=True), exemption_number=None)
    with pytest.raises(MappingError) as info:
        avatax.map_invoice(invoice(cust=cust), cust, tables())
    assert [p.field for p in info.value.problems] == ["customer.exemption_number"]


def test_credit_note_without_invoice_date_is_refused() -> None:
    cust = customer()
    inv = invoice(cust=cust)
    with pytest.raises(MappingError) as info:
        avatax.map_credit_note(credit_note(inv), cust, None, tables())
    assert "taxed as of that date" in str(info.value)
