"""The AvaTax sandbox on its own terms: rates, exemptions, states, errors and scripted faults.

Requests are written by hand here (not by our connector), as another AvaTax client would.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from sandbox.avatax import AvaTaxSandbox

AUTH = ("2000000001", "sandbox-key")


@pytest.fixture
def sandbox() -> Iterator[AvaTaxSandbox]:
    with AvaTaxSandbox(account_id=AUTH[0], license_key=AUTH[1]) as sb:
        yield sb


@pytest.fixture
def client(sandbox: AvaTaxSandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.url, auth=AUTH) as c:
        yield c


def _model(
    company: str, country: str, region: str | None, amount: str, currency: str, **extra: Any
) -> str:
    location = {"line1": "1 Main St", "country": country}
    if region:
        location["region"] = region
    model = {
        "type": "SalesInvoice",
        "companyCode": company,
        "code": "DOC-1",
        "customerCode": "C1",
        "date": "2026-03-05",
        "currencyCode": currency,
        "commit": True,
        "addresses": {"singleLocation": location},
        "lines": [{"number": "1", "quantity": 1, "amount": "__AMOUNT__"}],
        **extra,
    }
    # Amounts travel as JSON numbers, written exactly.
    return json.dumps({"createTransactionModel": model}).replace('"__AMOUNT__"', amount)


def _post(client: httpx.Client, body: str) -> httpx.Response:
    return client.post(
        "/api/v2/transactions/createoradjust",
        content=body,
        headers={"Content-Type": "application/json"},
    )


def _json(response: httpx.Response) -> Any:
    return json.loads(response.content, parse_float=Decimal)


@pytest.mark.parametrize(
    ("company", "country", "region", "amount", "currency", "tax"),
    [
        ("ACME_US", "US", "CA", "100.00", "USD", "7.25"),
        ("ACME_US", "US", "NY", "100.00", "USD", "8.88"),
        ("ACME_US", "US", "TX", "100.00", "USD", "6.25"),
        ("ACME_US", "US", "WA", "100.00", "USD", "6.50"),
        ("ACME_DE", "DE", None, "100.00", "EUR", "19.00"),
        ("ACME_UK", "GB", None, "100.00", "GBP", "20.00"),
        ("ACME_JP", "JP", None, "12345", "JPY", "1235"),
        ("ACME_KW", "KW", None, "100.125", "KWD", "0.000"),
    ],
)
def test_rate_table_rounded_to_the_currency(
    client: httpx.Client,
    company: str,
    country: str,
    region: str | None,
    amount: str,
    currency: str,
    tax: str,
) -> None:
    response = _post(client, _model(company, country, region, amount, currency))
    assert response.status_code == 200, response.text
    doc = _json(response)
    assert doc["totalTaxCalculated"] == Decimal(tax)
    assert str(doc["totalTax"]) == tax
    assert doc["status"] == "Committed"
    assert doc["summary"][0]["country"] == country


def test_tax_override_is_recorded_and_the_engine_still_computes(client: httpx.Client) -> None:
    override = {"type": "TaxAmount", "taxAmount": 5, "reason": "billed"}
    doc = _json(_post(client, _model("ACME_US", "US", "CA", "100.00", "USD", taxOverride=override)))
    assert doc["totalTax"] == Decimal(5)
    assert doc["totalTaxCalculated"] == Decimal("7.25")
    assert doc["lines"][0]["tax"] == Decimal(5)
    assert doc["summary"][0]["tax"] == Decimal(5)


def test_exempt_customer_pays_no_tax(client: httpx.Client) -> None:
    doc = _json(_post(client, _model("ACME_US", "US", "CA", "100.00", "USD", exemptionNo="EX-1")))
    assert doc["totalTaxCalculated"] == Decimal(0)
    assert doc["totalExempt"] == Decimal("100.00")
    assert doc["exemptNo"] == "EX-1"


def test_saved_without_commit_and_estimates_are_not_recorded(
    client: httpx.Client, sandbox: AvaTaxSandbox
) -> None:
    saved = _json(_post(client, _model("ACME_US", "US", "CA", "10.00", "USD", commit=False)))
    assert saved["status"] == "Saved"
    estimate = _json(
        _post(
            client, _model("ACME_US", "US", "CA", "10.00", "USD", type="SalesOrder", code="EST-1")
        )
    )
    assert estimate["status"] == "Temporary"
    assert [(d["code"], d["status"]) for d in sandbox.transactions()] == [("DOC-1", "Saved")]


@pytest.mark.parametrize(
    ("company", "country", "region", "status", "code"),
    [
        ("ACME_XX", "US", "CA", 404, "EntityNotFoundError"),
        ("ACME_US", "", None, 400, "InvalidAddress"),
        ("ACME_US", "US", "ZZ", 400, "InvalidCountryRegion"),
        ("ACME_US", "FR", None, 400, "InvalidCountry"),
    ],
)
def test_refusals_carry_avalaras_error_shape(
    client: httpx.Client,
    sandbox: AvaTaxSandbox,
    company: str,
    country: str,
    region: str | None,
    status: int,
    code: str,
) -> None:
    response = _post(client, _model(company, country, region, "10.00", "USD"))
    assert response.status_code == status
    error = _json(response)["error"]
    assert error["code"] == code and error["message"]
    assert error["details"][0]["code"] == code
    assert sandbox.transactions() == []


def test_quoted_amounts_are_refused(client: httpx.Client) -> None:
    body = _model("ACME_US", "US", "CA", '"10.00"', "USD")
    response = _post(client, body)
    assert response.status_code == 400
    assert _json(response)["error"]["code"] == "InvalidDecimalValue"


def test_credentials_are_checked_but_ping_answers_everyone(sandbox: AvaTaxSandbox) -> None:
    with httpx.Client(base_url=sandbox.url) as anonymous:
        ping = anonymous.get("/api/v2/utilities/ping").json()
        assert ping["authenticated"] is False
        refused = anonymous.get("/api/v2/companies/ACME_US/transactions/DOC-1", auth=("x", "y"))
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "AuthenticationException"


def test_locked_documents_cannot_change(client: httpx.Client, sandbox: AvaTaxSandbox) -> None:
    _post(client, _model("ACME_US", "US", "CA", "10.00", "USD"))
    sandbox.lock("ACME_US", "DOC-1")
    again = _post(client, _model("ACME_US", "US", "CA", "20.00", "USD"))
    void = client.post(
        "/api/v2/companies/ACME_US/transactions/DOC-1/void", json={"code": "DocVoided"}
    )
    assert again.status_code == void.status_code == 400
    assert again.json()["error"]["code"] == "CannotModifyLockedTransaction"
    assert void.json()["error"]["code"] == "CannotModifyLockedTransaction"
    assert sandbox.transactions()[0]["totalAmount"] == Decimal("10.00")


def test_faults_scripted_through_the_admin_endpoint(
    client: httpx.Client, sandbox: AvaTaxSandbox
) -> None:
    assert client.post("/_sandbox/fail_next", json={"status": 502, "times": 1}).status_code == 200
    assert (
        client.post("/_sandbox/rate_limit_next", json={"times": 1, "retry_after": 7}).status_code
        == 200
    )
    limited = client.get("/api/v2/utilities/ping")
    failed = client.get("/api/v2/utilities/ping")
    ok = client.get("/api/v2/utilities/ping")
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "7")
    assert failed.status_code == 502
    assert ok.status_code == 200
    _post(client, _model("ACME_US", "US", "CA", "10.00", "USD"))
    listed = client.post("/_sandbox/transactions", json={"company": "ACME_US"}).json()
    assert [d["code"] for d in listed] == ["DOC-1"]
    client.post("/_sandbox/reset", json={})
    assert sandbox.transactions() == [] and sandbox.request_log == []
