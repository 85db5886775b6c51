"""NetSuite mapping: pure functions from billing records to neutral NetSuite payloads."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from core.documents import DocKey, Document, canonical_json
from core.errors import MappingError
from mappings import netsuite as ns
from tests.netsuite_records import (
    PRODUCTS,
    credit_note,
    customer,
    invoice,
    line,
    payment,
    refund,
    tables,
    usd_invoice,
)

GOLDEN = Path(__file__).parent / "golden" / "netsuite"


def _golden(name: str) -> dict[str, object]:
    return json.loads((GOLDEN / name).read_text(encoding="utf-8"))


def _as_golden(doc: Document) -> dict[str, object]:
    return {
        "target": doc.target,
        "kind": doc.kind,
        "source_id": doc.source_id,
        "external_id": doc.external_id,
        "record_type": doc.record_type,
        "label": doc.label,
        "operation": doc.operation,
        "depends_on": [str(k) for k in doc.depends_on],
        "payload": json.loads(canonical_json(doc.payload)),
    }


@pytest.mark.parametrize(
    ("name", "build"),
    [
        ("customer.json", lambda t: ns.map_customer(customer(), t)),
        ("invoice.json", lambda t: ns.map_invoice(usd_invoice(), t, customer=customer())),
        ("credit_memo.json", lambda t: ns.map_credit_note(credit_note(), t)),
        (
            "customer_payment.json",
            lambda t: ns.map_payment(
                payment(apps=((10, "INV-1042", "500.00"), (11, "INV-1043", "150.00"))), t
            ),
        ),
        ("invoice_void.json", lambda t: ns.map_invoice(usd_invoice(status="void"), t)),
    ],
)
def test_payloads_match_golden_files(name, build):
    assert _as_golden(build(tables())) == _golden(name)


def test_payload_is_json_without_floats():
    doc = ns.map_invoice(usd_invoice(), tables())

    def walk(value):
        assert not isinstance(value, float)
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(doc.payload)
    json.dumps(doc.payload)


def test_invoice_document_identity_and_dependencies():
    doc = ns.map_invoice(usd_invoice(), tables())
    assert (doc.target, doc.kind, doc.source_id) == ("netsuite", "invoice", "10")
    assert doc.external_id == "finsync:inv:INV-1042"
    assert doc.record_type == "invoice"
    assert doc.operation == "upsert"
    assert doc.depends_on == (DocKey("customer", "1"),)
    assert doc.payload["entity"] == {"externalId": "finsync:cust:C-0001"}
    assert doc.payload["subsidiary"] == {"internalId": "1"}
    assert doc.payload["currency"] == {"internalId": "1"}


def test_discounted_line_amount_is_net_and_rate_rounded_when_inexact():
    first, second = ns.map_invoice(usd_invoice(), tables()).payload["itemList"]
    # 3 x 199.00 - 50.00 discount = 547.00; 547 / 3 is not exact
    assert first["amount"] == "547.00"
    assert first["quantity"] == "3"
    assert first["rate"] == "182.33333333"
    assert second["rate"] == "1500"
    assert second["amount"] == "1500.00"


def test_discounted_line_rate_exact_when_division_is_exact():
    inv = invoice(lines=(line(1, "seats", "4", "12.50", "10.00", "40.00", "0", "0"),))
    (item,) = ns.map_invoice(inv, tables()).payload["itemList"]
    assert (item["quantity"], item["rate"], item["amount"]) == ("4", "10", "40.00")
    assert Decimal(item["quantity"]) * Decimal(item["rate"]) == Decimal(item["amount"])


def test_tax_total_and_line_taxes_sum_to_billing_total():
    inv = usd_invoice()
    payload = ns.map_invoice(inv, tables()).payload
    net = sum(Decimal(i["amount"]) for i in payload["itemList"])
    tax = sum(Decimal(i["tax1Amt"]) for i in payload["itemList"])
    assert "taxTotal" not in payload  # NetSuite computes it from the lines
    assert tax == inv.tax_total == Decimal("148.41")
    assert net + tax == inv.total == Decimal("2195.41")
    assert payload["itemList"][0]["taxRate1"] == "7.25"


def test_service_dates_pass_through_inclusive():
    first, second = ns.map_invoice(usd_invoice(), tables()).payload["itemList"]
    assert (first["revRecStartDate"], first["revRecEndDate"]) == ("2024-03-01", "2024-03-31")
    assert "revRecStartDate" not in second


def test_jpy_amounts_have_no_decimals():
    inv = invoice(
        entity="acme-jp",
        currency="JPY",
        lines=(line(1, "plat-pro", "2", "29800", "1000", "58600", "0.10", "5860"),),
    )
    payload = ns.map_invoice(inv, tables()).payload
    (item,) = payload["itemList"]
    assert (item["amount"], item["rate"], item["tax1Amt"]) == ("58600", "29300", "5860")
    assert payload["currency"] == {"internalId": "7"}
    assert payload["subsidiary"] == {"internalId": "4"}


def test_kwd_amounts_keep_three_decimals():
    inv = invoice(
        entity="acme-kw",
        currency="KWD",
        lines=(
            line(1, "seats", "3", "3.875", "0.125", "11.500", "0", "0.000"),
            line(2, "plat-pro", "1", "61.500", "0", "61.500", "0", "0"),
        ),
    )
    payload = ns.map_invoice(inv, tables()).payload
    assert [i["amount"] for i in payload["itemList"]] == ["11.500", "61.500"]
    assert payload["itemList"][0]["rate"] == "3.83333333"
    assert payload["itemList"][1]["tax1Amt"] == "0.000"


def test_exempt_customer_lines_use_exempt_tax_code():
    cust = customer(exempt=True)
    inv = invoice(cust=cust, lines=(line(1, "seats", "1", "12.50", "0", "12.50", "0", "0"),))
    (item,) = ns.map_invoice(inv, tables(), customer=cust).payload["itemList"]
    assert item["taxCode"] == {"internalId": "-7"}
    (normal,) = ns.map_invoice(inv, tables()).payload["itemList"]
    assert normal["taxCode"] == {"internalId": "11"}


def test_department_comes_from_family_then_entity():
    payload = ns.map_invoice(usd_invoice(), tables()).payload
    assert payload["department"] == {"internalId": "10"}  # entity acme-us
    assert payload["itemList"][0]["department"] == {"internalId": "20"}  # platform family
    assert payload["itemList"][1]["department"] == {"internalId": "30"}  # services family


def test_voided_invoice_maps_to_void_with_zero_amounts():
    doc = ns.map_invoice(usd_invoice(status="void"), tables())
    assert doc.operation == "void"
    assert doc.external_id == "finsync:inv:INV-1042"
    assert doc.payload["memo"] == "VOID: March subscription"
    assert {i["tax1Amt"] for i in doc.payload["itemList"]} == {"0.00"}
    assert {i["amount"] for i in doc.payload["itemList"]} == {"0.00"}


def test_credit_note_created_from_and_applied_to_invoice():
    doc = ns.map_credit_note(credit_note(), tables())
    assert doc.record_type == "creditMemo"
    assert doc.external_id == "finsync:cn:CN-7"
    assert doc.depends_on == (DocKey("customer", "1"), DocKey("invoice", "10"))
    assert doc.payload["createdFrom"] == {"externalId": "finsync:inv:INV-1042"}
    assert doc.payload["applyList"] == [
        {"doc": {"externalId": "finsync:inv:INV-1042"}, "apply": True, "amount": "1608.75"}
    ]
    assert doc.payload["itemList"][0]["amount"] == "1500.00"
    assert doc.payload["itemList"][0]["tax1Amt"] == "108.75"


@pytest.mark.parametrize(
    ("open_amount", "apply_list"),
    [
        (
            "5000.00",
            [{"doc": {"externalId": "finsync:inv:INV-1042"}, "apply": True, "amount": "1608.75"}],
        ),
        (
            "600.25",
            [{"doc": {"externalId": "finsync:inv:INV-1042"}, "apply": True, "amount": "600.25"}],
        ),
        ("0.00", []),  # the invoice was paid in full: the credit was refunded, not applied
        ("-20.00", []),
    ],
)
def test_credit_note_applies_only_what_the_invoice_still_owed(open_amount, apply_list):
    note = replace(credit_note(), invoice_open_amount=Decimal(open_amount))
    doc = ns.map_credit_note(note, tables())
    assert doc.payload["applyList"] == apply_list
    assert doc.payload["itemList"][0]["amount"] == "1500.00"  # the memo itself is whole


def test_payment_applies_per_invoice_and_leaves_remainder_unapplied():
    p = payment(
        amount="700.00",
        apps=((10, "INV-1042", "300.00"), (11, "INV-1043", "150.00"), (10, "INV-1042", "200.00")),
    )
    doc = ns.map_payment(p, tables())
    assert doc.record_type == "customerPayment"
    assert doc.payload["payment"] == "700.00"
    assert doc.payload["autoApply"] is False
    assert doc.payload["applyList"] == [
        {"doc": {"externalId": "finsync:inv:INV-1042"}, "apply": True, "amount": "500.00"},
        {"doc": {"externalId": "finsync:inv:INV-1043"}, "apply": True, "amount": "150.00"},
    ]
    applied = sum(Decimal(a["amount"]) for a in doc.payload["applyList"])
    assert Decimal(doc.payload["payment"]) - applied == p.unapplied == Decimal("50.00")
    assert doc.depends_on == (
        DocKey("customer", "1"),
        DocKey("invoice", "10"),
        DocKey("invoice", "11"),
    )


@pytest.mark.parametrize("status", ["failed", "reversed"])
def test_failed_or_reversed_payment_is_void(status):
    doc = ns.map_payment(payment(apps=((10, "INV-1042", "700.00"),), status=status), tables())
    assert doc.operation == "void"
    assert doc.payload["applyList"] == []
    assert doc.payload["payment"] == "0.00"


def test_customer_payload():
    doc = ns.map_customer(customer(), tables())
    assert doc.external_id == "finsync:cust:C-0001"
    assert doc.depends_on == ()
    p = doc.payload
    assert (p["entityId"], p["companyName"], p["isPerson"]) == ("C-0001", "Globex Corp", False)
    assert p["addressbookList"][0]["addressbookAddress"]["country"] == "US"


def test_mapping_error_lists_every_problem_with_field_paths():
    unknown = replace(PRODUCTS["plat-pro"], sku="cdn-pro", product_family="cdn", tax_code=None)
    bad = replace(line(2, "plat-pro", "1", "10.00", "0", "10.00", "0", "0"), product=unknown)
    inv = invoice(
        lines=(line(1, "seats", "1", "12.50", "0", "12.50", "0", "0"), bad),
        entity="acme-fr",
        currency="CHF",
    )
    inv = replace(inv, due_date=date(2024, 2, 1))
    with pytest.raises(MappingError) as err:
        ns.map_invoice(inv, tables())
    fields = [p.field for p in err.value.problems]
    assert fields == [
        "due_date",
        "billing_entity",
        "currency",
        "line 2.product",
        "line 2.product",
        "line 2.product",
    ]
    text = str(err.value)
    assert text.startswith("invoice INV-1042: ")
    assert (
        "line 2.product: no item mapped for SKU 'cdn-pro': add it to mapping file "
        "mapping.example.toml [items] table"
    ) in text
    assert "billing entity 'acme-fr'" in text
    assert "no NetSuite currency mapped for 'CHF'" in text
    assert "product family 'cdn'" in text
    assert "has no tax code" in text


def test_missing_exempt_tax_code_is_reported():
    t = tables()
    t = replace(t, tax_codes={k: v for k, v in t.tax_codes.items() if k != "EXEMPT"})
    cust = customer(exempt=True)
    inv = invoice(cust=cust, lines=(line(1, "seats", "1", "12.50", "0", "12.50", "0", "0"),))
    with pytest.raises(MappingError) as err:
        ns.map_invoice(inv, t, customer=cust)
    assert [p.field for p in err.value.problems] == ["line 1.tax_code"]
    assert "'EXEMPT'" in str(err.value)


def test_payment_problems_collected():
    p = replace(payment(apps=((10, None, "800.00"),)), received_on=None, billing_entity=None)
    with pytest.raises(MappingError) as err:
        ns.map_payment(p, tables())
    fields = {pr.field for pr in err.value.problems}
    assert {"received_on", "application 300.invoice_id", "applications", "billing_entity"} <= fields


def test_refund_of_a_payment_applies_to_that_payment_and_waits_for_it():
    doc = ns.map_refund(refund(amount="50.00", payment_of=(30, "PAY-9")), tables())
    assert doc.kind == "refund"
    assert doc.record_type == "customerRefund"
    assert doc.external_id == "finsync:ref:RF-7"
    assert doc.operation == "upsert"
    assert doc.payload["customer"] == {"externalId": "finsync:cust:C-0001"}
    assert doc.payload["tranDate"] == "2024-03-25"
    assert doc.payload["tranId"] == "RF-7"
    assert doc.payload["memo"] == "refund RF-7 of payment PAY-9"
    assert doc.payload["currency"] == {"internalId": tables().currencies["USD"]}
    assert doc.payload["applyList"] == [
        {
            "doc": {"externalId": "finsync:pay:PAY-9", "type": "customerPayment"},
            "apply": True,
            "amount": "50.00",
        }
    ]
    assert doc.depends_on == (DocKey("customer", "1"), DocKey("payment", "30"))


def test_refund_of_a_credit_note_applies_to_its_credit_memo():
    doc = ns.map_refund(
        refund(amount="120.5", payment_of=None, credit_note_of=(21, "CN-3")), tables()
    )
    assert doc.payload["applyList"] == [
        {
            "doc": {"externalId": "finsync:cn:CN-3", "type": "creditMemo"},
            "apply": True,
            "amount": "120.50",
        }
    ]
    assert doc.payload["memo"] == "refund RF-7 of credit note CN-3"
    assert doc.depends_on == (DocKey("customer", "1"), DocKey("credit_note", "21"))


@pytest.mark.parametrize(
    ("currency", "entity", "amount", "sent"),
    [("JPY", "acme-jp", "7400", "7400"), ("KWD", "acme-kw", "15.25", "15.250")],
)
def test_refund_amount_has_the_currency_minor_units(currency, entity, amount, sent):
    doc = ns.map_refund(refund(amount=amount, currency=currency, entity=entity), tables())
    assert doc.payload["applyList"][0]["amount"] == sent


def test_refund_problems_collected():
    r = replace(refund(), refunded_on=None, billing_entity="nowhere", credit_note_id=5)
    with pytest.raises(MappingError) as err:
        ns.map_refund(r, tables())
    fields = {pr.field for pr in err.value.problems}
    assert {"refunded_on", "billing_entity", "payment_id"} <= fields
    assert "refund RF-7" in str(err.value)
