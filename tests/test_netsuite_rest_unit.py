"""NetSuite REST connector: request building and response handling (httpx.MockTransport)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from decimal import Decimal
from urllib.parse import quote

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from connectors.netsuite_rest import (
    NetSuiteRestConnector,
    NetSuiteRestSettings,
    dumps_exact,
    oauth1_header,
)
from core.errors import AuthError, ConfigError, PermanentError, RateLimitedError
from finsync.config import Secret, Section
from mappings import netsuite as ns
from tests.netsuite_records import customer, payment, tables, usd_invoice

BASE = "https://1234567-sb1.suitetalk.api.netsuite.com"


def tba_settings(**kw) -> NetSuiteRestSettings:
    return NetSuiteRestSettings(
        account="1234567_SB1",
        auth="tba",
        consumer_key=Secret("ck"),
        consumer_secret=Secret("cs-SECRET"),
        token_id=Secret("tk"),
        token_secret=Secret("ts-SECRET"),
        backoff_seconds=0.0,
        **kw,
    )


def make(handler, settings=None, **kw) -> NetSuiteRestConnector:
    return NetSuiteRestConnector(
        settings or tba_settings(),
        client=httpx.Client(transport=httpx.MockTransport(handler)),
        clock=lambda: 1_700_000_000.0,
        nonce=lambda: "n0nce",
        **kw,
    )


def test_invoice_put_by_external_id_with_exact_numbers():
    seen = []

    def handler(request):
        seen.append(request)
        return httpx.Response(
            204, headers={"Location": f"{BASE}/services/rest/record/v1/invoice/812"}
        )

    doc = ns.map_invoice(usd_invoice(), tables())
    (result,) = make(handler).send([doc])
    assert (result.ok, result.internal_id) == (True, "812")
    (request,) = seen
    assert request.method == "PUT"
    assert (
        str(request.url) == f"{BASE}/services/rest/record/v1/invoice/eid:finsync%3Ainv%3AINV-1042"
    )
    raw = request.content.decode()
    assert '"amount":547.00' in raw and '"rate":182.33333333' in raw and '"tax1Amt":39.66' in raw
    body = json.loads(raw, parse_float=Decimal)
    assert body["externalId"] == "finsync:inv:INV-1042"
    assert body["entity"] == {"externalId": "finsync:cust:C-0001"}
    assert body["subsidiary"] == {"id": "1"}
    assert body["tranDate"] == "2024-03-01"
    first = body["item"]["items"][0]
    assert first["amount"] == Decimal("547.00") and first["quantity"] == Decimal("3")
    assert first["revRecEndDate"] == "2024-03-31"


def test_payment_apply_uses_invoice_internal_id():
    puts = []

    def handler(request):
        if request.method == "GET":
            assert request.url.raw_path.endswith(b"/invoice/eid:finsync%3Ainv%3AINV-1042")
            return httpx.Response(200, json={"id": "812", "externalId": "finsync:inv:INV-1042"})
        puts.append(json.loads(request.content, parse_float=Decimal))
        return httpx.Response(204, headers={"Location": f"{BASE}/x/customerPayment/900"})

    doc = ns.map_payment(payment(apps=((10, "INV-1042", "500.00"),)), tables())
    (result,) = make(handler).send([doc])
    assert result.ok and result.internal_id == "900"
    assert puts[0]["apply"] == {
        "items": [{"doc": {"id": "812"}, "apply": True, "amount": Decimal("500.00")}]
    }
    assert puts[0]["payment"] == Decimal("700.00")


def test_error_details_become_permanent_error_for_that_document_only():
    def handler(request):
        if "C-0002" in str(request.url):
            return httpx.Response(
                400,
                json={
                    "type": "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.1",
                    "title": "Bad Request",
                    "status": 400,
                    "o:errorDetails": [
                        {
                            "detail": "Invalid value for the resource or sub-resource "
                            "field 'subsidiary'.",
                            "o:errorCode": "INVALID_VALUE",
                        }
                    ],
                },
            )
        return httpx.Response(204, headers={"Location": f"{BASE}/x/customer/5"})

    t = tables()
    ok, bad = make(handler).send(
        [ns.map_customer(customer(), t), ns.map_customer(customer(2, "C-0002"), t)]
    )
    assert ok.ok
    assert isinstance(bad.error, PermanentError) and bad.error.code == "INVALID_VALUE"
    assert "customer C-0002" in str(bad.error) and "field 'subsidiary'" in str(bad.error)


def test_request_limit_and_429_are_retried_honouring_retry_after():
    replies = [
        httpx.Response(
            400,
            json={
                "o:errorDetails": [{"detail": "limit", "o:errorCode": "SSS_REQUEST_LIMIT_EXCEEDED"}]
            },
        ),
        httpx.Response(429, headers={"Retry-After": "3"}, text="slow down"),
        httpx.Response(204, headers={"Location": f"{BASE}/x/customer/5"}),
    ]
    sleeps = []
    (result,) = make(lambda r: replies.pop(0), sleep=sleeps.append).send(
        [ns.map_customer(customer(), tables())]
    )
    assert result.ok
    assert len(sleeps) == 2 and sleeps[1] >= 3


def test_request_limit_exhausted_is_rate_limited():
    reply = httpx.Response(
        400,
        json={"o:errorDetails": [{"detail": "limit", "o:errorCode": "SSS_REQUEST_LIMIT_EXCEEDED"}]},
    )
    (result,) = make(lambda r: reply, tba_settings(retry_attempts=2)).send(
        [ns.map_customer(customer(), tables())]
    )
    assert isinstance(result.error, RateLimitedError)


def test_401_is_auth_error_without_secret():
    with pytest.raises(AuthError) as err:
        make(
            lambda r: httpx.Response(
                401,
                json={
                    "o:errorDetails": [
                        {"detail": "Invalid login attempt.", "o:errorCode": "INVALID_LOGIN"}
                    ]
                },
            )
        ).send([ns.map_customer(customer(), tables())])
    assert "SECRET" not in str(err.value)


def test_lookup_by_external_id():
    def handler(request):
        if "INV-1" in str(request.url):
            return httpx.Response(200, json={"id": "31"})
        return httpx.Response(
            404, json={"o:errorDetails": [{"detail": "not found", "o:errorCode": "NONEXISTENT_ID"}]}
        )

    t = tables()
    docs = [ns.map_invoice(usd_invoice(1, "INV-1"), t), ns.map_invoice(usd_invoice(2, "INV-2"), t)]
    assert make(handler).lookup(docs) == {"finsync:inv:INV-1": "31", "finsync:inv:INV-2": None}


def test_oauth1_signature_known_answer():
    url = f"{BASE}/services/rest/record/v1/customer/eid:x?expand=true"
    header = oauth1_header(
        "PUT",
        url,
        account="1234567_SB1",
        consumer_key="ck",
        consumer_secret="cs",
        token="tk",
        token_secret="ts",
        nonce="abc",
        timestamp=1700000000,
    )
    params = (
        "expand=true&oauth_consumer_key=ck&oauth_nonce=abc&oauth_signature_method="
        "HMAC-SHA256&oauth_timestamp=1700000000&oauth_token=tk&oauth_version=1.0"
    )
    base = "&".join(["PUT", quote(url.split("?")[0], safe=""), quote(params, safe="")])
    expected = base64.b64encode(hmac.new(b"cs&ts", base.encode(), hashlib.sha256).digest())
    assert f'oauth_signature="{quote(expected.decode(), safe="")}"' in header
    assert header.startswith('OAuth realm="1234567_SB1", ')


def test_oauth2_token_requested_once_and_cached():
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    settings = NetSuiteRestSettings(
        account="1234567_SB1",
        client_id="client-1",
        certificate_id="cert-9",
        private_key=Secret(pem),
        algorithm="ES256",
        backoff_seconds=0.0,
    )
    tokens, auth_headers = [], []

    def handler(request):
        if request.url.path.endswith("/oauth2/v1/token"):
            form = dict(x.split("=", 1) for x in request.content.decode().split("&"))
            assertion = form["client_assertion"]
            assert jwt.get_unverified_header(assertion)["kid"] == "cert-9"
            claims = jwt.decode(
                assertion,
                key.public_key(),
                algorithms=["ES256"],
                audience=f"{BASE}/services/rest/auth/oauth2/v1/token",
                options={"verify_exp": False},  # the test clock is fixed in 2023
            )
            assert claims["iss"] == "client-1" and claims["scope"] == "rest_webservices"
            assert claims["exp"] - claims["iat"] <= 3600
            tokens.append(assertion)
            return httpx.Response(
                200, json={"access_token": "AT-1", "expires_in": 3600, "token_type": "bearer"}
            )
        auth_headers.append(request.headers["Authorization"])
        return httpx.Response(204, headers={"Location": f"{BASE}/x/customer/5"})

    c = make(handler, settings)
    t = tables()
    c.send([ns.map_customer(customer(), t)])
    c.send([ns.map_customer(customer(2, "C-0002"), t)])
    assert len(tokens) == 1
    assert auth_headers == ["Bearer AT-1", "Bearer AT-1"]


def test_dumps_exact_never_rounds():
    assert (
        dumps_exact({"a": Decimal("0.1000000000000000055511151231257827"), "b": [True, None]})
        == '{"a":0.1000000000000000055511151231257827,"b":[true,null]}'
    )


def test_settings_from_section_name_the_key():
    env = {"CK": "a", "CS": "b", "TK": "c", "TS": "d"}
    data = {
        "account": "1234567_SB1",
        "auth": "tba",
        "consumer_key": {"env": "CK"},
        "consumer_secret": {"env": "CS"},
        "token_id": {"env": "TK"},
        "token_secret": {"env": "TS"},
    }
    s = NetSuiteRestSettings.from_section(Section(data, "targets.netsuite", env))
    assert s.base_url == BASE
    with pytest.raises(ConfigError) as err:
        NetSuiteRestSettings.from_section(Section({"account": "1"}, "targets.netsuite", env))
    assert err.value.key == "targets.netsuite.client_id"
