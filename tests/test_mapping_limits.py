"""finsync refuses, while mapping, what NetSuite and AvaTax would refuse for its length.

One test per vendor limit a billing field can reach: one character over is a MappingError
naming the record, the billing field, the vendor's limit and the fix; exactly at the limit
maps. The limit tables must agree with what the sandboxes (the vendors' stand-ins) enforce.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from core.errors import MappingError
from mappings import avatax, netsuite
from mappings.limits import AVATAX_MAX_LENGTHS, NETSUITE_MAX_LENGTHS
from sandbox.avatax.faults import MAX_LENGTHS as SANDBOX_AVATAX_LENGTHS
from sandbox.netsuite.records import FIELD_LENGTHS as SANDBOX_NETSUITE_LENGTHS
from tests import avatax_records as at
from tests import netsuite_records as ns


def _refusal(map_record: Any) -> MappingError:
    with pytest.raises(MappingError) as caught:
        map_record()
    return caught.value


def _only_problem(error: MappingError) -> tuple[str, str]:
    assert len(error.problems) == 1, error.problems
    return error.problems[0].field, error.problems[0].message


# ---- NetSuite --------------------------------------------------------------------------------

CUSTOMER_FIELDS = [
    ("email", "email", 254),
    ("address_line1", "addr1", 150),
    ("city", "city", 50),
    ("region", "state", 30),
    ("postal_code", "zip", 36),
]


@pytest.mark.parametrize(("billing_field", "netsuite_field", "limit"), CUSTOMER_FIELDS)
def test_netsuite_customer_field_over_its_limit(billing_field, netsuite_field, limit):
    over = replace(ns.customer(), **{billing_field: "x" * (limit + 1)})
    at_limit = replace(ns.customer(), **{billing_field: "x" * limit})
    error = _refusal(lambda: netsuite.map_customer(over, ns.tables()))
    assert error.record == "customer C-0001"
    assert _only_problem(error) == (
        billing_field,
        f"is {limit + 1} characters; NetSuite accepts at most {limit} in {netsuite_field}: "
        "shorten it in billing",
    )
    assert netsuite.map_customer(at_limit, ns.tables()).payload is not None


def test_netsuite_customer_account_number_over_the_entity_id_limit():
    account = "A" * 84
    error = _refusal(lambda: netsuite.map_customer(ns.customer(account=account), ns.tables()))
    assert _only_problem(error)[0] == "account_number"
    assert "at most 83 in entityId" in _only_problem(error)[1]


def test_netsuite_invoice_memo_over_999_names_the_invoice():
    invoice = replace(ns.usd_invoice(), memo="m" * 1000)
    error = _refusal(lambda: netsuite.map_invoice(invoice, ns.tables(), customer=ns.customer()))
    assert str(error) == (
        "invoice INV-1042: memo: is 1000 characters; NetSuite accepts at most 999 in memo: "
        "shorten it in billing"
    )
    fits = replace(ns.usd_invoice(), memo="m" * 999)
    document = netsuite.map_invoice(fits, ns.tables(), customer=ns.customer())
    assert document.payload["memo"] == "m" * 999


def test_netsuite_invoice_line_description_over_4000_names_the_line():
    invoice = ns.usd_invoice()
    second = replace(invoice.lines[1], description="d" * 4001)
    invoice = replace(invoice, lines=(invoice.lines[0], second))
    error = _refusal(lambda: netsuite.map_invoice(invoice, ns.tables(), customer=ns.customer()))
    field, message = _only_problem(error)
    assert field == f"line {second.line_no}.description"
    assert "at most 4000 in description" in message


def test_netsuite_invoice_number_over_the_tran_id_limit():
    invoice = ns.usd_invoice(number="N" * 46)
    error = _refusal(lambda: netsuite.map_invoice(invoice, ns.tables(), customer=ns.customer()))
    assert _only_problem(error)[0] == "number"
    assert "at most 45 in tranId" in _only_problem(error)[1]


def test_netsuite_credit_note_reason_over_the_memo_limit():
    note = replace(ns.credit_note(), reason="r" * 1000)
    error = _refusal(lambda: netsuite.map_credit_note(note, ns.tables()))
    assert error.record == "credit note CN-7"
    assert _only_problem(error)[0] == "reason"


def test_netsuite_payment_reference_over_the_tran_id_limit():
    payment = ns.payment(reference="P" * 46)
    error = _refusal(lambda: netsuite.map_payment(payment, ns.tables()))
    assert [p.field for p in error.problems] == ["reference"]
    assert "at most 45 in tranId" in error.problems[0].message


# ---- AvaTax ----------------------------------------------------------------------------------


def _avatax_invoice(**changes: Any) -> MappingError:
    customer = replace(at.customer(), **changes.pop("customer", {}))
    invoice = replace(at.invoice(cust=customer), **changes)
    return _refusal(lambda: avatax.map_invoice(invoice, customer, at.tables()))


@pytest.mark.parametrize(
    ("changes", "field", "avatax_field", "limit"),
    [
        ({"number": "N" * 51}, "number", "code", 50),
        ({"customer_account": "C" * 51}, "customer_account", "customerCode", 50),
        ({"customer": {"address_line1": "a" * 51}}, "customer.address_line1", "line1", 50),
        ({"customer": {"city": "c" * 51}}, "customer.city", "city", 50),
        ({"customer": {"postal_code": "9" * 12}}, "customer.postal_code", "postalCode", 11),
    ],
)
def test_avatax_invoice_field_over_its_limit(changes, field, avatax_field, limit):
    error = _avatax_invoice(**changes)
    assert _only_problem(error) == (
        field,
        f"is {limit + 1} characters; AvaTax accepts at most {limit} in {avatax_field}: "
        "shorten it in billing",
    )


def test_avatax_exemption_number_over_25():
    customer = replace(at.customer(exempt=True), exemption_number="E" * 26)
    invoice = at.invoice(cust=customer)
    error = _refusal(lambda: avatax.map_invoice(invoice, customer, at.tables()))
    assert _only_problem(error)[0] == "customer.exemption_number"
    assert "at most 25 in exemptionNo" in _only_problem(error)[1]


def test_avatax_line_description_sku_and_tax_code_over_their_limits():
    invoice = at.invoice()
    first = invoice.lines[0]
    assert first.product is not None
    product = replace(first.product, sku="s" * 51, tax_code="t" * 26)
    long_line = replace(first, description="d" * 2097, product=product)
    invoice = replace(invoice, lines=(long_line, invoice.lines[1]))
    error = _refusal(lambda: avatax.map_invoice(invoice, at.customer(), at.tables()))
    where = f"line {first.line_no}"
    assert {p.field for p in error.problems} == {
        f"{where}.description",
        f"{where}.product.sku",
        f"{where}.product.tax_code",
    }


def test_avatax_credit_note_number_over_50():
    customer = at.customer()
    invoice = at.invoice(cust=customer)
    note = replace(at.credit_note(invoice), number="N" * 51)
    error = _refusal(
        lambda: avatax.map_credit_note(note, customer, invoice.issue_date, at.tables())
    )
    assert error.record == f"credit note {'N' * 51}"
    assert _only_problem(error)[0] == "number"


# ---- the tables agree with what the sandboxes enforce ----------------------------------------


def test_netsuite_limits_are_the_sandboxes():
    assert NETSUITE_MAX_LENGTHS == SANDBOX_NETSUITE_LENGTHS


def test_avatax_limits_are_the_sandboxes():
    for kind, limits in AVATAX_MAX_LENGTHS.items():
        assert {f: SANDBOX_AVATAX_LENGTHS[kind][f] for f in limits} == limits
