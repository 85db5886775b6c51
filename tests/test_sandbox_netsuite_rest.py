"""The NetSuite sandbox's REST record API on real HTTP: OAuth 1.0a, OAuth 2.0, upsert and get,
and the same record written over SOAP and REST."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from datetime import date
from decimal import Decimal
from urllib.parse import quote, urlsplit

import httpx
import jwt
import pytest

from sandbox.netsuite import NetSuiteSandbox, SandboxCredentials, demo_private_key_pem
from tests.test_sandbox_netsuite_helpers import customer, invoice, upsert


def _pct(value: str) -> str:
    return quote(value, safe="~-._")


def oauth1_header(
    creds: SandboxCredentials, method: str, url: str, realm: str = "1234567_SB1"
) -> str:
    """An RFC 5849 HMAC-SHA256 Authorization header, computed here from the RFC."""
    parts = urlsplit(url)
    params = {
        "oauth_consumer_key": creds.consumer_key,
        "oauth_token": creds.token_id,
        "oauth_signature_method": "HMAC-SHA256",
        "oauth_timestamp": str(int(time.time())),
        "oauth_nonce": secrets.token_hex(8),
        "oauth_version": "1.0",
    }
    query = [tuple(p.split("=", 1)) for p in parts.query.split("&") if p]
    pairs = sorted([(_pct(k), _pct(v)) for k, v in params.items()] + query)
    normalized = "&".join(f"{k}={v}" for k, v in pairs)
    base_url = f"{parts.scheme}://{parts.netloc}{parts.path}"
    base = "&".join((method, _pct(base_url), _pct(normalized)))
    key = f"{_pct(creds.consumer_secret.reveal())}&{_pct(creds.token_secret.reveal())}"
    params["oauth_signature"] = base64.b64encode(
        hmac.new(key.encode(), base.encode(), hashlib.sha256).digest()
    ).decode()
    fields = ", ".join(f'{k}="{_pct(v)}"' for k, v in params.items())
    return f'OAuth realm="{realm}", {fields}'


def _assertion(ns: NetSuiteSandbox, **overrides: object) -> str:
    now = int(time.time())
    claims = {
        "iss": ns.credentials.client_id,
        "scope": ["rest_webservices"],
        "aud": ns.token_url,
        "iat": now,
        "exp": now + 3600,
    }
    claims.update(overrides)
    return jwt.encode(
        claims,
        demo_private_key_pem(),
        algorithm="ES256",
        headers={"kid": ns.credentials.certificate_id},
    )


def _token(ns: NetSuiteSandbox, assertion: str) -> httpx.Response:
    return httpx.post(
        ns.token_url,
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        },
    )


@pytest.fixture
def ns():
    with NetSuiteSandbox().start() as sandbox:
        yield sandbox


def _put(ns, record_type: str, ext: str, body: dict, realm: str = "1234567_SB1") -> httpx.Response:
    url = f"{ns.rest_url}/{record_type}/eid:{ext}"
    return httpx.put(
        url,
        content=json.dumps(body),
        headers={
            "Authorization": oauth1_header(ns.credentials, "PUT", url, realm),
            "Content-Type": "application/json",
        },
    )


def _get(ns, path: str) -> httpx.Response:
    url = f"{ns.rest_url}/{path}"
    return httpx.get(url, headers={"Authorization": oauth1_header(ns.credentials, "GET", url)})


CUSTOMER = {
    "entityId": "C-1",
    "isPerson": False,
    "companyName": "Company C-1",
    "subsidiary": {"id": "1"},
}


def test_oauth1_upsert_answers_204_with_location_and_get_returns_it(ns):
    response = _put(ns, "customer", "C-1", CUSTOMER)
    assert response.status_code == 204
    internal_id = ns.get("customer", "C-1")["internalId"]
    assert response.headers["Location"] == f"{ns.rest_url}/customer/{internal_id}"
    got = _get(ns, "customer/eid:C-1")
    assert got.status_code == 200
    body = got.json()
    assert (body["id"], body["externalId"], body["subsidiary"]) == (internal_id, "C-1", {"id": "1"})
    assert _put(ns, "customer", "C-1", {**CUSTOMER, "email": "ap@c1.test"}).status_code == 204
    assert ns.count("customer") == 1
    assert ns.get("customer", "C-1")["email"] == "ap@c1.test"


def test_missing_record_is_404_with_error_details(ns):
    response = _get(ns, "invoice/eid:NOPE")
    assert response.status_code == 404
    assert response.json()["o:errorDetails"][0]["o:errorCode"] == "NONEXISTENT_ID"


@pytest.mark.parametrize("realm", ["1234567_sb1", "1234567"])
def test_oauth1_with_wrong_realm_is_401(ns, realm):
    response = _put(ns, "customer", "C-1", CUSTOMER, realm=realm)
    assert response.status_code == 401
    assert response.json()["o:errorDetails"][0]["o:errorCode"] == "INVALID_LOGIN"
    assert ns.count("customer") == 0


def test_oauth1_signature_covers_the_url(ns):
    url = f"{ns.rest_url}/customer/eid:C-1"
    header = oauth1_header(ns.credentials, "PUT", f"{ns.rest_url}/customer/eid:OTHER")
    response = httpx.put(url, content=json.dumps(CUSTOMER), headers={"Authorization": header})
    assert response.status_code == 401


def test_oauth2_token_then_bearer_upsert(ns):
    issued = _token(ns, _assertion(ns))
    assert issued.status_code == 200
    assert issued.json()["expires_in"] == 3600
    token = issued.json()["access_token"]
    url = f"{ns.rest_url}/customer/eid:C-1"
    response = httpx.put(
        url, content=json.dumps(CUSTOMER), headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 204
    assert ns.count("customer") == 1
    refused = httpx.put(
        url, content=json.dumps(CUSTOMER), headers={"Authorization": "Bearer not-a-token"}
    )
    assert refused.status_code == 401


@pytest.mark.parametrize(
    "overrides",
    [
        {"scope": ["restlets"]},
        {"aud": "https://elsewhere/token"},
        {"iss": "someone"},
        {"exp": int(time.time()) + 7200},
    ],
    ids=["scope", "aud", "iss", "exp-over-an-hour"],
)
def test_oauth2_bad_assertion_is_refused(ns, overrides):
    response = _token(ns, _assertion(ns, **overrides))
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_grant"}


def test_oauth2_assertion_signed_by_another_key_is_refused(ns):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    now = int(time.time())
    assertion = jwt.encode(
        {
            "iss": ns.credentials.client_id,
            "scope": "rest_webservices",
            "aud": ns.token_url,
            "iat": now,
            "exp": now + 600,
        },
        other,
        algorithm="ES256",
        headers={"kid": ns.credentials.certificate_id},
    )
    assert _token(ns, assertion).status_code == 400


def test_rest_validation_errors_name_the_field(ns):
    _put(ns, "customer", "C-1", CUSTOMER)
    body = {
        "entity": {"externalId": "C-1"},
        "tranDate": "2024-03-15",
        "item": {"items": [{"item": {"id": "999"}, "amount": 10}]},
    }
    response = _put(ns, "invoice", "INV-1", body)
    assert response.status_code == 400
    assert response.json()["o:errorDetails"] == [
        {"detail": "Invalid item reference key 999.", "o:errorCode": "INVALID_KEY_OR_REF"}
    ]
    with_id = _put(ns, "customer", "C-2", {**CUSTOMER, "id": "5"})
    assert with_id.status_code == 400
    assert ns.count("customer") == 1


def test_accounting_periods_are_listed(ns):
    ns.close_period(date(2024, 1, 5))
    listed = _get(ns, "accountingPeriod").json()
    assert listed["totalResults"] == 48
    first = _get(ns, f"accountingPeriod/{listed['items'][0]['id']}").json()
    assert (first["periodName"], first["startDate"], first["closed"]) == (
        "Jan 2024",
        "2024-01-01",
        True,
    )


def test_soap_and_rest_writes_leave_identical_records():
    lines = [("101", "100.10"), ("102", "0.05")]
    with NetSuiteSandbox().start() as over_soap:
        record = invoice("INV-1", "C-1", lines, extra="<sales:memo>March</sales:memo>")
        upsert(over_soap.soap_endpoint, over_soap.credentials, [customer("C-1"), record])
        soap_held = (over_soap.records("customer"), over_soap.records("invoice"))
    with NetSuiteSandbox().start() as over_rest:
        assert _put(over_rest, "customer", "C-1", CUSTOMER).status_code == 204
        # Amounts travel as JSON numbers; the sandbox reads them from their text.
        items = ", ".join(
            f'{{"item": {{"id": "{item}"}}, "amount": {amount}, "taxCode": {{"id": "11"}}}}'
            for item, amount in lines
        )
        text = (
            '{"entity": {"externalId": "C-1"}, "tranDate": "2024-03-15", "memo": "March", '
            f'"item": {{"items": [{items}]}}}}'
        )
        url = f"{over_rest.rest_url}/invoice/eid:INV-1"
        response = httpx.put(
            url,
            content=text,
            headers={"Authorization": oauth1_header(over_rest.credentials, "PUT", url)},
        )
        assert response.status_code == 204, response.text
        rest_held = (over_rest.records("customer"), over_rest.records("invoice"))
        read_back = _get(over_rest, "invoice/eid:INV-1").text
    assert soap_held == rest_held
    assert rest_held[1][0]["total"] == Decimal("100.15")
    assert '"amount": 100.10' in read_back
    assert '"total": 100.15' in read_back
