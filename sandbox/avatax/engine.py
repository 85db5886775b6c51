"""The tax engine behind the AvaTax sandbox: companies, rates, documents and their states.

It checks what arrives the way AvaTax does (required fields, known company, a usable address,
numbers where the API wants numbers), computes tax from a small rate table, honours tax
overrides, and keeps documents keyed by (company code, document code, document type) through
their states: Saved, Committed, Cancelled (voided), and locked once "reported".

Failures are ``AvaTaxFault``s carrying the HTTP status and AvaTax's own error code, which the
server renders in AvaTax's error shape. Amounts are Decimal throughout.
"""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from babel.numbers import get_currency_precision, list_currencies

#: Companies the sandbox account holds: company code -> company id.
COMPANIES: dict[str, int] = {
    "ACME_US": 101,
    "ACME_DE": 102,
    "ACME_UK": 103,
    "ACME_JP": 104,
    "ACME_KW": 105,
}


@dataclass(frozen=True)
class Jurisdiction:
    """One taxing jurisdiction of the rate table."""

    country: str
    region: str
    juris_type: str  # TransactionSummary.jurisType: "State" or "Country"
    juris_code: str
    juris_name: str
    tax_type: str  # "Sales" (US sales tax) or "Output" (VAT/GST)
    tax_name: str
    rate: Decimal


def _us(region: str, name: str, rate: str) -> Jurisdiction:
    return Jurisdiction(
        "US", region, "State", region, name, "Sales", f"{region} STATE TAX", Decimal(rate)
    )


def _vat(country: str, name: str, rate: str, tax_name: str = "VAT") -> Jurisdiction:
    return Jurisdiction(
        country, "", "Country", country, name, "Output", f"{country} {tax_name}", Decimal(rate)
    )


#: Rates by country, and by region where the region decides (US states).
RATES: dict[tuple[str, str], Jurisdiction] = {
    ("US", "CA"): _us("CA", "CALIFORNIA", "0.0725"),
    ("US", "NY"): _us("NY", "NEW YORK", "0.08875"),
    ("US", "TX"): _us("TX", "TEXAS", "0.0625"),
    ("US", "WA"): _us("WA", "WASHINGTON", "0.065"),
    ("DE", ""): _vat("DE", "GERMANY", "0.19"),
    ("GB", ""): _vat("GB", "UNITED KINGDOM", "0.20"),
    ("JP", ""): _vat("JP", "JAPAN", "0.10", "CONSUMPTION TAX"),
    ("KW", ""): _vat("KW", "KUWAIT", "0"),
}
_REGIONAL = frozenset(country for country, region in RATES if region)

#: AvaTax's ErrorCodeId numbers of the codes the sandbox answers (error details[].number).
ERROR_NUMBERS: dict[str, int] = {
    "EntityNotFoundError": 4,
    "ValueRequiredError": 5,
    "StringLengthError": 13,
    "DateFormatError": 26,
    "AuthenticationException": 30,
    "ModelRequiredException": 38,
    "JsonFormatError": 47,
    "InvalidDecimalValue": 48,
    "ModelStateInvalid": 70,
    "InvalidCountry": 125,
    "InvalidCountryRegion": 126,
    "InvalidEnumValue": 164,
    "TransactionAlreadyCancelled": 198,
    "MissingAddress": 304,
    "InvalidParameterValue": 306,
    "InvalidAddress": 309,
    "CannotModifyLockedTransaction": 1100,
    "TransactionAlreadyExists": 1303,
    "InvalidDocumentType": 1310,
    "InvalidDocumentStatus": 1314,
    "RepeatedLinesInDocument": 2213,
    "TaxDateOverrideAndNegativeLineAmount": 2214,
}
HELP_LINK = "https://developer.avalara.com/avatax/errors/{code}"

#: maxLength of the string fields of the models the sandbox reads, from the AvaTax OpenAPI
#: (../shared/specs/avatax: CreateTransactionModel, LineItemModel, AddressLocationInfo).
MAX_LENGTHS: dict[str, dict[str, int]] = {
    "transaction": {
        "code": 50,
        "companyCode": 50,
        "salespersonCode": 25,
        "customerCode": 50,
        "customerUsageType": 25,
        "entityUseCode": 25,
        "purchaseOrderNo": 50,
        "exemptionNo": 25,
        "referenceCode": 1024,
        "reportingLocationCode": 50,
        "batchCode": 25,
        "currencyCode": 3,
        "posLaneCode": 50,
        "businessIdentificationNo": 25,
        "description": 2048,
        "email": 50,
    },
    "line": {
        "number": 50,
        "taxCode": 25,
        "customerUsageType": 25,
        "entityUseCode": 25,
        "itemCode": 50,
        "revenueAccount": 50,
        "ref1": 250,
        "ref2": 250,
        "description": 2096,
        "businessIdentificationNo": 25,
        "hsCode": 25,
    },
    "address": {"line1": 50, "line2": 100, "line3": 100, "city": 50, "postalCode": 11},
}

#: $include values AvaTax documents for transactions; anything else is ignored, as AvaTax does.
INCLUDES = frozenset({"Lines", "Details", "Summary", "Addresses", "SummaryOnly", "LinesOnly"})

_RECORDED_TYPES = ("SalesInvoice", "ReturnInvoice")
_ESTIMATE_TYPES = ("SalesOrder", "ReturnOrder")
_ZERO = Decimal(0)


class AvaTaxFault(Exception):
    """A request AvaTax refuses: HTTP ``status``, AvaTax error ``code``, ``message``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        target: str = "IncorrectData",
        ref: str | None = None,
        description: str = "",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.target = target
        self.ref = ref
        self.description = description

    def body(self) -> dict[str, Any]:
        """The AvaTax ErrorResult for this fault: error code, message and target, and one
        ErrorDetail with the code's number, a description, faultCode, helpLink and severity."""
        detail: dict[str, Any] = {
            "code": self.code,
            "number": ERROR_NUMBERS.get(self.code, 0),
            "message": self.message,
            "description": self.description or self.message,
            "faultCode": "Client" if self.status < 500 else "Server",
            "helpLink": HELP_LINK.format(code=self.code),
            "severity": "Error",
        }
        if self.ref:
            detail["refersTo"] = self.ref
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "target": self.target,
                "details": [detail],
            }
        }


def _fault(code: str, message: str, *, status: int = 400, ref: str | None = None) -> AvaTaxFault:
    return AvaTaxFault(status, code, message, ref=ref)


def check_lengths(model: Mapping[str, Any]) -> None:
    """Raise StringLengthError for the first string longer than the OpenAPI's maxLength."""
    places: list[tuple[str, Any, dict[str, int]]] = [("", model, MAX_LENGTHS["transaction"])]
    lines = model.get("lines")
    for index, line in enumerate(lines if isinstance(lines, list) else []):
        places.append((f"lines[{index}].", line, MAX_LENGTHS["line"]))
    for prefix, holder in [("", model)] + [(p, h) for p, h, _ in places[1:]]:
        addresses = holder.get("addresses") if isinstance(holder, dict) else None
        for kind, address in addresses.items() if isinstance(addresses, dict) else []:
            places.append((f"{prefix}addresses.{kind}.", address, MAX_LENGTHS["address"]))
    for prefix, holder, limits in places:
        if not isinstance(holder, dict):
            continue
        for name, limit in limits.items():
            value = holder.get(name)
            if isinstance(value, str) and len(value) > limit:
                where = f"{prefix}{name}"
                raise AvaTaxFault(
                    400,
                    "StringLengthError",
                    f"Field '{where}' has an invalid length.",
                    ref=where,
                    description=f"Field '{where}' must be between 0 and {limit} characters in "
                    f"length; it has {len(value)}.",
                )


class TaxEngine:
    """Documents of the sandbox account, thread-safe. Values inside are Decimal, never float."""

    def __init__(self, now: Any = None) -> None:
        self._lock = threading.Lock()
        self._now = now or (lambda: datetime.now(UTC))
        self._docs: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._ids = itertools.count(90_000_001)

    # -- API operations -------------------------------------------------------------------

    def create_or_adjust(self, body: Any) -> tuple[dict[str, Any], bool]:
        """CreateOrAdjustTransaction. Returns (TransactionModel, recorded)."""
        if not isinstance(body, dict) or not isinstance(body.get("createTransactionModel"), dict):
            raise _fault(
                "ModelRequiredException",
                "createTransactionModel is required.",
                ref="createTransactionModel",
            )
        return self._record(body["createTransactionModel"], adjust=True)

    def create(self, body: Any) -> tuple[dict[str, Any], bool]:
        """CreateTransaction: like CreateOrAdjust, but a committed document with the same code
        is TransactionAlreadyExists. Returns (TransactionModel, recorded)."""
        if not isinstance(body, dict):
            raise _fault("ModelRequiredException", "The transaction model is required.")
        return self._record(body, adjust=False)

    def _record(self, model: Mapping[str, Any], *, adjust: bool) -> tuple[dict[str, Any], bool]:
        doc = self._compute(model)
        if doc["type"] not in _RECORDED_TYPES:
            # Estimates are computed and answered but never recorded.
            doc["id"] = 0
            doc["status"] = "Temporary"
            return doc, False
        key = (doc["companyCode"], doc["code"], doc["type"])
        with self._lock:
            existing = self._docs.get(key)
            if existing is None:
                doc["id"] = next(self._ids)
                doc["version"] = 1
            else:
                if existing["locked"]:
                    raise _locked(doc["code"])
                if not adjust and existing["status"] == "Committed":
                    raise AvaTaxFault(
                        400,
                        "TransactionAlreadyExists",
                        f"A committed transaction with code '{doc['code']}' already exists in "
                        f"company '{doc['companyCode']}'.",
                        ref="code",
                        description="Use CreateOrAdjustTransaction (or AdjustTransaction) to "
                        "change a committed transaction.",
                    )
                if existing["status"] == "Cancelled":
                    raise _fault(
                        "InvalidDocumentStatus",
                        f"Transaction '{doc['code']}' has been voided and cannot be adjusted.",
                        ref="code",
                    )
                doc["id"] = existing["id"]
                doc["version"] = existing["version"] + 1
                if adjust:
                    doc["adjustmentReason"] = "Other"
                    doc["adjustmentDescription"] = "Adjusted by CreateOrAdjustTransaction"
            _set_ids(doc)
            self._docs[key] = doc
            return copy.deepcopy(doc), True

    def void(self, company: str, code: str, doc_type: str | None, body: Any) -> dict[str, Any]:
        """VoidTransaction with code DocVoided, or DocDeleted (an uncommitted document is then
        removed, a committed one cancelled)."""
        self._company_id(company)
        if not isinstance(body, dict) or "code" not in body:
            raise _fault("ModelRequiredException", "The void model is required.", ref="code")
        if body["code"] not in ("DocVoided", "DocDeleted"):
            raise _fault(
                "InvalidEnumValue",
                f"Void code {body['code']!r} is not supported here: use DocVoided or DocDeleted.",
                ref="code",
            )
        with self._lock:
            doc = self._find(company, code, doc_type)
            if doc["locked"]:
                raise _locked(code)
            if doc["status"] == "Cancelled":
                raise _fault(
                    "TransactionAlreadyCancelled",
                    f"Transaction '{code}' has already been voided.",
                    ref="code",
                )
            if body["code"] == "DocDeleted" and doc["status"] != "Committed":
                del self._docs[(company, doc["code"], doc["type"])]
            doc["status"] = "Cancelled"
            doc["modifiedDate"] = self._now()
            return copy.deepcopy(doc)

    def get(self, company: str, code: str, doc_type: str | None) -> dict[str, Any]:
        """GetTransactionByCode."""
        self._company_id(company)
        with self._lock:
            return copy.deepcopy(self._find(company, code, doc_type))

    # -- test helpers ---------------------------------------------------------------------

    def lock(self, company: str, code: str, doc_type: str | None = None) -> None:
        """Mark a document as reported to a tax authority: it can no longer change."""
        with self._lock:
            self._find(company, code, doc_type)["locked"] = True

    def documents(self, company: str | None = None) -> list[dict[str, Any]]:
        """Copies of the recorded documents, oldest first."""
        with self._lock:
            docs = [
                d for d in self._docs.values() if company is None or d["companyCode"] == company
            ]
            return copy.deepcopy(sorted(docs, key=lambda d: d["id"]))

    def clear(self) -> None:
        """Forget every document."""
        with self._lock:
            self._docs.clear()

    # -- internals ------------------------------------------------------------------------

    def _find(self, company: str, code: str, doc_type: str | None) -> dict[str, Any]:
        wanted = doc_type or "SalesInvoice"
        doc = self._docs.get((company, code, wanted))
        if doc is None:
            raise AvaTaxFault(
                404,
                "EntityNotFoundError",
                f"Transaction '{code}' of type {wanted} was not found in company '{company}'.",
                ref="transactionCode",
            )
        return doc

    def _company_id(self, company: Any) -> int:
        if not isinstance(company, str) or not company:
            raise _fault(
                "ValueRequiredError", "Field 'companyCode' is required.", ref="companyCode"
            )
        if company not in COMPANIES:
            raise AvaTaxFault(
                404,
                "EntityNotFoundError",
                f"Company '{company}' was not found in this account.",
                ref="companyCode",
            )
        return COMPANIES[company]

    def _compute(self, model: Mapping[str, Any]) -> dict[str, Any]:
        check_lengths(model)
        for name in ("lines", "date", "customerCode"):
            if model.get(name) in (None, "", []):
                raise _fault("ValueRequiredError", f"Field '{name}' is required.", ref=name)
        company = model.get("companyCode")
        company_id = self._company_id(company)
        doc_type = _text(model, "type", "SalesOrder")
        if doc_type not in _RECORDED_TYPES + _ESTIMATE_TYPES:
            raise _fault(
                "InvalidDocumentType",
                f"Document type '{doc_type}' is not supported here.",
                ref="type",
            )
        code = _text(model, "code", "")
        if doc_type in _RECORDED_TYPES and not code:
            raise _fault(
                "ValueRequiredError",
                "Field 'code' is required to record a transaction.",
                ref="code",
            )
        doc_date = _date(model["date"], "date")
        currency = _text(model, "currencyCode", "USD")
        if currency not in list_currencies():
            raise _fault(
                "InvalidParameterValue", f"Currency '{currency}' is not valid.", ref="currencyCode"
            )
        places = Decimal(1).scaleb(-int(get_currency_precision(currency)))
        addresses = model.get("addresses") or {}
        location = addresses.get("singleLocation") or addresses.get("shipTo")
        juris = _jurisdiction(location)
        exemption = _text(model, "exemptionNo", "")
        exempt = bool(exemption or model.get("customerUsageType") or model.get("entityUseCode"))

        override = model.get("taxOverride") or {}
        override_type = _text(override, "type", "None")
        tax_date = doc_date
        if override_type == "TaxDate":
            tax_date = _date(override.get("taxDate"), "taxOverride.taxDate")
        elif override_type not in ("None", "TaxAmount"):
            raise _fault(
                "InvalidEnumValue",
                f"Tax override type '{override_type}' is not supported here.",
                ref="taxOverride.type",
            )

        if not isinstance(model["lines"], list):
            raise _fault("ModelStateInvalid", "Field 'lines' must be a list.", ref="lines")
        lines: list[dict[str, Any]] = []
        seen_numbers: set[str] = set()
        for index, raw in enumerate(model["lines"], start=1):
            where = f"lines[{index - 1}]"
            if not isinstance(raw, dict):
                raise _fault("ModelStateInvalid", f"{where} must be an object.", ref=where)
            number = str(raw.get("number") or index)
            if number in seen_numbers:
                raise _fault(
                    "RepeatedLinesInDocument",
                    f"Line number {number} appears twice.",
                    ref=f"{where}.number",
                )
            seen_numbers.add(number)
            amount = _number(raw.get("amount"), f"{where}.amount", required=True)
            quantity = _number(raw.get("quantity", 1), f"{where}.quantity")
            if amount < _ZERO and doc_type == "SalesInvoice" and override_type == "TaxDate":
                raise _fault(
                    "TaxDateOverrideAndNegativeLineAmount",
                    "A tax date override is not allowed with a negative line amount "
                    "on a sales document.",
                    ref=f"{where}.amount",
                )
            line_exemption = _text(raw, "exemptionCode", "")
            line_exempt = exempt or bool(line_exemption)
            tax_included = raw.get("taxIncluded", False)
            if not isinstance(tax_included, bool):
                raise _fault(
                    "ModelStateInvalid",
                    f"Field '{where}.taxIncluded' must be a boolean.",
                    ref=where,
                )
            if line_exempt:
                calculated = _ZERO
            elif tax_included:
                # The amount already holds the tax: back it out, as AvaTax does.
                calculated = _round(amount * juris.rate / (1 + juris.rate), places)
                amount -= calculated
            else:
                calculated = _round(amount * juris.rate, places)
            line = {
                "lineNumber": number,
                "itemCode": _text(raw, "itemCode", ""),
                "taxCode": _text(raw, "taxCode", "P0000000"),
                "description": _text(raw, "description", ""),
                "quantity": quantity,
                "lineAmount": amount,
                "discountAmount": _ZERO,
                "exemptAmount": amount if line_exempt else _ZERO,
                "exemptNo": line_exemption or exemption,
                "exemptCertId": 0,
                "isItemTaxable": not line_exempt,
                "taxableAmount": _ZERO if line_exempt else amount,
                "taxCalculated": calculated,
                "tax": calculated,
                "taxDate": tax_date,
                "reportingDate": doc_date,
                "taxOverrideType": "None",
                "taxOverrideAmount": _ZERO,
                "sourcing": "Destination",
                "taxIncluded": tax_included,
            }
            line_override = raw.get("taxOverride") or {}
            line_override_type = _text(line_override, "type", "None")
            if line_override_type == "TaxAmount":
                line["tax"] = _number(
                    line_override.get("taxAmount"), f"{where}.taxOverride.taxAmount", required=True
                )
                line["taxOverrideType"] = "TaxAmount"
                line["taxOverrideAmount"] = line["tax"]
                line["taxOverrideReason"] = _text(line_override, "reason", "")
            elif line_override_type != "None":
                raise _fault(
                    "InvalidEnumValue",
                    f"Line tax override type '{line_override_type}' is not supported here.",
                    ref=f"{where}.taxOverride.type",
                )
            lines.append(line)

        if override_type == "TaxAmount":
            wanted = _number(override.get("taxAmount"), "taxOverride.taxAmount", required=True)
            _spread(lines, wanted, places)
            for line in lines:
                line["taxOverrideType"] = "TaxAmount"
                line["taxOverrideAmount"] = line["tax"]
        for line in lines:
            line["details"] = [_detail(juris, line)]

        total_tax = sum((line["tax"] for line in lines), _ZERO)
        total_calc = sum((line["taxCalculated"] for line in lines), _ZERO)
        doc: dict[str, Any] = {
            "id": 0,
            "code": code,
            "companyId": company_id,
            "companyCode": company,
            "date": doc_date,
            "taxDate": tax_date,
            "status": "Committed" if model.get("commit") is True else "Saved",
            "type": doc_type,
            "currencyCode": currency,
            "customerCode": str(model["customerCode"]),
            "customerVendorCode": str(model["customerCode"]),
            "exemptNo": exemption,
            "referenceCode": _text(model, "referenceCode", ""),
            "reconciled": False,
            "locked": False,
            "version": 1,
            "adjustmentReason": "NotAdjusted",
            "adjustmentDescription": "",
            "taxOverrideType": override_type,
            "taxOverrideAmount": (
                _number(override.get("taxAmount"), "taxOverride.taxAmount")
                if override_type == "TaxAmount"
                else _ZERO
            ),
            "taxOverrideReason": _text(override, "reason", ""),
            "totalAmount": sum((line["lineAmount"] for line in lines), _ZERO),
            "totalExempt": sum((line["exemptAmount"] for line in lines), _ZERO),
            "totalDiscount": _ZERO,
            "totalTax": total_tax,
            "totalTaxable": sum((line["taxableAmount"] for line in lines), _ZERO),
            "totalTaxCalculated": total_calc,
            "country": juris.country,
            "region": juris.region,
            "modifiedDate": self._now(),
            "addresses": _addresses(addresses),
            "lines": lines,
            "summary": [_summary(juris, lines)],
        }
        return doc


def _addresses(addresses: Mapping[str, Any]) -> list[dict[str, Any]]:
    """TransactionAddressModels of the document-level addresses given."""
    found = []
    for index, (kind, address) in enumerate(addresses.items(), start=1):
        if not isinstance(address, dict):
            continue
        entry: dict[str, Any] = {"id": index, "boundaryLevel": "Address", "addressType": kind}
        for name in ("line1", "line2", "line3", "city", "region", "postalCode", "country"):
            if address.get(name) is not None:
                entry[name] = address[name]
        found.append(entry)
    return found


def _set_ids(doc: dict[str, Any]) -> None:
    for index, line in enumerate(doc["lines"], start=1):
        line["id"] = doc["id"] * 1000 + index
        line["transactionId"] = doc["id"]
        for detail in line["details"]:
            detail["id"] = line["id"] * 10 + 1
            detail["transactionLineId"] = line["id"]
            detail["transactionId"] = doc["id"]


def _locked(code: str) -> AvaTaxFault:
    return _fault(
        "CannotModifyLockedTransaction",
        f"Transaction '{code}' has been reported to a tax authority and is locked; "
        "it cannot be adjusted or voided.",
        ref="code",
    )


def _spread(lines: list[dict[str, Any]], wanted: Decimal, places: Decimal) -> None:
    """Distribute a document-level tax amount over the lines like AvaTax: pro rata to the tax
    each line would carry (or to its amount when nothing is taxable), remainder on the last."""
    weights = [line["taxCalculated"] for line in lines]
    if sum(weights, _ZERO) == _ZERO:
        weights = [line["lineAmount"] for line in lines]
    total_weight = sum(weights, _ZERO)
    given = _ZERO
    for index, (line, weight) in enumerate(zip(lines, weights, strict=True)):
        if index == len(lines) - 1:
            share = wanted - given
        elif total_weight == _ZERO:
            share = _ZERO
        else:
            share = _round(wanted * weight / total_weight, places)
        line["tax"] = share
        given += share


def _detail(juris: Jurisdiction, line: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "country": juris.country,
        "region": juris.region,
        "jurisCode": juris.juris_code,
        "jurisName": juris.juris_name,
        "jurisType": "STA" if juris.juris_type == "State" else "CNT",
        "jurisdictionType": juris.juris_type,
        "taxType": juris.tax_type,
        "taxName": juris.tax_name,
        "rate": juris.rate,
        "taxableAmount": line["taxableAmount"],
        "exemptAmount": line["exemptAmount"],
        "nonTaxableAmount": _ZERO,
        "tax": line["tax"],
        "taxCalculated": line["taxCalculated"],
        "sourcing": "Destination",
    }


def _summary(juris: Jurisdiction, lines: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "country": juris.country,
        "region": juris.region,
        "jurisType": juris.juris_type,
        "jurisCode": juris.juris_code,
        "jurisName": juris.juris_name,
        "taxType": juris.tax_type,
        "taxName": juris.tax_name,
        "rateType": "General",
        "rate": juris.rate,
        "taxable": sum((line["taxableAmount"] for line in lines), _ZERO),
        "tax": sum((line["tax"] for line in lines), _ZERO),
        "taxCalculated": sum((line["taxCalculated"] for line in lines), _ZERO),
        "nonTaxable": _ZERO,
        "exemption": sum((line["exemptAmount"] for line in lines), _ZERO),
    }


def _jurisdiction(location: Any) -> Jurisdiction:
    if not isinstance(location, dict):
        raise _fault(
            "MissingAddress",
            "An address is required to calculate tax: give "
            "addresses.singleLocation or addresses.shipTo.",
            ref="addresses",
        )
    country = str(location.get("country") or "").upper()
    region = str(location.get("region") or "").upper()
    if not country:
        raise _fault(
            "InvalidAddress",
            "The address is incomplete: a country is required.",
            ref="addresses.singleLocation.country",
        )
    if country not in {c for c, _ in RATES}:
        raise _fault(
            "InvalidCountry",
            f"Country '{country}' is not a country this account collects tax in.",
            ref="addresses.singleLocation.country",
        )
    if country in _REGIONAL:
        juris = RATES.get((country, region))
        if juris is None:
            raise _fault(
                "InvalidCountryRegion",
                f"Region '{region}' is not a valid region of country '{country}'.",
                ref="addresses.singleLocation.region",
            )
        return juris
    return RATES[(country, "")]


def _text(data: Mapping[str, Any], name: str, default: str) -> str:
    value = data.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise _fault("ModelStateInvalid", f"Field '{name}' must be a string.", ref=name)
    return value


def _number(value: Any, where: str, *, required: bool = False) -> Decimal:
    if value is None:
        if required:
            raise _fault("ValueRequiredError", f"Field '{where}' is required.", ref=where)
        return _ZERO
    # The API declares numbers; a quoted amount or a boolean is a client bug worth surfacing.
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise _fault(
            "InvalidDecimalValue",
            f"Field '{where}' must be a number, got {type(value).__name__}.",
            ref=where,
        )
    return Decimal(value)


def _date(value: Any, where: str) -> date:
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise _fault(
            "DateFormatError", f"Field '{where}' must be a date (yyyy-MM-dd).", ref=where
        ) from None


def _round(amount: Decimal, places: Decimal) -> Decimal:
    return amount.quantize(places, rounding=ROUND_HALF_UP)
