"""Scripted faults and the account-wide concurrency limit of the NetSuite sandbox."""

from __future__ import annotations

import threading
from datetime import date

import httpx
import pytest
from lxml import etree

from sandbox.netsuite import NetSuiteSandbox
from tests.test_sandbox_netsuite_helpers import (
    customer,
    envelope,
    fault_of,
    invoice,
    passport_xml,
    post,
    upsert,
    write_results,
)
from tests.test_sandbox_netsuite_rest import CUSTOMER, _put


@pytest.fixture
def ns():
    with NetSuiteSandbox().start() as sandbox:
        yield sandbox


def _soap(ns, *records: str, timeout: float = 10):
    xml = envelope(
        f"<msgs:upsertList>{''.join(records)}</msgs:upsertList>", passport_xml(ns.credentials)
    )
    return httpx.post(
        ns.soap_endpoint,
        content=xml.encode(),
        timeout=timeout,
        headers={"Content-Type": "text/xml", "SOAPAction": "upsertList"},
    )


def test_requests_over_the_concurrency_limit_are_blocked():
    with NetSuiteSandbox(concurrency_limit=2).start() as ns:
        ns.slow(2.0)
        barrier = threading.Barrier(5)
        answers: dict[str, httpx.Response] = {}

        def send(name: str) -> None:
            barrier.wait()
            if name.startswith("rest"):
                answers[name] = _put(ns, "customer", name, CUSTOMER)
            else:
                answers[name] = _soap(ns, customer(name))

        threads = [
            threading.Thread(target=send, args=(n,))
            for n in ("soap-1", "soap-2", "soap-3", "rest-1", "rest-2")
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        blocked_soap = [
            n for n, r in answers.items() if n.startswith("soap") and r.status_code == 500
        ]
        blocked_rest = [
            n for n, r in answers.items() if n.startswith("rest") and r.status_code == 429
        ]
        assert len(blocked_soap) + len(blocked_rest) == 3
        for name in blocked_soap:
            assert fault_of(etree.fromstring(answers[name].content))[:2] == (
                "exceededConcurrentRequestLimitFault",
                "WS_REQUEST_BLOCKED",
            )
        for name in blocked_rest:
            assert (
                answers[name].json()["o:errorDetails"][0]["o:errorCode"]
                == "SSS_REQUEST_LIMIT_EXCEEDED"
            )
        assert ns.count("customer") == 2
        # Each refused request saw more than the limit in flight.
        assert ns.max_in_flight > ns.concurrency_limit
        assert ns.in_flight == 0


def test_fail_next_answers_plain_http_errors_before_doing_anything(ns):
    ns.fail_next(503, times=2)
    statuses = [_soap(ns, customer("C-1")).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert ns.count("customer") == 1
    assert [e["status"] for e in ns.request_log] == [503, 503, 200]


def test_concurrency_fault_next_over_soap_and_rest(ns):
    ns.concurrency_fault_next(times=2)
    soap = _soap(ns, customer("C-1"))
    assert soap.status_code == 500
    assert fault_of(etree.fromstring(soap.content))[1] == "WS_REQUEST_BLOCKED"
    rest = _put(ns, "customer", "C-2", CUSTOMER)
    assert rest.status_code == 429
    assert ns.count("customer") == 0
    assert _soap(ns, customer("C-1")).status_code == 200


def test_timeout_after_commit_drops_the_answer_but_keeps_the_write(ns):
    ns.timeout_after_commit(times=1)
    with pytest.raises(httpx.RemoteProtocolError):
        _soap(ns, customer("C-1"))
    held = ns.get("customer", "C-1")
    assert held is not None
    # The client's retry is an update of the same record, not a duplicate.
    again = write_results(etree_of(_soap(ns, customer("C-1"))))
    assert again[0]["internalId"] == held["internalId"]
    assert ns.count("customer") == 1


def test_timeout_after_commit_can_hold_the_answer_past_the_client_timeout(ns):
    ns.timeout_after_commit(times=1, delay=1.0)
    with pytest.raises(httpx.ReadTimeout):
        _soap(ns, customer("C-1"), timeout=0.2)
    assert ns.count("customer") == 1


def test_reject_external_id_fails_only_that_record(ns):
    ns.reject_external_id(
        "C-2", "INSUFFICIENT_PERMISSION", "Permission violation: you need Customers."
    )
    results = upsert(
        ns.soap_endpoint, ns.credentials, [customer("C-1"), customer("C-2"), customer("C-3")]
    )
    assert [r["isSuccess"] for r in results] == ["true", "false", "true"]
    assert (results[1]["code"], results[1]["message"]) == (
        "INSUFFICIENT_PERMISSION",
        "Permission violation: you need Customers.",
    )
    rest = _put(ns, "customer", "C-2", CUSTOMER)
    assert rest.status_code == 400
    assert rest.json()["o:errorDetails"][0]["o:errorCode"] == "INSUFFICIENT_PERMISSION"
    ns.reset()
    assert _put(ns, "customer", "C-2", CUSTOMER).status_code == 204
    assert ns.count("customer") == 3


def test_reset_clears_scripted_faults(ns):
    ns.fail_next(500, times=3)
    ns.slow(5.0)
    ns.reset()
    assert _soap(ns, customer("C-1"), timeout=2).status_code == 200


def test_admin_endpoint_scripts_faults_and_periods(ns):
    admin = f"{ns.url}/_sandbox"
    assert (
        httpx.post(
            f"{admin}/faults", json={"action": "fail_next", "status": 502, "times": 1}
        ).status_code
        == 200
    )
    assert _soap(ns, customer("C-1")).status_code == 502
    bad = httpx.post(f"{admin}/faults", json={"action": "explode"})
    assert bad.status_code == 400
    assert (
        httpx.post(f"{admin}/periods", json={"action": "close", "date": "2024-03-10"}).status_code
        == 200
    )
    _soap(ns, customer("C-1"))
    refused = upsert(ns.soap_endpoint, ns.credentials, [invoice("INV-1", "C-1")])
    assert refused[0]["code"] == "TRAN_PERIOD_CLOSED"
    ns.open_period(date(2024, 3, 10))
    assert (
        upsert(ns.soap_endpoint, ns.credentials, [invoice("INV-1", "C-1")])[0]["isSuccess"]
        == "true"
    )


def etree_of(response: httpx.Response):
    assert response.status_code == 200
    return etree.fromstring(response.content)


def test_wsdl_and_schemas_are_served_with_the_sandbox_address(ns):
    wsdl = httpx.get(ns.wsdl_url)
    assert wsdl.status_code == 200
    assert f'location="{ns.soap_endpoint}"' in wsdl.text
    assert httpx.get(f"{ns.url}/wsdl/xsd/core.xsd").status_code == 200
    assert httpx.get(f"{ns.url}/wsdl/xsd/..%2Fnetsuite.wsdl").status_code == 404
    status, _ = post(ns.soap_endpoint, "<not-soap/>")
    assert status == 500
