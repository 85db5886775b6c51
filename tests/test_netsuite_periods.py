"""``accounting_periods()`` over SOAP (search, AccountingPeriodSearch) and REST (collection +
get) against the sandbox, with a closed period; posting into it is refused."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from core.errors import PermanentError
from core.periods import AccountingPeriod
from mappings import netsuite as ns
from sandbox.netsuite import NetSuiteSandbox
from tests.netsuite_records import customer, tables, usd_invoice
from tests.netsuite_sandbox_helpers import rest, soap


def soap_real_wsdl(sb, request):
    specs_dir = request.getfixturevalue("specs_dir")  # skips (or fails in CI) without specs
    return soap(sb, wsdl=str(specs_dir / "netsuite" / "netsuite.wsdl"))


def soap_own(sb, request):
    return soap(sb)


def rest_oauth2(sb, request):
    return rest(sb)


def rest_tba(sb, request):
    return rest(sb, auth="tba")


CONNECTORS = pytest.mark.parametrize(
    "make",
    [soap_own, soap_real_wsdl, rest_oauth2, rest_tba],
    ids=["soap", "soap-real-wsdl", "rest-oauth2", "rest-tba"],
)


@pytest.fixture
def sandbox():
    with NetSuiteSandbox(periods=("2024-01", "2024-12")).start() as sb:
        sb.close_period(date(2024, 2, 14))
        yield sb


@CONNECTORS
def test_periods_with_a_closed_one(sandbox, make, request):
    connector = make(sandbox, request)
    request.addfinalizer(connector.close)
    periods = connector.accounting_periods()
    assert len(periods) == 12
    assert [p.start for p in periods] == [date(2024, m, 1) for m in range(1, 13)]
    assert periods[1] == AccountingPeriod(
        internal_id=periods[1].internal_id,
        name="Feb 2024",
        start=date(2024, 2, 1),
        end=date(2024, 2, 29),
        closed=True,
    )
    assert [p.name for p in periods if p.closed] == ["Feb 2024"]
    assert periods[11].end == date(2024, 12, 31)
    assert len({p.internal_id for p in periods}) == 12
    assert next(p for p in periods if p.contains(date(2024, 7, 31))).name == "Jul 2024"
    sandbox.open_period(date(2024, 2, 1))
    assert not any(p.closed for p in connector.accounting_periods())


@CONNECTORS
def test_invoice_into_the_closed_period_is_refused(sandbox, make, request):
    connector = make(sandbox, request)
    request.addfinalizer(connector.close)
    cust = customer()
    inv = replace(usd_invoice(cust=cust), issue_date=date(2024, 2, 20))
    closed = next(p for p in connector.accounting_periods() if p.closed)
    assert closed.contains(inv.issue_date)
    results = connector.send(
        [ns.map_customer(cust, tables()), ns.map_invoice(inv, tables(), customer=cust)]
    )
    assert results[0].ok
    assert not results[1].ok
    assert isinstance(results[1].error, PermanentError)
    assert results[1].error.code == "TRAN_PERIOD_CLOSED"
    assert "Feb 2024" in results[1].error.message
    assert sandbox.count("invoice") == 0
