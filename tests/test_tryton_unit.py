"""Tryton mapping (pure) and the connector's wire encoding and error classification, without a
server. The behaviour against a real Tryton is in test_tryton.py."""

from __future__ import annotations

import json
import tomllib
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from billing.records import Customer, Invoice, InvoiceLine, Product
from connectors.tryton import classify_rpc_error, dumps, loads
from core.errors import AuthError, MappingError, PermanentError, RetryableError
from mappings import tryton as tm
from mappings.tables import load_mapping_file, parse_mapping
from tests.engine_support import REPO

TS = datetime(2026, 10, 1, tzinfo=UTC)
PRO = Product(2, "plat-pro", "Platform Pro", "platform", "ratable", "SW054000", TS)
TRAINING = Product(7, "training", "Training", "services", "point_in_time", "S0000000", TS)


def _line(n: int, product: Product, qty: str, price: str, amount: str, tax: str) -> InvoiceLine:
    return InvoiceLine(
        n, n, product, product.id, product.name, Decimal(qty), Decimal(price), Decimal(0),
        Decimal(amount), Decimal("0.08875"), Decimal(tax), "US-NY", None, None,
    )  # fmt: skip


def _invoice(*lines: InvoiceLine, entity: str = "acme-us") -> Invoice:
    subtotal = sum((li.amount for li in lines), Decimal(0))
    tax = sum((li.tax_amount for li in lines), Decimal(0))
    return Invoice(
        id=7, number="INV-7", customer_id=3, customer_account="C-3", billing_entity=entity,
        currency="USD", status="open", issue_date=date(2026, 10, 5), due_date=date(2026, 11, 4),
        subtotal=subtotal, tax_total=tax, total=subtotal + tax, memo=None, voided_at=None,
        created_at=TS, updated_at=TS, lines=lines,
    )  # fmt: skip


def test_invoice_lines_deferral_and_taxes_are_exact_and_in_tryton_codes() -> None:
    tables = load_mapping_file(REPO / "mapping.example.toml")
    invoice = _invoice(
        # 3 x 33.333333 rounds to billing's 100.00, but 33.333333 is not a Tryton price (4
        # decimals): the line goes as 1 x 100.00 and says so.
        _line(1, PRO, "3", "33.333333", "100.00", "8.88"),
        _line(2, TRAINING, "2", "125.50", "251.00", "22.28"),
    )
    doc = tm.map_invoice(invoice, tables)
    payload = doc.payload
    assert doc.external_id == "finsync:inv:INV-7" and doc.operation == "upsert"
    assert payload["company"] == "1" and payload["party"] == "finsync:cust:C-3"
    first, second = payload["lines"]
    assert (first["quantity"], first["unit_price"], first["account"]) == ("1", "100", "4.2.1")
    assert "(3 x 33.333333)" in first["description"]
    assert (second["quantity"], second["unit_price"], second["account"]) == ("2", "125.5", "4.1.2")
    assert payload["taxes"] == [
        {"description": "US-NY 8.875%", "base": "351.00", "amount": "31.16", "account": "2.2.3"}
    ]
    # Only the ratable line is deferred, to the platform family's deferred revenue account.
    assert payload["deferrals"] == [
        {"revenue_account": "4.2.1", "deferred_account": "2.2.2", "amount": "100.00"}
    ]
    assert payload["total"] == "382.16"


def test_unmapped_entity_and_missing_section_name_the_key_and_the_fix() -> None:
    tables = load_mapping_file(REPO / "mapping.example.toml")
    with pytest.raises(MappingError) as raised:
        tm.map_invoice(
            _invoice(_line(1, PRO, "1", "10", "10.00", "0.89"), entity="acme-fr"), tables
        )
    assert "no Tryton company mapped for billing entity 'acme-fr'" in str(raised.value)
    assert "[tryton.companies]" in str(raised.value)
    example = tomllib.loads((REPO / "mapping.example.toml").read_text())
    without = parse_mapping({k: v for k, v in example.items() if k != "tryton"})
    customer = Customer(
        3, "C-3", "Acme Buyer", None, "acme-us", "USD", "US", "NY", "NYC", "10001", "1 Main",
        False, None, TS, TS,
    )  # fmt: skip
    with pytest.raises(MappingError) as missing:
        tm.map_customer(customer, without)
    assert "has no [tryton] section" in str(missing.value)


def test_voided_invoice_is_a_void_dated_when_billing_voided_it() -> None:
    tables = load_mapping_file(REPO / "mapping.example.toml")
    voided = replace(
        _invoice(_line(1, TRAINING, "1", "50", "50.00", "4.44")),
        status="void",
        voided_at=datetime(2026, 10, 20, 15, tzinfo=UTC),
    )
    doc = tm.map_invoice(voided, tables)
    assert doc.operation == "void" and doc.payload["void_date"] == "2026-10-20"


def test_decimals_and_dates_travel_as_tryton_objects_never_floats() -> None:
    text = dumps({"amount": Decimal("0.10"), "day": date(2026, 10, 5)})
    assert json.loads(text) == {
        "amount": {"__class__": "Decimal", "decimal": "0.10"},
        "day": {"__class__": "date", "year": 2026, "month": 10, "day": 5},
    }
    back = loads('{"a": {"__class__": "Decimal", "decimal": "1234.565"}, "b": 0.1}')
    assert back == {"a": Decimal("1234.565"), "b": Decimal("0.1")}
    with pytest.raises(TypeError):
        dumps({"amount": 0.1j})


def test_tryton_errors_are_classified_with_tryton_message() -> None:
    user = classify_rpc_error(
        "model.account.invoice.post",
        ["UserError", ['To continue, you must reopen the period "2026-10".', "", None]],
    )
    assert type(user) is PermanentError
    assert user.message == 'To continue, you must reopen the period "2026-10".'
    assert isinstance(classify_rpc_error("x", ["ConcurrencyException", ["busy"]]), RetryableError)
    assert isinstance(classify_rpc_error("x", ["LoginException", ["password"]]), AuthError)
    fault = classify_rpc_error("x", ["'post_number'", "Traceback (most recent call last): ..."])
    assert isinstance(fault, RetryableError) and "server fault" in fault.message
