"""Fields of the real 2023_2 schema the mapping sends: the customer's address book and
``autoApply``, and the voided (zeroed) payloads, over SOAP and REST against the sandbox.

The schema tests hold the sandbox's own WSDL/XSDs and country list to NetSuite's real ones
(from specs_dir), and the SOAP connector's country names to the real Country enumeration.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from babel import Locale
from lxml import etree

from connectors.netsuite_soap import _country
from finsync.errors import PermanentError
from mappings import netsuite as ns
from sandbox.netsuite import NetSuiteSandbox
from sandbox.netsuite.countries import ISO_TO_ENUM
from sandbox.netsuite.server import WSDL_DIR
from tests.netsuite_records import credit_note, customer, payment, tables, usd_invoice
from tests.netsuite_sandbox_helpers import chain, rest, soap

D = Decimal
XS = "{http://www.w3.org/2001/XMLSchema}"
TRANSPORTS = pytest.mark.parametrize("make", [soap, rest], ids=["soap", "rest"])


@pytest.fixture
def sandbox():
    with NetSuiteSandbox().start() as sb:
        yield sb


@pytest.fixture
def connect(sandbox, request):
    def make(factory, **kw):
        connector = factory(sandbox, **kw)
        request.addfinalizer(connector.close)
        return connector

    return make


def _address(**fields: str) -> dict:
    return {"defaultShipping": True, "defaultBilling": True, "addressbookAddress": fields}


@TRANSPORTS
@pytest.mark.parametrize(
    ("country", "region", "city", "postal"),
    [("US", "CA", "San Francisco", "94105"), ("KR", None, "Seoul", "04524")],
)
def test_customer_address_book_lands(sandbox, connect, make, country, region, city, postal):
    cust = replace(customer(), country=country, region=region, city=city, postal_code=postal)
    (result,) = connect(make).send([ns.map_customer(cust, tables())])
    assert result.ok, result.error
    (held,) = sandbox.records("customer")
    expected = {"addr1": "1 Market St", "city": city, "zip": postal, "country": country}
    if region:
        expected["state"] = region
    assert held["addressbookList"] == [_address(**expected)]
    assert held["companyName"] == "Globex Corp"


@TRANSPORTS
def test_unknown_country_is_refused_and_nothing_stored(sandbox, connect, make):
    cust = replace(customer(), country="ZZ")
    (result,) = connect(make).send([ns.map_customer(cust, tables())])
    assert not result.ok
    assert isinstance(result.error, PermanentError)
    assert result.error.code == "INVALID_FLD_VALUE"
    assert sandbox.count("customer") == 0


@TRANSPORTS
def test_void_payloads_are_accepted_and_zero_everything(sandbox, connect, make):
    connector = connect(make)
    t = tables()
    cust = customer()
    inv = usd_invoice(cust=cust)
    assert all(r.ok for r in connector.send(chain()))
    assert sandbox.get("invoice", "finsync:inv:INV-1042")["amountRemaining"] == D("0.00")
    # Void the payment and the credit note first: the invoice owes its full total again.
    paid = payment(amount="600.00", status="failed", apps=((inv.id, inv.number, "586.66"),))
    voids = [
        ns.map_payment(paid, t),
        ns.map_credit_note(credit_note(inv=inv, status="void"), t),
    ]
    assert [d.operation for d in voids] == ["void", "void"]
    results = connector.send(voids)
    assert [r.ok for r in results] == [True, True], [r.error for r in results]
    held_payment = sandbox.get("customerPayment", "finsync:pay:PAY-9")
    assert held_payment["payment"] == D("0.00")
    assert held_payment["applyList"] == [] and held_payment["applied"] == 0
    assert held_payment["memo"].startswith("VOID")
    held_memo = sandbox.get("creditMemo", "finsync:cn:CN-7")
    assert held_memo["total"] == 0 and held_memo["applyList"] == []
    assert held_memo["memo"] == "VOID: Onboarding cancelled"
    invoice = sandbox.get("invoice", "finsync:inv:INV-1042")
    assert invoice["amountRemaining"] == D("2195.41") == invoice["total"]
    (result,) = connector.send([ns.map_invoice(replace(inv, status="void"), t, customer=cust)])
    assert result.ok, result.error
    invoice = sandbox.get("invoice", "finsync:inv:INV-1042")
    assert invoice["total"] == 0 and invoice["memo"] == "VOID: March subscription"
    assert [line["amount"] for line in invoice["itemList"]] == [D("0.00"), D("0.00")]
    assert sandbox.count("customerPayment") == sandbox.count("creditMemo") == 1


def _payment_with(payload_changes: dict):
    inv = usd_invoice()
    doc = ns.map_payment(payment(amount="600.00", apps=((inv.id, inv.number, "586.66"),)), tables())
    return replace(doc, payload={**doc.payload, **payload_changes})


@TRANSPORTS
@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"payment": "-1.00", "applyList": []}, "INVALID_AMT"),
        ({"payment": "0.00"}, "INVALID_AMT"),
        ({"autoApply": True, "applyList": []}, "INVALID_FLD_VALUE"),
    ],
    ids=["negative", "zero-applying", "auto-apply"],
)
def test_payment_rules_kept_for_non_void_records(sandbox, connect, make, changes, code):
    connector = connect(make)
    assert all(r.ok for r in connector.send(chain()[:2]))
    (result,) = connector.send([_payment_with(changes)])
    assert not result.ok and result.error.code == code, result.error
    assert sandbox.count("customerPayment") == 0


# ---- schema fidelity (needs NetSuite's real WSDL/XSDs) -----------------------------------------


def _complex_types(path: Path) -> dict[tuple[str, str], list[tuple[str, str]]]:
    root = etree.parse(str(path)).getroot()
    namespace = root.get("targetNamespace")
    found = {}
    for node in root.iter(f"{XS}complexType"):
        if node.get("name"):
            found[(namespace, node.get("name"))] = [
                (
                    (e.get("name") or e.get("ref")).split(":")[-1],
                    (e.get("type") or "").split(":")[-1],
                )
                for e in node.iter(f"{XS}element")
            ]
    return found


def _enumeration(path: Path, name: str) -> list[str]:
    root = etree.parse(str(path)).getroot()
    node = next(n for n in root.iter(f"{XS}simpleType") if n.get("name") == name)
    return [e.get("value") for e in node.iter(f"{XS}enumeration")]


def test_sandbox_types_are_ordered_subsets_of_the_real_ones(specs_dir):
    real: dict = {}
    for path in (specs_dir / "netsuite" / "xsd").glob("*.xsd"):
        real.update(_complex_types(path))
    checked = set()
    for path in sorted((WSDL_DIR / "xsd").glob("*.xsd")):
        for key, elements in _complex_types(path).items():
            assert key in real, f"{path.name}: {key} is not in NetSuite's schema"
            remaining = iter(real[key])
            # Same names, same types, same order (a subsequence of the real sequence).
            assert all(e in remaining for e in elements), f"{path.name}: {key[1]}"
            checked.add(key[1])
    wanted = {"Customer", "CustomerAddressbook", "Address", "CreditMemo", "CustomerPayment"}
    assert wanted <= checked
    own_countries = _enumeration(WSDL_DIR / "xsd" / "commonTypes.xsd", "Country")
    real_countries = _enumeration(
        specs_dir / "netsuite" / "xsd" / "platform.commonTypes.xsd", "Country"
    )
    assert sorted(own_countries) == sorted(ISO_TO_ENUM.values())
    assert set(own_countries) <= set(real_countries)


def test_connector_country_names_are_the_real_enumeration(specs_dir):
    real = set(_enumeration(specs_dir / "netsuite" / "xsd" / "platform.commonTypes.xsd", "Country"))
    # CLDR codes that name no country NetSuite lists (groupings, pseudo-locales, islands
    # NetSuite files under another country).
    not_countries = {"AC", "CP", "CQ", "DG", "EU", "EZ", "QO", "TA", "UN", "XA", "XB", "ZZ"}
    codes = [c for c in Locale("en").territories if len(c) == 2 and c.isalpha()]
    names = {code: _country(code) for code in codes if code not in not_countries}
    assert {c: n for c, n in names.items() if n not in real} == {}
    assert set(names.values()) == real  # every NetSuite country is reachable from its code
    assert {code: ISO_TO_ENUM[code] for code in ISO_TO_ENUM} == {
        code: _country(code) for code in ISO_TO_ENUM
    }
    with pytest.raises(ValueError, match="not an ISO 3166"):
        _country("XYZ")


def test_real_wsdl_address_and_auto_apply_are_accepted(specs_dir, request):
    real_wsdl = str(specs_dir / "netsuite" / "netsuite.wsdl")
    held = {}
    for name, wsdl in (("real", real_wsdl), ("own", None)):
        with NetSuiteSandbox().start() as sb:
            connector = soap(sb, **({"wsdl": wsdl} if wsdl else {}))
            request.addfinalizer(connector.close)
            results = connector.send(chain())
            assert all(r.ok for r in results), [r.error for r in results]
            held[name] = {
                t: sb.records(t) for t in ("customer", "invoice", "creditMemo", "customerPayment")
            }
    assert held["real"] == held["own"]
    assert held["own"]["customerPayment"][0]["autoApply"] is False
    assert held["own"]["customer"][0]["addressbookList"][0]["addressbookAddress"]["country"] == "US"
