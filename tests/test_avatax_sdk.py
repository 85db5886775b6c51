"""The official Avalara Python SDK (``avalara`` on PyPI) pointed at the AvaTax sandbox.

No finsync code is involved: the SDK builds the requests, and each test asserts what Avalara
documents for the call (TransactionModel fields, ErrorResult shape, error numbers). The SDK's
logging wrapper reads the ``x-correlation-id`` header of every answer, so every call here also
checks the sandbox sends it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests
from avalara import AvataxClient

from sandbox.avatax import AvaTaxSandbox

ACCOUNT, LICENSE = "2000000001", "sdk-license-key"
CA_RATE = Decimal("0.0725")
ERROR_DETAIL_KEYS = {
    "code",
    "number",
    "message",
    "description",
    "faultCode",
    "helpLink",
    "severity",
}


@pytest.fixture
def sandbox() -> Iterator[AvaTaxSandbox]:
    with AvaTaxSandbox(account_id=ACCOUNT, license_key=LICENSE) as sb:
        yield sb


@pytest.fixture
def client(sandbox: AvaTaxSandbox) -> AvataxClient:
    sdk = AvataxClient("finsync-tests", "1.0", "ci", sandbox.url, timeout_limit=10)
    return sdk.add_credentials(ACCOUNT, LICENSE)


def _model(code: str = "INV-1", amount: float = 100.0, **extra: Any) -> dict[str, Any]:
    # The SDK serialises with requests' json=, which takes no Decimal: amounts go in as the
    # floats an SDK user would write; every figure asserted back is read as Decimal.
    line = {"number": "1", "quantity": 1, "amount": amount, "taxCode": "SW054000"}
    line.update(extra.pop("line", {}))
    return {
        "type": "SalesInvoice",
        "companyCode": "ACME_US",
        "code": code,
        "customerCode": "C-1",
        "date": "2026-03-05",
        "currencyCode": "USD",
        "commit": True,
        "addresses": {
            "singleLocation": {
                "line1": "1 Main St",
                "city": "Irvine",
                "region": "CA",
                "country": "US",
            }
        },
        "lines": [line],
        **extra,
    }


def _body(response: requests.Response) -> Any:
    return response.json(parse_float=Decimal)


def _error(response: requests.Response) -> dict[str, Any]:
    error = _body(response)["error"]
    assert set(error) >= {"code", "message", "target", "details"}
    detail = error["details"][0]
    assert set(detail) >= ERROR_DETAIL_KEYS
    assert detail["code"] == error["code"]
    assert detail["helpLink"].endswith(f"/avatax/errors/{error['code']}")
    assert detail["severity"] == "Error"
    return error


def test_every_answer_carries_the_correlation_header_the_sdk_logs(client, caplog):
    caplog.set_level(logging.INFO)
    response = client.ping()
    assert response.status_code == 200
    assert _body(response)["authenticated"] is True
    assert response.headers["x-correlation-id"]
    assert response.headers["x-correlation-id"] in caplog.text


def test_create_or_adjust_creates_then_adjusts_the_same_document(client, sandbox):
    created = client.create_or_adjust_transaction({"createTransactionModel": _model()})
    assert created.status_code == 200, created.text
    first = _body(created)
    assert (first["status"], first["version"]) == ("Committed", 1)
    assert first["totalTax"] == (Decimal("100.00") * CA_RATE).quantize(Decimal("0.01"))
    adjusted = client.create_or_adjust_transaction({"createTransactionModel": _model(amount=200)})
    second = _body(adjusted)
    assert second["id"] == first["id"]
    assert second["version"] == 2
    assert second["adjustmentReason"] != "NotAdjusted"
    assert second["totalAmount"] == Decimal("200")
    assert second["totalTax"] == Decimal("14.50")
    assert len(sandbox.transactions()) == 1


def test_get_by_code_honours_include(client):
    client.create_or_adjust_transaction({"createTransactionModel": _model()})
    full = _body(client.get_transaction_by_code("ACME_US", "INV-1"))
    lines = _body(client.get_transaction_by_code("ACME_US", "INV-1", {"$include": "Lines"}))
    summary = _body(client.get_transaction_by_code("ACME_US", "INV-1", {"$include": "SummaryOnly"}))
    addresses = _body(
        client.get_transaction_by_code(
            "ACME_US", "INV-1", {"$include": "Details,Addresses", "documentType": "SalesInvoice"}
        )
    )
    assert {"lines", "summary", "addresses"} <= set(full)
    assert "details" in full["lines"][0]
    assert "details" not in lines["lines"][0] and "summary" not in lines
    assert "lines" not in summary and summary["summary"][0]["tax"] == Decimal("7.25")
    assert addresses["addresses"][0]["region"] == "CA"
    assert addresses["lines"][0]["details"][0]["rate"] == CA_RATE


def test_missing_document_is_entity_not_found(client):
    response = client.get_transaction_by_code("ACME_US", "NOPE")
    assert response.status_code == 404
    error = _error(response)
    assert error["code"] == "EntityNotFoundError"
    assert error["details"][0]["number"] == 4


def test_void_doc_voided_then_again_is_already_cancelled(client):
    client.create_or_adjust_transaction({"createTransactionModel": _model()})
    voided = client.void_transaction("ACME_US", "INV-1", {"code": "DocVoided"})
    assert voided.status_code == 200
    assert _body(voided)["status"] == "Cancelled"
    again = client.void_transaction("ACME_US", "INV-1", {"code": "DocVoided"})
    assert again.status_code == 400
    error = _error(again)
    assert (error["code"], error["details"][0]["number"]) == ("TransactionAlreadyCancelled", 198)


def test_void_doc_deleted_removes_an_uncommitted_document(client):
    client.create_or_adjust_transaction({"createTransactionModel": _model(commit=False)})
    deleted = client.void_transaction("ACME_US", "INV-1", {"code": "DocDeleted"})
    assert deleted.status_code == 200
    assert client.get_transaction_by_code("ACME_US", "INV-1").status_code == 404


def test_create_transaction_on_a_committed_code_is_transaction_already_exists(client, sandbox):
    assert client.create_transaction(_model()).status_code == 200
    again = client.create_transaction(_model(amount=50))
    assert again.status_code == 400
    error = _error(again)
    assert (error["code"], error["details"][0]["number"]) == ("TransactionAlreadyExists", 1303)
    assert error["details"][0]["refersTo"] == "code"
    assert sandbox.transactions()[0]["totalAmount"] == Decimal("100")


def test_create_transaction_replaces_an_uncommitted_document(client, sandbox):
    assert client.create_transaction(_model(commit=False)).status_code == 200
    replaced = client.create_transaction(_model(amount=40))
    assert replaced.status_code == 200
    assert _body(replaced)["status"] == "Committed"
    assert [d["totalAmount"] for d in sandbox.transactions()] == [Decimal("40")]


@pytest.mark.parametrize(
    ("model", "field", "limit"),
    [
        (_model(code="X" * 51), "code", 50),
        (_model(customerCode="C" * 51), "customerCode", 50),
        (_model(line={"taxCode": "T" * 26}), "lines[0].taxCode", 25),
        (_model(line={"itemCode": "I" * 51}), "lines[0].itemCode", 50),
        (_model(exemptionNo="E" * 26), "exemptionNo", 25),
        (_model(description="d" * 2049), "description", 2048),
    ],
)
def test_strings_over_the_openapi_max_length_are_string_length_errors(
    client, sandbox, model, field, limit
):
    response = client.create_or_adjust_transaction({"createTransactionModel": model})
    assert response.status_code == 400
    error = _error(response)
    assert error["code"] == "StringLengthError"
    detail = error["details"][0]
    assert (detail["number"], detail["refersTo"], detail["faultCode"]) == (13, field, "Client")
    assert f"between 0 and {limit} characters" in detail["description"]
    assert sandbox.transactions() == []


def test_tax_included_backs_the_tax_out_of_the_amount(client):
    gross = Decimal("107.25")
    body = _body(
        client.create_or_adjust_transaction(
            {"createTransactionModel": _model(amount=float(gross), line={"taxIncluded": True})}
        )
    )
    line = body["lines"][0]
    expected_tax = (gross * CA_RATE / (1 + CA_RATE)).quantize(Decimal("0.01"))
    assert line["taxIncluded"] is True
    assert line["tax"] == expected_tax == Decimal("7.25")
    assert line["lineAmount"] == gross - expected_tax
    assert body["totalTax"] + body["totalAmount"] == gross


def test_line_exemption_code_exempts_only_that_line(client):
    model = _model(amount=100.0)
    model["lines"].append(
        {"number": "2", "amount": 50, "taxCode": "SW054000", "exemptionCode": "CERT-7"}
    )
    body = _body(client.create_or_adjust_transaction({"createTransactionModel": model}))
    taxable, exempt = body["lines"]
    assert taxable["tax"] == Decimal("7.25")
    assert (exempt["tax"], exempt["exemptAmount"], exempt["exemptNo"]) == (
        Decimal("0"),
        Decimal("50"),
        "CERT-7",
    )
    assert body["totalExempt"] == Decimal("50")
    assert body["totalTax"] == Decimal("7.25")


def test_wrong_license_key_is_authentication_exception(sandbox):
    sdk = AvataxClient("finsync-tests", "1.0", "ci", sandbox.url, timeout_limit=10)
    response = sdk.add_credentials(ACCOUNT, "wrong").create_transaction(_model())
    assert response.status_code == 401
    error = _error(response)
    assert (error["code"], error["target"], error["details"][0]["number"]) == (
        "AuthenticationException",
        "HttpRequestHeaders",
        30,
    )


def test_missing_required_field_is_value_required(client):
    model = _model()
    del model["customerCode"]
    response = client.create_transaction(model)
    assert response.status_code == 400
    error = _error(response)
    assert (error["code"], error["details"][0]["number"]) == ("ValueRequiredError", 5)
    assert error["details"][0]["refersTo"] == "customerCode"
