"""Fields of the real 2023_2 schema the mapping sends: the customer's address book and
``autoApply``, and the voided (zeroed) payloads, over SOAP and REST against the sandbox.

The schema tests hold the sandbox's own WSDL/XSDs and country list to NetSuite's real ones
(from specs_dir), and the SOAP connector's country names to the real Country enumeration.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from connectors.netsuite_soap.messages import _country
from core.errors import MappingError, PermanentError
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


def test_unknown_country_is_a_mapping_error_naming_customer_field_and_fix():
    with pytest.raises(MappingError) as caught:
        ns.map_customer(replace(customer(), country="ZZ"), tables())
    assert str(caught.value).startswith("customer C-0001: country: 'ZZ' is not a country")
    assert "ISO 3166 alpha-2" in str(caught.value)


def test_rest_sandbox_refuses_an_unknown_country_and_stores_nothing(sandbox, connect):
    document = ns.map_customer(customer(), tables())
    address = document.payload["addressbookList"][0]["addressbookAddress"]
    address["country"] = "ZZ"  # past the mapping's check: the sandbox must refuse it too
    (result,) = connect(rest).send([document])
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
    voided = replace(inv, status="void", voided_at=datetime(2026, 3, 20, 9, 0, tzinfo=UTC))
    (result,) = connector.send([ns.map_invoice(voided, t, customer=cust)])
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


def test_every_two_letter_code_maps_to_the_real_enumeration_or_is_refused(specs_dir):
    real = set(_enumeration(specs_dir / "netsuite" / "xsd" / "platform.commonTypes.xsd", "Country"))
    letters = [chr(c) for c in range(ord("A"), ord("Z") + 1)]
    mapped: dict[str, str] = {}
    refused: list[str] = []
    for code in (a + b for a in letters for b in letters):
        cust = replace(customer(), country=code)
        try:
            doc = ns.map_customer(cust, tables())
        except MappingError as exc:
            assert "country" in str(exc) and code in str(exc)
            assert "ISO 3166" in str(exc)  # the fix: correct it to an ISO code NetSuite lists
            refused.append(code)
            continue
        assert doc.payload["addressbookList"][0]["addressbookAddress"]["country"] == code
        mapped[code] = _country(code)
    assert {c: v for c, v in mapped.items() if v not in real} == {}
    assert set(mapped.values()) == real  # every NetSuite country is reachable from its code
    assert len(mapped) == len(real)  # and from one code only
    assert len(mapped) + len(refused) == 26 * 26
    assert {"US", "TF", "KR", "GB", "DE", "JP"} <= mapped.keys()
    assert {"ZZ", "EU", "UN", "XA"} <= set(refused)
    assert {code: ISO_TO_ENUM[code] for code in ISO_TO_ENUM} == {
        code: _country(code) for code in ISO_TO_ENUM
    }


def test_country_table_is_what_the_generator_makes_from_the_xsd(specs_dir):
    from tools.gen_netsuite_countries import enumeration, pair, render

    table, unpaired = pair(enumeration(specs_dir / "netsuite" / "xsd" / "platform.commonTypes.xsd"))
    assert unpaired == []
    module = Path(__file__).resolve().parents[1] / "core" / "netsuite_countries.py"
    committed = module.read_text(encoding="utf-8")
    assert render(table, "xsd/platform.commonTypes.xsd") == committed


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
