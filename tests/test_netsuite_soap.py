"""NetSuite connectors over real HTTP against the local NetSuite sandbox (SOAP and REST).

Credit memos, payments, faults and parity are in tests/test_netsuite_http.py.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.errors import AuthError
from sandbox.netsuite import NetSuiteSandbox
from tests.netsuite_sandbox_helpers import chain, rest, soap


@pytest.fixture
def sandbox():
    with NetSuiteSandbox().start() as sb:
        yield sb


@pytest.mark.parametrize("make", [soap, rest], ids=["soap", "rest"])
def test_customer_and_invoice_land_with_exact_amounts(sandbox, make, request):
    connector = make(sandbox)
    request.addfinalizer(connector.close)
    customer_doc, invoice_doc = chain()[:2]
    first = connector.send([customer_doc, invoice_doc])
    assert [r.ok for r in first] == [True, True]
    (inv,) = sandbox.records("invoice")
    assert inv["tranId"] == "INV-1042"
    assert [line["amount"] for line in inv["itemList"]] == [Decimal("547.00"), Decimal("1500.00")]
    assert [line["tax1Amt"] for line in inv["itemList"]] == [Decimal("39.66"), Decimal("108.75")]
    assert inv["entity"] == first[0].internal_id
    # a second send updates the same records
    again = connector.send([customer_doc, invoice_doc])
    assert [r.internal_id for r in again] == [r.internal_id for r in first]
    assert sandbox.count("invoice") == 1 and sandbox.count("customer") == 1
    assert connector.lookup([invoice_doc]) == {invoice_doc.external_id: first[1].internal_id}


def test_wrong_secret_is_auth_error_without_the_secret(sandbox):
    connector = soap(sandbox, secret="not-the-RIGHT-secret")
    with pytest.raises(AuthError) as err:
        connector.send(chain()[:1])
    connector.close()
    assert "not-the-RIGHT-secret" not in str(err.value)
    assert sandbox.count("customer") == 0
