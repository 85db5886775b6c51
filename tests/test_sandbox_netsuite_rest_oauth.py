"""The REST record API driven by a third-party OAuth 1.0a client (requests-oauthlib, TBA with
HMAC-SHA256 and the account as realm): create, list, update, delete, SuiteQL and async requests
with idempotency keys. Each test asserts what NetSuite documents; errors must be NetSuite's JSON
(``o:errorDetails`` with ``detail`` and ``o:errorCode``), never an HTML page."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from requests_oauthlib import OAuth1

from sandbox.netsuite import NetSuiteSandbox

CUSTOMER = {
    "entityId": "C-1",
    "isPerson": False,
    "companyName": "C-1 Ltd",
    "subsidiary": {"id": "1"},
}


@pytest.fixture
def ns() -> Iterator[NetSuiteSandbox]:
    with NetSuiteSandbox().start() as sandbox:
        yield sandbox


@pytest.fixture
def http(ns: NetSuiteSandbox) -> Iterator[requests.Session]:
    creds = ns.credentials
    session = requests.Session()
    session.auth = OAuth1(
        creds.consumer_key,
        creds.consumer_secret.reveal(),
        creds.token_id,
        creds.token_secret.reveal(),
        signature_method="HMAC-SHA256",
        realm=ns.account,
    )
    with session:
        yield session


def _customer(external_id: str, **fields: Any) -> dict[str, Any]:
    names = {"entityId": external_id, "companyName": f"{external_id} Ltd"}
    return {**CUSTOMER, "externalId": external_id, **names, **fields}


def _put_invoice(
    ns: NetSuiteSandbox, http: requests.Session, external_id: str, customer: str, amount: str
) -> requests.Response:
    """PUT an invoice whose amount travels as the exact JSON number ``amount``."""
    body = json.dumps(
        {
            "externalId": external_id,
            "entity": {"externalId": customer},
            "tranDate": "2024-03-15",
            "item": {"items": [{"item": {"id": "101"}, "amount": 0, "taxCode": {"id": "11"}}]},
        }
    ).replace('"amount": 0', f'"amount": {amount}')
    return http.put(
        f"{ns.rest_url}/invoice/eid:{external_id}",
        data=body,
        headers={"Content-Type": "application/json"},
    )


def _error(response: requests.Response) -> tuple[str, str]:
    assert response.headers["Content-Type"].startswith("application/vnd.oracle.resource+json")
    detail = response.json()["o:errorDetails"][0]
    return detail["o:errorCode"], detail["detail"]


def test_post_creates_and_a_duplicate_external_id_is_refused(ns, http):
    created = http.post(f"{ns.rest_url}/customer", json=_customer("C-1"))
    assert created.status_code == 204
    internal_id = ns.get("customer", "C-1")["internalId"]
    assert created.headers["Location"] == f"{ns.rest_url}/customer/{internal_id}"
    read = http.get(created.headers["Location"])
    assert (read.status_code, read.json()["companyName"]) == (200, "C-1 Ltd")
    again = http.post(f"{ns.rest_url}/customer", json=_customer("C-1"))
    assert again.status_code == 400
    assert _error(again)[0] == "DUP_ENTITY"
    assert ns.count("customer") == 1


def test_collection_get_pages_with_limit_and_offset(ns, http):
    for i in range(3):
        assert http.post(f"{ns.rest_url}/customer", json=_customer(f"C-{i}")).status_code == 204
    first = http.get(f"{ns.rest_url}/customer", params={"limit": 2}).json()
    rest = http.get(f"{ns.rest_url}/customer", params={"limit": 2, "offset": 2}).json()
    assert (first["count"], first["hasMore"], first["totalResults"]) == (2, True, 3)
    assert (rest["count"], rest["hasMore"], rest["offset"]) == (1, False, 2)
    ids = [item["id"] for item in first["items"] + rest["items"]]
    assert ids == [r["internalId"] for r in ns.records("customer")]
    assert [link["rel"] for link in first["links"]] == ["self", "next"]
    bad = http.get(f"{ns.rest_url}/customer", params={"limit": 5000})
    assert bad.status_code == 400 and _error(bad)[0] == "INVALID_PARAMETER"


def test_patch_updates_only_the_fields_sent(ns, http):
    http.put(f"{ns.rest_url}/customer/eid:C-1", json=CUSTOMER)
    internal_id = ns.get("customer", "C-1")["internalId"]
    patched = http.patch(f"{ns.rest_url}/customer/{internal_id}", json={"companyName": "Renamed"})
    assert patched.status_code == 204
    assert patched.headers["Location"].endswith(f"/customer/{internal_id}")
    stored = ns.get("customer", "C-1")
    assert (stored["companyName"], stored["entityId"]) == ("Renamed", "C-1")
    missing = http.patch(f"{ns.rest_url}/customer/eid:NOPE", json={"companyName": "x"})
    assert missing.status_code == 404
    assert _error(missing)[0] == "NONEXISTENT_ID"
    too_long = http.patch(f"{ns.rest_url}/customer/{internal_id}", json={"companyName": "n" * 84})
    assert too_long.status_code == 400
    assert _error(too_long) == (
        "EXCEEDED_MAX_FIELD_LENGTH",
        "The field companyName contained more than the maximum number ( 83 ) of characters "
        "allowed.",
    )


def test_delete_refuses_a_record_others_depend_on(ns, http):
    http.put(f"{ns.rest_url}/customer/eid:C-1", json=CUSTOMER)
    assert _put_invoice(ns, http, "INV-1", "C-1", "100.00").status_code == 204
    blocked = http.delete(f"{ns.rest_url}/customer/eid:C-1")
    assert blocked.status_code == 400 and _error(blocked)[0] == "USER_ERROR"
    assert http.delete(f"{ns.rest_url}/invoice/eid:INV-1").status_code == 204
    assert http.delete(f"{ns.rest_url}/customer/eid:C-1").status_code == 204
    assert ns.count("customer") == ns.count("invoice") == 0
    gone = http.delete(f"{ns.rest_url}/customer/eid:C-1")
    assert gone.status_code == 404 and _error(gone)[0] == "NONEXISTENT_ID"


def test_unsupported_methods_answer_json_not_html(ns, http):
    response = http.patch(f"{ns.rest_url}/customer", json={})
    assert response.status_code == 405
    assert _error(response)[0] == "METHOD_NOT_ALLOWED"


def _suiteql(ns: NetSuiteSandbox, http: requests.Session, query: str, **params: Any):
    return http.post(
        f"{ns.url}/services/rest/query/v1/suiteql",
        json={"q": query},
        params=params,
        headers={"Prefer": "transient"},
    )


def test_suiteql_selects_filters_orders_and_pages(ns, http):
    for i in (2, 0, 1):
        http.put(f"{ns.rest_url}/customer/eid:C-{i}", json=_customer(f"C-{i}"))
    assert _put_invoice(ns, http, "INV-1", "C-1", "250.00").status_code == 204
    one = _suiteql(ns, http, "SELECT id, companyname FROM customer WHERE externalid = 'C-2'").json()
    assert one["items"] == [
        {"links": [], "id": ns.get("customer", "C-2")["internalId"], "companyname": "C-2 Ltd"}
    ]
    ordered = _suiteql(
        ns, http, "SELECT externalid FROM customer ORDER BY externalid DESC", limit=2
    ).json()
    assert [row["externalid"] for row in ordered["items"]] == ["C-2", "C-1"]
    assert (ordered["hasMore"], ordered["totalResults"]) == (True, 3)
    invoices = _suiteql(
        ns, http, "SELECT tranid, trandate, foreigntotal FROM transaction WHERE type = 'CustInvc'"
    ).json()
    # SuiteQL answers text: the date as M/D/YYYY, the amount exactly.
    assert invoices["items"] == [{"links": [], "trandate": "3/15/2024", "foreigntotal": "250.00"}]
    bad = _suiteql(ns, http, "SELECT nope FROM customer")
    assert bad.status_code == 400
    assert _error(bad)[0] == "INVALID_PARAMETER"


def _async_put(ns, http, external_id: str, body: dict[str, Any], key: str) -> requests.Response:
    return http.put(
        f"{ns.rest_url}/customer/eid:{external_id}",
        json=body,
        headers={"Prefer": "respond-async", "X-NetSuite-Idempotency-Key": key},
    )


def test_async_request_answers_202_with_a_job_and_its_result(ns, http):
    key = str(uuid.uuid4())
    accepted = _async_put(ns, http, "C-1", CUSTOMER, key)
    assert accepted.status_code == 202
    job_url = accepted.headers["Location"]
    assert "/services/rest/async/v1/job/" in job_url
    job = http.get(job_url).json()
    assert job["progress"] == "succeeded"
    result = http.get(job["task"]["links"][0]["href"])
    assert result.status_code == 204
    assert result.headers["Location"].endswith(
        f"/customer/{ns.get('customer', 'C-1')['internalId']}"
    )


def test_the_same_idempotency_key_never_applies_twice(ns, http):
    key = str(uuid.uuid4())
    first = _async_put(ns, http, "C-1", CUSTOMER, key)
    again = _async_put(ns, http, "C-1", {**CUSTOMER, "companyName": "Changed"}, key)
    assert again.status_code == 400
    code, detail = _error(again)
    assert code == "IDEMPOTENCY_ERROR"
    assert again.headers["Location"] == first.headers["Location"]
    assert first.headers["Location"] in detail
    assert ns.get("customer", "C-1")["companyName"] == "C-1 Ltd"
    other = _async_put(ns, http, "C-1", {**CUSTOMER, "companyName": "Changed"}, str(uuid.uuid4()))
    assert other.status_code == 202
    assert ns.get("customer", "C-1")["companyName"] == "Changed"


def test_a_refused_async_request_is_a_failed_job(ns, http):
    accepted = _async_put(ns, http, "C-1", {**CUSTOMER, "subsidiary": {"id": "999"}}, "k-1")
    job = http.get(accepted.headers["Location"]).json()
    assert job["progress"] == "failed"
    result = http.get(job["task"]["links"][0]["href"])
    assert result.status_code == 400
    assert _error(result)[0] == "INVALID_KEY_OR_REF"
    assert ns.count("customer") == 0


def test_wrong_realm_is_refused_by_the_sandbox(ns):
    creds = ns.credentials
    auth = OAuth1(
        creds.consumer_key,
        creds.consumer_secret.reveal(),
        creds.token_id,
        creds.token_secret.reveal(),
        signature_method="HMAC-SHA256",
        realm=ns.account.lower(),
    )
    response = requests.get(f"{ns.rest_url}/customer", auth=auth, timeout=10)
    assert response.status_code == 401
    assert _error(response)[0] == "INVALID_LOGIN"
